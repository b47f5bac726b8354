"""mailinfra-apply-config, the on-host program the user data writes, run for real as a subprocess: against a
temporary root, a moto server standing in for S3 and SSM (reached through a counting proxy), and small
recorder scripts standing in for `ip`, `postmap`, `postfix` and `systemctl`."""

from __future__ import annotations

import hashlib
import http.client
import http.server
import json
import os
import shutil
import stat
import subprocess
import sys
import threading
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from components.mta_host import MANIFEST_FORMAT, apply_program
from mailinfra.mta.host_code import render_host_code_object
from tests.pulumi.conftest import manifest_of
from tests.tooling import moto_server, require_tool

REGION = "us-east-1"
BUCKET = "mailinfra-test-config"
KEY = "hosts/mta1/bundle.json"
STATE = "var/lib/mailinfra/applied-manifest.json"
MUTATING = ("ip addr add", "ip addr del", "postmap", "postfix", "systemctl")

IP_RECORDER = """
import json, os, sys
args = sys.argv[1:]
with open(os.environ["TOOL_LOG"], "a") as log:
    log.write("ip " + " ".join(args) + "\\n")
state = os.environ["IP_STATE"]
addresses = json.load(open(state))
if args[:4] == ["-4", "route", "show", "default"]:
    print("default via 10.0.0.1 dev eth0 proto dhcp src 10.0.0.4 metric 100")
elif args[:4] == ["-4", "-o", "addr", "show"]:
    for address in addresses:
        print(f"2: eth0    inet {address}/20 scope global eth0\\\\       valid_lft forever preferred_lft forever")
elif args[:2] == ["addr", "add"] and args[3:] == ["dev", "eth0"]:
    if args[2].split("/")[0] in addresses:
        sys.exit("RTNETLINK answers: File exists")
    json.dump(addresses + [args[2].split("/")[0]], open(state, "w"))
elif args[:2] == ["addr", "del"] and args[3:] == ["dev", "eth0"]:
    if args[2].split("/")[0] not in addresses:
        sys.exit("RTNETLINK answers: Cannot assign requested address")
    json.dump([a for a in addresses if a != args[2].split("/")[0]], open(state, "w"))
else:
    sys.exit(f"unexpected ip {args}")
"""
# Each stand-in logs its command line; postmap creates the database the real one would.
SHELL_RECORDERS = {
    "postmap": 'echo "postmap $*" >> "$TOOL_LOG"; touch "${1#*:}.db"',
    "postfix": 'echo "postfix $*" >> "$TOOL_LOG"',
    "systemctl": 'echo "systemctl $*" >> "$TOOL_LOG"',
    # The queue directory of instance /etc/postfix-NAME is /var/spool/postfix-NAME (postmulti's default).
    "postconf": 'echo "postconf $*" >> "$TOOL_LOG"; echo "/var/spool/$(basename "$2")"',
}


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    """A moto server in its own process, stopped by its PID."""
    with moto_server() as url:
        yield url


# What AWS answers a role whose policy has not reached the service yet (IAM is eventually consistent,
# IAM User Guide "Troubleshooting: changes that I make are not always immediately visible"): SSM's JSON
# protocol names the error in `__type`, S3's REST-XML protocol in <Code>.
DENIED = {
    "ssm": (400, "application/x-amz-json-1.1",
            b'{"__type":"AccessDeniedException","message":"not authorized to perform: ssm:GetParameter"}'),
    "s3": (403, "application/xml",
           b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>AccessDenied</Code><Message>Access Denied"
           b"</Message></Error>"),
}


