"""The rspamd signer candidate (mailinfra/mta/rspamd.py): the real rspamd accepts the rendered config and,
run from it, writes an RSA and an Ed25519 signature in one pass that dkimpy verifies, covering the RFC 8058
pair and oversigning From (rspamd.com/doc/modules/dkim_signing.html; `(o)` in sign_headers oversigns)."""

from __future__ import annotations

import base64
import socket
import subprocess
import time
from email.message import EmailMessage
from pathlib import Path

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from mailinfra.mta.opendkim import ED25519, plan_signing
from mailinfra.mta.rspamd import render_rspamd, rspamd_key_file
from mailinfra.plan.model import Plan
from tests.tooling import require_tool, stop_by_pid


def _write_keys(plan: Plan, key_dir: Path) -> dict[bytes, bytes]:
    """Keys generated now for the first Postfix host's entries; DNS name -> TXT value for dkimpy."""
    host = next(h for h in plan.hosts if h.mta == "postfix")
    txt: dict[bytes, bytes] = {}
    made: dict[str, tuple[bytes, bytes]] = {}
    for entry in plan_signing(plan, host):
        path = Path(rspamd_key_file(entry, str(key_dir)))
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.name not in made:
            if entry.algorithm == ED25519:
                key = ed25519.Ed25519PrivateKey.generate()
                seed = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                         serialization.NoEncryption())
                public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
                made[path.name] = (base64.b64encode(seed + public),
                                   b"v=DKIM1; k=ed25519; p=" + base64.b64encode(public))
            else:
                rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
                pem = rsa_key.private_bytes(serialization.Encoding.PEM,
                                            serialization.PrivateFormat.TraditionalOpenSSL,
                                            serialization.NoEncryption())
                spki = rsa_key.public_key().public_bytes(serialization.Encoding.DER,
                                                         serialization.PublicFormat.SubjectPublicKeyInfo)
                made[path.name] = (pem, b"v=DKIM1; k=rsa; p=" + base64.b64encode(spki))
            path.write_bytes(made[path.name][0])
            path.chmod(0o600)
        txt[f"{entry.selector}._domainkey.{entry.domain}.".encode()] = made[path.name][1]
    return txt


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_rspamd_signs_both_algorithms_in_one_pass_and_dkimpy_verifies(stack_plan: Plan, tmp_path: Path) -> None:
    rspamd, rspamc = require_tool("rspamd"), require_tool("rspamc")
    host = next(h for h in stack_plan.hosts if h.mta == "postfix")
    txt = _write_keys(stack_plan, tmp_path / "keys")
    conf = tmp_path / "rspamd.conf"
    port = _free_port()
    # The rendered milter proxy, plus a plain scanner worker on loopback that rspamc can reach.
    conf.write_text(render_rspamd(stack_plan, host, key_dir=str(tmp_path / "keys"),
                                  socket_path=str(tmp_path / "milter.sock"), run_dir=str(tmp_path),
                                  log_file=str(tmp_path / "rspamd.log"))
                    + f'worker "normal" {{ bind_socket = "127.0.0.1:{port}"; count = 1; }}\n')
    check = subprocess.run([require_tool("rspamadm"), "configtest", "-c", str(conf)], capture_output=True,
                           text=True, check=False)
    assert check.returncode == 0 and "syntax OK" in check.stdout, check.stdout + check.stderr
    server = subprocess.Popen([rspamd, "-f", "-i", "-u", "root", "-g", "root", "-c", str(conf)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180  # a cold start compiles rspamd's hyperscan cache
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert server.poll() is None and time.monotonic() < deadline, (tmp_path / "rspamd.log").read_text()
            time.sleep(0.2)
        stream = stack_plan.stream(host.streams[0])
        message = EmailMessage()
        message["From"] = f"app <hello@{stream.sending_domain}>"
        message["To"] = "user@gmail.com"
        message["Subject"] = "one click"
        message["Message-ID"] = f"<1@{stream.sending_domain}>"
        message["List-Unsubscribe"] = f"<https://{stream.sending_domain}/u/1>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        message["Feedback-ID"] = "c1:news:mailinfra:test"
        message.set_content("body\n")
        done = subprocess.run([rspamc, "-h", f"127.0.0.1:{port}", "--mime", "-i", "127.0.0.1",
                               "-F", f"bounces@{stream.return_path}"], input=message.as_bytes(),
                              capture_output=True, check=True, timeout=60)
    finally:
        stop_by_pid(server)
    raw = done.stdout.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    verifier = dkim.DKIM(raw)
    signatures = [v for k, v in verifier.headers if k.lower() == b"dkim-signature"]
    algorithms = sorted(dict(t.strip().split(b"=", 1) for t in s.split(b";") if b"=" in t)[b"a"]
                        for s in signatures)
    assert algorithms == [b"ed25519-sha256", b"rsa-sha256"]

    def dns(name: bytes, timeout: int = 5) -> bytes | None:
        return txt.get(name)

    for index, signature in enumerate(signatures):
        assert dkim.DKIM(raw).verify(idx=index, dnsfunc=dns), signature
        h = [n.strip().lower() for n in dict(t.strip().split(b"=", 1) for t in signature.split(b";")
                                               if b"=" in t)[b"h"].replace(b" ", b"").split(b":")]
        assert h.count(b"from") == 2 and h.count(b"list-unsubscribe-post") == 2, h
        assert {b"message-id", b"feedback-id", b"list-unsubscribe"} <= set(h), h