class CountingProxy(http.server.ThreadingHTTPServer):
    """Forwards every request to moto and counts SSM GetParameter calls by parameter name. `deny[kind]`:
    how many of the next S3 GetObject ("s3") or SSM GetParameter ("ssm") requests it answers AccessDenied
    itself (counted in `denied`), as AWS does while a new role policy propagates."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.removeprefix("http://")
        self.fetched: Counter[str] = Counter()
        self.deny: Counter[str] = Counter()
        self.denied: Counter[str] = Counter()
        super().__init__(("127.0.0.1", 0), _Forward)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Forward(http.server.BaseHTTPRequestHandler):
    server: CountingProxy

    def _forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        kind = None
        if self.headers.get("X-Amz-Target") == "AmazonSSM.GetParameter":
            self.server.fetched[json.loads(body)["Name"]] += 1
            kind = "ssm"
        elif self.command == "GET" and self.path.startswith(f"/{BUCKET}/"):
            kind = "s3"
        if kind and self.server.deny[kind] > 0:
            self.server.deny[kind] -= 1
            self.server.denied[kind] += 1
            status, content_type, answer = DENIED[kind]
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)
            return
        connection = http.client.HTTPConnection(self.server.upstream, timeout=30)
        connection.request(self.command, self.path, body, dict(self.headers))
        response = connection.getresponse()
        data = response.read()
        self.send_response(response.status)
        for name, value in response.getheaders():
            if name.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        connection.close()

    # http.server dispatches on these names.
    do_GET = do_POST = do_PUT = do_HEAD = _forward  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def aws(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[CountingProxy, Any, Any]]:
    """A fresh moto (reset), the counting proxy in front of it, and S3/SSM clients for the test's setup."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}.items():
        monkeypatch.setenv(name, value)
    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST"), timeout=10)
    proxy = CountingProxy(moto_url)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=moto_url)
    s3.create_bucket(Bucket=BUCKET)
    try:
        yield proxy, s3, boto3.client("ssm", region_name=REGION, endpoint_url=moto_url)
    finally:
        proxy.shutdown()
        proxy.server_close()
        thread.join(timeout=10)


@pytest.fixture
def host(tmp_path: Path, aws: tuple[CountingProxy, Any, Any]) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the program as the user data writes it, against tmp_path/root; returns the finished process.
    The stand-ins log to tmp_path/tools.log; the interface starts with its primary address 10.0.0.4."""
    proxy = aws[0]
    program = tmp_path / "mailinfra-apply-config"
    program.write_text(apply_program())
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ip").write_text(f"#!{sys.executable}\n{IP_RECORDER}")
    for name, body in SHELL_RECORDERS.items():
        (bin_dir / name).write_text(f"#!/bin/sh\nset -eu\n{body}\n")
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    (tmp_path / "ip-state.json").write_text('["10.0.0.4"]')
    (tmp_path / "root").mkdir()
    env = {**os.environ, "TOOL_LOG": str(tmp_path / "tools.log"), "IP_STATE": str(tmp_path / "ip-state.json"),
           **{f"MAILINFRA_{tool.upper()}": str(bin_dir / tool) for tool in ("ip", *SHELL_RECORDERS)}}

    def run(*extra: str, tools: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        (tmp_path / "tools.log").write_text("")
        command = [sys.executable, str(program), "--region", REGION, "--bucket", BUCKET, "--key", KEY,
                   "--endpoint-url", proxy.url, "--root", str(tmp_path / "root"), "--attempts", "1", *extra]
        return subprocess.run(command, env={**env, **(tools or {})}, capture_output=True, text=True,
                              timeout=60, check=False)

    return run


def _publish(s3: Any, manifest: dict[str, Any]) -> None:
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=json.dumps(manifest).encode())


def _tool_log(tmp_path: Path) -> list[str]:
    return (tmp_path / "tools.log").read_text().splitlines()


def _addresses(tmp_path: Path) -> set[str]:
    return set(json.loads((tmp_path / "ip-state.json").read_text()))


def _snapshot(root: Path) -> dict[str, tuple[int, int, int, bytes]]:
    """Path -> (inode, mtime_ns, mode, bytes) of every file under root: any rewrite changes it."""
    return {str(p.relative_to(root)): (p.stat().st_ino, p.stat().st_mtime_ns, p.stat().st_mode, p.read_bytes())
            for p in root.rglob("*") if p.is_file()}


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


RELAY = "/mailinfra/dev/mta1/route/relay/password"
DKIM = "/mailinfra/dev/mta1/dkim/example.com/s2026a"
PASSWORD = "Pa55/&\\|$word"  # characters sed or a shell would interpret


def _manifest(files: list[dict[str, Any]], addresses: list[str], *, secrets: bool = True,
              instances: bool = True) -> dict[str, Any]:
    return {
        "format": MANIFEST_FORMAT, "host": "mta1", "files": files,
        "secrets": [{"parameter": DKIM, "path": "/etc/opendkim/keys/example.com/s2026a.private",
                     "owner": "nobody:nogroup", "mode": "0600",
                     "directories": ["/etc/opendkim/keys", "/etc/opendkim/keys/example.com"]}] if secrets else [],
        "addresses": addresses,
        "postfix_instances": [{"name": "postfix-tx", "config_dir": "/etc/postfix-tx"}] if instances else [],
        "services": ["opendkim", "postfix"],
    }


FIRST = [
    {"path": "/etc/postfix/main.cf", "mode": "0644", "content": "myhostname = mta1.example.com\n",
     "fills": [], "postmap": None},
    # One parameter fills two markers in two files: fetched once.
    {"path": "/etc/postfix-tx/sasl_passwd", "mode": "0600",
     "content": "[relay.example]:587 u:@@SECRET:relay@@\n", "fills": [["@@SECRET:relay@@", RELAY]],
     "postmap": "hash:/etc/postfix-tx/sasl_passwd"},
    {"path": "/etc/mailinfra/relay.conf", "mode": "0640", "content": "password=@@SECRET:relay@@\n",
     "fills": [["@@SECRET:relay@@", RELAY]], "postmap": None},
    {"path": "/etc/postfix-tx/transport", "mode": "0644", "content": "example.net smtp:\n", "fills": [],
     "postmap": "hash:/etc/postfix-tx/transport"},
    {"path": "/etc/postfix-tx/main.cf", "mode": "0644", "content": "queue_directory = /var/spool/postfix-tx\n",
     "fills": [], "postmap": None},
]


def test_apply_writes_fills_fetches_once_is_idempotent_and_removes_what_the_next_manifest_drops(
        host, aws, tmp_path: Path) -> None:
    proxy, s3, ssm = aws
    root = tmp_path / "root"
    ssm.put_parameter(Name=RELAY, Value=PASSWORD, Type="SecureString")
    private_key = _generated_key()
    ssm.put_parameter(Name=DKIM, Value=private_key, Type="SecureString")
    (tmp_path / "ip-state.json").write_text('["10.0.0.4", "10.0.0.9"]')  # 10.0.0.9: not ours, kept
    _publish(s3, _manifest(FIRST, ["10.0.0.5", "10.0.0.6", "10.0.0.9"]))

    # GIVEN a first manifest WHEN applied THEN every file has its content (markers filled) and mode.
    first = host()
    assert first.returncode == 0, first.stderr
    assert (root / "etc/postfix/main.cf").read_text() == "myhostname = mta1.example.com\n"
    assert (root / "etc/postfix-tx/sasl_passwd").read_text() == f"[relay.example]:587 u:{PASSWORD}\n"
    assert (root / "etc/mailinfra/relay.conf").read_text() == f"password={PASSWORD}\n"
    assert {p: _mode(root / p.lstrip("/")) for p in (f["path"] for f in FIRST)} == \
        {f["path"]: int(f["mode"], 8) for f in FIRST}
    assert proxy.fetched == Counter({RELAY: 1, DKIM: 1})
    key = root / "etc/opendkim/keys/example.com/s2026a.private"
    assert key.read_text() == private_key and _mode(key) == 0o600
    for directory in (key.parent, key.parent.parent):
        assert _mode(directory) == 0o700 and directory.stat().st_uid == 65534
    assert PASSWORD not in first.stdout + first.stderr
    tools = _tool_log(tmp_path)
    assert sorted(c for c in tools if c.startswith("postmap")) == [
        f"postmap hash:{root}/etc/postfix-tx/sasl_passwd", f"postmap hash:{root}/etc/postfix-tx/transport"]
    assert [c for c in tools if c.startswith("ip addr")] == ["ip addr add 10.0.0.5/32 dev eth0",
                                                             "ip addr add 10.0.0.6/32 dev eth0"]
    assert f"postfix -c {root}/etc/postfix-tx set-permissions create-missing" in tools
    assert (root / "var/spool/postfix-tx").is_dir()
    state = root / STATE
    assert _mode(state) == 0o600 and _mode(state.parent) == 0o700
    assert PASSWORD not in state.read_text()
    assert _addresses(tmp_path) == {"10.0.0.4", "10.0.0.5", "10.0.0.6", "10.0.0.9"}

    # WHEN the same manifest is applied again THEN nothing is rewritten, run or added.
    before = _snapshot(root)
    second = host()
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == "no change"
    assert _snapshot(root) == before
    assert not [c for c in _tool_log(tmp_path) if c.startswith(MUTATING)], _tool_log(tmp_path)

    # GIVEN a manifest without the transport map, the DKIM key, the instance and 10.0.0.6, with 10.0.0.7
    # WHEN applied THEN those files (and the map's database) are gone and the addresses follow.
    third_files = [f for f in FIRST if f["path"] not in ("/etc/postfix-tx/transport", "/etc/postfix-tx/main.cf")]
    _publish(s3, _manifest(third_files, ["10.0.0.5", "10.0.0.7"], secrets=False, instances=False))
    third = host()
    assert third.returncode == 0, third.stderr
    assert not (root / "etc/postfix-tx/transport").exists()
    assert not (root / "etc/postfix-tx/transport.db").exists()
    assert not (root / "etc/postfix-tx/main.cf").exists()
    assert not key.exists()
    assert (root / "etc/postfix-tx/sasl_passwd.db").exists()
    assert [c for c in _tool_log(tmp_path) if c.startswith(("ip addr", "postfix"))] == [
        f"postfix -c {root}/etc/postfix-tx stop",
        "ip addr add 10.0.0.7/32 dev eth0", "ip addr del 10.0.0.6/32 dev eth0"]
    assert _addresses(tmp_path) == {"10.0.0.4", "10.0.0.5", "10.0.0.7", "10.0.0.9"}
    assert json.loads(state.read_text())["added_addresses"] == ["10.0.0.5", "10.0.0.7"]


def test_boot_puts_the_applied_addresses_back_and_services_start_or_reload(host, aws, tmp_path: Path) -> None:
    """After a reboot (`ip addr add` is not persistent) --addresses-only restores the last manifest's
    addresses without fetching anything; --services starts (boot) or reloads (refresh) the manifest's units."""
    proxy, s3, ssm = aws
    ssm.put_parameter(Name=DKIM, Value="key", Type="SecureString")
    _publish(s3, _manifest([], ["10.0.0.5"], instances=False))
    started = host("--services", "start")
    assert started.returncode == 0, started.stderr
    assert [c for c in _tool_log(tmp_path) if c.startswith("systemctl")] == [
        "systemctl daemon-reload", "systemctl enable --now opendkim", "systemctl restart opendkim",
        "systemctl enable --now postfix", "systemctl restart postfix"]
    reloaded = host("--services", "reload")
    assert [c for c in _tool_log(tmp_path) if c.startswith("systemctl")] == [
        "systemctl daemon-reload", "systemctl reload-or-restart opendkim", "systemctl reload-or-restart postfix"]
    assert reloaded.returncode == 0
    (tmp_path / "ip-state.json").write_text('["10.0.0.4"]')  # a reboot
    fetched = sum(proxy.fetched.values())
    restored = host("--addresses-only")
    assert restored.returncode == 0, restored.stderr
    assert _addresses(tmp_path) == {"10.0.0.4", "10.0.0.5"}
    assert sum(proxy.fetched.values()) == fetched


def test_a_refresh_enables_and_starts_units_new_in_the_manifest_and_disables_dropped_ones(
        host, aws, tmp_path: Path) -> None:
    """GIVEN a host launched with one manifest (`bootstrap: launched`: its user data never runs again) WHEN a
    second manifest adds a service with its unit file (a new host service or timer) and drops another THEN
    the refresh loads the new unit, enables and starts it (`systemctl enable --now`, systemctl(1): enable
    alone only links it for the next boot, reload-or-restart fails on a unit that is not running), reloads
    the kept ones, and disables the dropped one before its unit file is removed."""
    _, s3, ssm = aws
    ssm.put_parameter(Name=DKIM, Value="key", Type="SecureString")
    old_unit = {"path": "/etc/systemd/system/mailinfra-old.service", "mode": "0644",
                "content": "[Service]\nExecStart=/bin/true\n", "fills": [], "postmap": None}
    first = _manifest([old_unit], [], instances=False) | {"services": ["mailinfra-old", "opendkim", "postfix"]}
    _publish(s3, first)
    assert host("--services", "start").returncode == 0
    new_unit = {"path": "/etc/systemd/system/mailinfra-new.timer", "mode": "0644",
                "content": "[Timer]\nOnCalendar=daily\n", "fills": [], "postmap": None}
    _publish(s3, _manifest([new_unit], [], instances=False) | {"services": ["mailinfra-new.timer", "opendkim",
                                                                             "postfix"]})
    refreshed = host("--services", "reload")
    assert refreshed.returncode == 0, refreshed.stderr
    log = _tool_log(tmp_path)
    assert [c for c in log if c.startswith("systemctl")] == [
        "systemctl disable --now mailinfra-old", "systemctl daemon-reload",
        "systemctl enable --now mailinfra-new.timer", "systemctl reload-or-restart opendkim",
        "systemctl reload-or-restart postfix"]
    assert (tmp_path / "root/etc/systemd/system/mailinfra-new.timer").is_file()
    assert not (tmp_path / "root/etc/systemd/system/mailinfra-old.service").exists()
    assert "service enabled: mailinfra-new.timer" in refreshed.stdout
    # A second refresh of the same manifest: the timer is now a known unit, reloaded like the others.
    again = host("--services", "reload")
    assert [c for c in _tool_log(tmp_path) if c.startswith("systemctl")] == [
        "systemctl daemon-reload", "systemctl reload-or-restart mailinfra-new.timer",
        "systemctl reload-or-restart opendkim", "systemctl reload-or-restart postfix"]
    assert again.returncode == 0


def test_a_code_object_that_is_not_the_named_one_is_refused_and_nothing_written(host, aws, tmp_path: Path) -> None:
    """The manifest names the host services' code by key and sha256: an object with other bytes (a partial
    upload, a tampered copy) stops the apply in one line before any file is written."""
    _, s3, _ = aws
    code = json.dumps([{"path": "/usr/local/lib/mailinfra/python/mailinfra/__init__.py", "mode": "0644",
                        "content": ""}])
    digest = hashlib.sha256(code.encode()).hexdigest()
    s3.put_object(Bucket=BUCKET, Key=f"code/{digest}.json", Body=(code + " ").encode())
    _publish(s3, _manifest(FIRST[:1], [], secrets=False, instances=False)
             | {"code": {"key": f"code/{digest}.json", "sha256": digest}})
    done = host()
    assert done.returncode == 1 and f"expected {digest} (the manifest's)" in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not [p for p in (tmp_path / "root").rglob("*") if p.is_file()]
    s3.put_object(Bucket=BUCKET, Key=f"code/{digest}.json", Body=code.encode())
    applied = host()
    assert applied.returncode == 0, applied.stderr
    assert (tmp_path / "root/usr/local/lib/mailinfra/python/mailinfra/__init__.py").is_file()


def test_a_missing_parameter_is_one_line_and_changes_nothing(host, aws, tmp_path: Path) -> None:
    _, s3, _ = aws
    _publish(s3, _manifest(FIRST, ["10.0.0.5"]))
    done = host()
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and (RELAY in done.stderr or DKIM in done.stderr), done.stderr
    assert "Traceback" not in done.stderr
    assert not [p for p in (tmp_path / "root").rglob("*") if p.is_file()]
    assert not [c for c in _tool_log(tmp_path) if c.startswith(MUTATING)]


@pytest.mark.parametrize("path", ["etc/postfix/main.cf", "/etc/../root/.ssh/authorized_keys"])
def test_a_path_outside_its_place_is_refused(host, aws, tmp_path: Path, path: str) -> None:
    _, s3, _ = aws
    _publish(s3, _manifest([{**FIRST[0], "path": path}], [], secrets=False, instances=False))
    done = host()
    assert done.returncode == 1 and "absolute normalized path" in done.stderr, done.stderr
    assert not [p for p in (tmp_path / "root").rglob("*") if p.is_file()]


def test_dev_mta1_s_real_manifest_applies_with_real_postconf_and_postmap(host, aws, tmp_path: Path,
                                                                         mock_runs) -> None:
    """The manifest the program renders for dev's mta1: every file at its mode, every marker filled from the
    host's own parameters, each read once, Postfix's real postconf and postmap on the files, then no change."""
    require_tool("opendkim")  # its package creates the user that owns the DKIM keys
    tools = {"MAILINFRA_POSTCONF": require_tool("postconf"), "MAILINFRA_POSTMAP": require_tool("postmap")}
    proxy, s3, ssm = aws
    root = tmp_path / "root"
    manifest = manifest_of(mock_runs("dev"), "mta1")
    parameters = {s["parameter"] for s in manifest["secrets"]} | {p for f in manifest["files"] for _, p in f["fills"]}
    for parameter in parameters:
        ssm.put_parameter(Name=parameter, Value=f"value-of-{parameter}", Type="SecureString")
    _publish(s3, manifest)
    # The host services' code object the manifest names (ConfigBundle puts it beside the manifests).
    code_key, _, code_text = render_host_code_object()
    assert manifest["code"]["key"] == code_key
    s3.put_object(Bucket=BUCKET, Key=code_key, Body=code_text.encode())
    done = host(tools=tools)
    assert done.returncode == 0, done.stderr
    for code_file in json.loads(code_text):
        assert (root / code_file["path"].lstrip("/")).read_text() == code_file["content"], code_file["path"]
    assert proxy.fetched == Counter(dict.fromkeys(parameters, 1))
    for file in manifest["files"]:
        written = root / file["path"].lstrip("/")
        assert _mode(written) == int(file["mode"], 8), file["path"]
        expected = file["content"]
        for marker, parameter in file["fills"]:
            expected = expected.replace(marker, f"value-of-{parameter}")
        assert written.read_text() == expected, file["path"]
        assert "@@SECRET:" not in written.read_text(), file["path"]
        if file["postmap"]:
            assert written.with_name(written.name + ".db").is_file(), file["path"]
    assert _addresses(tmp_path) == {"10.0.0.4", *manifest["addresses"]}
    for instance in manifest["postfix_instances"]:
        assert (root / "var/spool" / instance["name"]).is_dir(), instance["name"]
    before = _snapshot(root)
    again = host(tools=tools)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "no change"
    assert _snapshot(root) == before


def _generated_key() -> str:
    """A throwaway PEM private key made now: no key material is kept in the repository."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    return ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()


def test_access_denied_while_iam_propagates_is_retried_with_backoff(host, aws, tmp_path: Path) -> None:
    """GIVEN a first boot whose role policies have not reached S3 and SSM yet (AccessDenied twice each) WHEN
    the program runs THEN it retries with backoff and applies the manifest once the policies are there."""
    proxy, s3, ssm = aws
    ssm.put_parameter(Name=RELAY, Value=PASSWORD, Type="SecureString")
    ssm.put_parameter(Name=DKIM, Value="key", Type="SecureString")
    _publish(s3, _manifest(FIRST, ["10.0.0.5"], instances=False))
    proxy.deny.update({"s3": 2, "ssm": 2})
    done = host("--attempts", "4", "--retry-seconds", "0.05")
    assert done.returncode == 0, done.stderr
    assert proxy.denied == Counter({"s3": 2, "ssm": 2})
    assert (tmp_path / "root/etc/mailinfra/relay.conf").read_text() == f"password={PASSWORD}\n"


def test_a_lasting_access_denied_fails_in_one_line_after_its_attempts(host, aws, tmp_path: Path) -> None:
    """AccessDenied that outlasts the attempts (the role really lacks the permission, or the object is
    missing: S3 answers AccessDenied to a role without s3:ListBucket) ends in one line, nothing written."""
    proxy, s3, _ = aws
    _publish(s3, _manifest(FIRST, ["10.0.0.5"]))
    proxy.deny["s3"] = 100
    done = host("--attempts", "3", "--retry-seconds", "0.05")
    assert done.returncode == 1
    assert proxy.denied["s3"] == 3
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert f"s3://{BUCKET}/{KEY}: AccessDenied after 3 attempts" in done.stderr, done.stderr
    assert not [p for p in (tmp_path / "root").rglob("*") if p.is_file()]


def test_a_missing_parameter_is_permanent_and_not_retried(host, aws, tmp_path: Path) -> None:
    """ParameterNotFound does not end by waiting: one request, one line naming the parameter."""
    proxy, s3, ssm = aws
    ssm.put_parameter(Name=DKIM, Value="key", Type="SecureString")
    _publish(s3, _manifest(FIRST, ["10.0.0.5"]))
    done = host("--attempts", "5", "--retry-seconds", "0.05")
    assert done.returncode == 1
    assert proxy.fetched[RELAY] == 1
    assert done.stderr.strip() == f"mailinfra-apply-config: SSM parameter {RELAY}: ParameterNotFound (not transient: " \
        "not retried)", done.stderr


VOLUME_ID = "vol-0abc123def4567890"
SPOOL = {"volume_id": VOLUME_ID, "device_name": "/dev/sdf", "mount": "/var/lib/mailinfra/spool",
         "directories": [{"path": "/var/spool/postfix", "owner": "root:root", "mode": "0755"},
                         {"path": "/var/spool/postfix-tx", "owner": "root:root", "mode": "0755"}]}
# Stand-ins for the block-device tools. The "volume" is a directory outside the root (it outlives the
# instance); its device node carries the file system type, as blkid(8) would read it (exit 2: none).
# A mount is a symlink from the mount point to what it shows (the directory under it set aside), and a line
# in /proc/self/mountinfo.
SPOOL_TOOLS = {
    "blkid": 'echo "blkid $*" >> "$TOOL_LOG"; kind=$(cat "$5"); [ -n "$kind" ] || exit 2; echo "$kind"',
    "mkfs": 'echo "mkfs $*" >> "$TOOL_LOG"; echo ext4 > "$4"',
    "mount": '''echo "mount $*" >> "$TOOL_LOG"
if [ "$1" = "--bind" ]; then source="$2"; target="$3"; else source="$VOLUME_DIR"; target="$4"; fi
mv "$target" "$target.under-mount"; ln -s "$source" "$target"  # what was there is hidden, not gone
echo "36 25 259:1 / $target rw,noatime - ext4 /dev/nvme1n1 rw" >> "$MOUNTINFO"''',
}


@pytest.fixture
def spool_host(host, tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """`host` with the block-device stand-ins, the volume's device node under the root's
    /dev/disk/by-id (the NVMe serial is the volume id without its dash), and a reboot/replace helper."""
    bin_dir = tmp_path / "spool-bin"
    bin_dir.mkdir()
    for name, body in SPOOL_TOOLS.items():
        (bin_dir / name).write_text(f"#!/bin/sh\nset -eu\n{body}\n")
        (bin_dir / name).chmod(0o755)
    (tmp_path / "volume").mkdir()
    (tmp_path / "volume.dev").write_text("")  # a new volume: no file system

    def boot_disk() -> None:
        by_id = tmp_path / "root/dev/disk/by-id"
        by_id.mkdir(parents=True, exist_ok=True)
        (by_id / f"nvme-Amazon_Elastic_Block_Store_{VOLUME_ID.replace('-', '')}").symlink_to(tmp_path / "volume.dev")
        (tmp_path / "root/proc/self").mkdir(parents=True, exist_ok=True)
        (tmp_path / "root/proc/self/mountinfo").write_text("")

    boot_disk()
    tools = {**{f"MAILINFRA_{n.upper()}": str(bin_dir / n) for n in SPOOL_TOOLS},
             "VOLUME_DIR": str(tmp_path / "volume"), "MOUNTINFO": str(tmp_path / "root/proc/self/mountinfo")}

    def run(*extra: str, new_instance: bool = False) -> subprocess.CompletedProcess[str]:
        if new_instance:  # the old instance and its root disk are gone; the volume stays
            shutil.rmtree(tmp_path / "root")
            (tmp_path / "root").mkdir()
            boot_disk()
        return host(*extra, tools=tools)

    return run


def test_boot_mounts_the_spool_volume_by_its_id_and_a_replacement_finds_the_queue(
        spool_host, aws, tmp_path: Path) -> None:
    """GIVEN a new spool volume WHEN the first instance boots THEN it gets a file system once, is mounted,
    and the queues are bound onto it; WHEN a queued message sits there and a replacement instance boots
    with the same volume THEN nothing is formatted and the message is in its queue; a reboot (--spool-only)
    mounts it again from the applied manifest, fetching nothing."""
    proxy, s3, ssm = aws
    ssm.put_parameter(Name=DKIM, Value="key", Type="SecureString")
    _publish(s3, {**_manifest([FIRST[4]], ["10.0.0.5"]), "spool": SPOOL})
    device = str(tmp_path / f"root/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_{VOLUME_ID.replace('-', '')}")
    # What the postfix package made on the root disk before the first apply moves onto the volume.
    (tmp_path / "root/var/spool/postfix/maildrop").mkdir(parents=True)
    (tmp_path / "root/var/spool/postfix/maildrop/early").write_text("injected before the first apply")
    first = spool_host("--services", "start")
    assert first.returncode == 0, first.stderr
    log = _tool_log(tmp_path)
    assert f"mkfs -q -L mailinfra-spool {device}" in log
    assert log.index(f"mkfs -q -L mailinfra-spool {device}") < min(
        i for i, c in enumerate(log) if c.startswith(("postfix", "systemctl")))  # before the MTA
    assert (tmp_path / "volume/var/spool/postfix/maildrop/early").is_file()
    queue = tmp_path / "root/var/spool/postfix-tx"
    assert queue.resolve() == (tmp_path / "volume/var/spool/postfix-tx").resolve()
    (queue / "deferred").mkdir(exist_ok=True)
    (queue / "deferred/4F1A2B3C").write_text("a queued message")

    replaced = spool_host("--services", "start", new_instance=True)
    assert replaced.returncode == 0, replaced.stderr
    assert not [c for c in _tool_log(tmp_path) if c.startswith("mkfs")]
    assert (tmp_path / "root/var/spool/postfix-tx/deferred/4F1A2B3C").read_text() == "a queued message"

    # A reboot: mounts are gone, the root disk stays.
    (tmp_path / "root/proc/self/mountinfo").write_text("")
    for path in ("var/lib/mailinfra/spool", "var/spool/postfix", "var/spool/postfix-tx"):
        (tmp_path / "root" / path).unlink()
        (tmp_path / "root" / path).mkdir()
    fetched = sum(proxy.fetched.values())
    rebooted = spool_host("--spool-only")
    assert rebooted.returncode == 0, rebooted.stderr
    assert (tmp_path / "root/var/spool/postfix-tx/deferred/4F1A2B3C").is_file()
    assert sum(proxy.fetched.values()) == fetched


def test_a_volume_with_another_file_system_is_never_formatted(spool_host, aws, tmp_path: Path) -> None:
    """A volume that holds something else (not ext4) may be mail of another kind: one line, no mkfs."""
    _, s3, ssm = aws
    ssm.put_parameter(Name=DKIM, Value="key", Type="SecureString")
    _publish(s3, {**_manifest([], [], instances=False), "spool": SPOOL})
    (tmp_path / "volume.dev").write_text("xfs")
    done = spool_host("--services", "start")
    assert done.returncode == 1
    assert done.stderr.strip() == (f"mailinfra-apply-config: spool volume {VOLUME_ID}: blkid says 'xfs', "
                                   "expected ext4 or no file system"), done.stderr
    assert not [c for c in _tool_log(tmp_path) if c.startswith(("mkfs", "mount", "systemctl"))]


def test_the_mta_waits_while_no_manifest_was_applied(spool_host, tmp_path: Path) -> None:
    """Before the first apply (packages may start the MTA early), --spool-only fails, so the MTA unit that
    requires it does not start on the root disk's spool."""
    done = spool_host("--spool-only")
    assert done.returncode == 1 and "no applied manifest yet" in done.stderr, done.stderr


def test_the_bounce_mx_certificate_is_generated_once_on_the_host_and_kept(host, aws, tmp_path: Path) -> None:
    """A manifest `certificates` entry (the bounce MX's smtpd_tls_chain_files): the real openssl makes a key
    and a self-signed certificate for the names, key first then certificate in one file (Postfix reads
    smtpd_tls_chain_files that way), 0600 in a 0700 directory; the next run keeps it (no new key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    _, s3, _ = aws
    path = "/etc/mailinfra/tls/inbound.pem"
    manifest = _manifest([], [], secrets=False, instances=False)
    manifest["certificates"] = [{"path": path, "names": ["mta1.example.com"], "days": 3650}]
    _publish(s3, manifest)
    done = host()
    assert done.returncode == 0, done.stderr
    written = tmp_path / "root" / path.lstrip("/")
    assert _mode(written) == 0o600 and _mode(written.parent) == 0o700
    pem = written.read_bytes()
    assert pem.index(b"PRIVATE KEY-----") < pem.index(b"BEGIN CERTIFICATE-----")
    key = serialization.load_pem_private_key(pem, password=None)
    cert = x509.load_pem_x509_certificate(pem[pem.index(b"-----BEGIN CERTIFICATE-----"):])
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["mta1.example.com"]
    assert cert.public_key().public_numbers() == key.public_key().public_numbers()  # type: ignore[union-attr]
    again = host()
    assert again.returncode == 0, again.stderr
    assert written.read_bytes() == pem
