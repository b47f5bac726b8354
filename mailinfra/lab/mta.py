"""Postfix + OpenDKIM of one host, started from exactly the files `mailinfra render` produces.

The lab overlay, and nothing else, differs from a real host:
1. Paths: every absolute /etc, /var or /run path in the rendered files is moved under the lab's
   root (<runtime>/root), where the files themselves are written; so the lab DKIM keys sit where
   the KeyTable expects them and each instance's queue is the lab's own.
2. Secrets: the `@@SECRET:name@@` markers are filled with credentials made for this lab run.
3. Addresses: every instance listens on the host's inbound address only (inet_interfaces). On a
   real host `all` is that host's own addresses; in the lab the providers' and routes' addresses
   are local too, and Postfix would refuse to deliver to them ("mail for gmail.com loops back to
   myself"); the primary would also collide with the providers on port 25.
4. Processes: OpenDKIM runs as root (the lab keys are root-only) with its PID file under the root;
   the primary does not drive postmulti (the lab starts every instance itself, by PID), and each
   instance logs to a file (maillog_file) because the lab has no syslog.
5. Only with `rsa_only` (a stop-gap, off by default): the Ed25519 KeyTable/SigningTable entries are
   dropped. OpenDKIM 2.11 signs every KeyTable key with its one SignatureAlgorithm (rsa-sha256), so an
   Ed25519 key fails with "EVP_PKEY_get1_RSA() failed" and, rightly, every message is deferred.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from mailinfra.lab.namespace import LabError, in_namespace
from mailinfra.lab.procs import LabState, adopt_process, start_process, stop_process
from mailinfra.mta.files import SECRET_MARK, RenderedFile
from mailinfra.mta.postfix import plan_instances
from mailinfra.mta.render import render_host
from mailinfra.plan.model import HostPlan, Plan

# An absolute path a rendered file refers to; `${command_directory}/...` and /usr paths stay as they are.
_HOST_PATH = re.compile(r"(?<![\w.}/-])/(etc|var|run)/")
START_TIMEOUT_SECONDS = 15.0


@dataclass(frozen=True, slots=True)
class PostfixInstance:
    name: str  # postfix-<pool> or "postfix" for the primary
    config_dir: Path  # inside the lab root
    pool: str | None
    port: int | None


@dataclass(frozen=True, slots=True)
class StagedHost:
    host: str
    root: Path
    instances: tuple[PostfixInstance, ...]
    opendkim_conf: Path


def relocate(text: str, root: Path) -> str:
    """Overlay 1: put every /etc, /var, /run path of a rendered file under the lab root."""
    return _HOST_PATH.sub(lambda m: f"{root}/{m.group(1)}/", text)


def fill_secrets(text: str, secrets: dict[str, str]) -> str:
    """Overlay 2: the lab's own credentials in place of the markers the host's boot script fills."""
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in secrets:
            raise LabError(f"rendered file needs secret {name!r}; the lab has no value for it")
        return secrets[name]
    return SECRET_MARK.sub(value, text)


def stage_host(plan: Plan, host: HostPlan, root: Path, secrets: dict[str, str], *,
               rsa_only: bool = False) -> StagedHost:
    """Write the host's rendered files under `root` with the overlay applied; create queue dirs."""
    files = render_host(plan, host.name)
    for rendered in files:
        _write(rendered, root, secrets)
    instances = [PostfixInstance("postfix", root / "etc/postfix", None, None)]
    instances += [PostfixInstance(i.name, root / i.config_dir.lstrip("/"), i.pool, i.port)
                  for i in plan_instances(plan, host)]
    for instance in instances:
        overrides = {"maillog_file": str(root / "var/log" / f"{instance.name}.log"),
                     "maillog_file_prefixes": str(root / "var"), "inet_interfaces": host.inbound_address}
        if instance.pool is None:
            overrides |= {"multi_instance_wrapper": "", "multi_instance_directories": "",
                          "queue_directory": str(root / "var/spool/postfix"),
                          "data_directory": str(root / "var/lib/postfix")}
        postconf_set(instance.config_dir, overrides)
        queue, data, owner = postconf_get(instance.config_dir, "queue_directory", "data_directory", "mail_owner")
        Path(queue).mkdir(parents=True, exist_ok=True)
        Path(data).mkdir(parents=True, exist_ok=True)
        shutil.chown(data, user=owner)
    (root / "var/log").mkdir(parents=True, exist_ok=True)
    if rsa_only:
        _drop_ed25519(plan, root / "etc/opendkim")
    conf = root / "etc/opendkim.conf"
    lines = [line for line in conf.read_text().splitlines() if not line.startswith("UserID")]
    conf.write_text("\n".join(lines) + "\n")
    for path in (root / "run/opendkim", root / "var/mail/mailinfra-bounces"):
        path.mkdir(parents=True, exist_ok=True)
    return StagedHost(host.name, root, tuple(instances), conf)


def _drop_ed25519(plan: Plan, conf_dir: Path) -> None:
    names = [f"{k.selector}._domainkey." for k in plan.dkim_keys if k.algorithm == "ed25519"]
    for table in ("KeyTable", "SigningTable"):
        path = conf_dir / table
        lines = [line for line in path.read_text().splitlines() if not any(n in line for n in names)]
        path.write_text("\n".join(lines) + "\n")


def _write(rendered: RenderedFile, root: Path, secrets: dict[str, str]) -> None:
    path = root / rendered.path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    path.write_text(fill_secrets(relocate(rendered.content, root), secrets))
    path.chmod(rendered.mode)


def postconf_set(config_dir: Path, values: dict[str, str]) -> None:
    args = ["postconf", "-c", str(config_dir), "-e", *(f"{k}={v}" for k, v in values.items())]
    result = subprocess.run(args, capture_output=True, text=True, check=False)
    if result.returncode != 0 or result.stderr.strip():
        raise LabError(f"{config_dir}/main.cf: postconf -e failed: {result.stderr.strip()}")


def postconf_get(config_dir: Path, *keys: str) -> list[str]:
    """The values of `keys`, in order (one postconf run: each costs ~0.5 s on a big main.cf)."""
    result = subprocess.run(["postconf", "-c", str(config_dir), "-h", *keys], capture_output=True, text=True,
                            check=False)
    if result.returncode != 0:
        raise LabError(f"{config_dir}/main.cf: postconf -h {' '.join(keys)} failed: {result.stderr.strip()}")
    return result.stdout.splitlines()


def start_opendkim(state: LabState, namespace: str, staged: StagedHost) -> int:
    name = f"opendkim-{staged.host}"
    argv = in_namespace(namespace, ["opendkim", "-f", "-x", str(staged.opendkim_conf), "-l"])
    pid = start_process(state, name, argv, staged.root / "var/log" / "opendkim.log")
    wait_for_port(namespace, "127.0.0.1", 8891, name)
    return pid


def stop_opendkim(state: LabState, host: str) -> None:
    stop_process(state, f"opendkim-{host}")


def start_postfix(state: LabState, namespace: str, instance: PostfixInstance, listen: str) -> int:
    """`postfix start` inside the namespace; the master's PID (from its pid file) is recorded."""
    result = subprocess.run(in_namespace(namespace, ["postfix", "-c", str(instance.config_dir), "start"]),
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        # postfix(1) reports through its log, not stderr: show the log's last line.
        log = Path(postconf_get(instance.config_dir, "maillog_file")[0])
        last = log.read_text().strip().splitlines()[-1:] if log.exists() else []
        raise LabError(f"{instance.config_dir}: postfix start failed: "
                       f"{(result.stderr or result.stdout).strip()} {' '.join(last)}".strip())
    pid_file = Path(postconf_get(instance.config_dir, "queue_directory")[0]) / "pid" / "master.pid"
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not pid_file.exists():
        if time.monotonic() > deadline:
            raise LabError(f"{instance.config_dir}: Postfix master did not write {pid_file}")
        time.sleep(0.05)
    pid = int(pid_file.read_text().split()[0])
    adopt_process(state, _process_name(instance), pid, "master")
    if instance.port is not None:
        wait_for_port(namespace, listen, instance.port, instance.name)
    return pid


def stop_postfix(state: LabState, instance: PostfixInstance) -> None:
    stop_process(state, _process_name(instance), timeout=10.0)


def _process_name(instance: PostfixInstance) -> str:
    return f"{instance.name}-master"


def queue_json(namespace: str, instance: PostfixInstance) -> list[str]:
    """postqueue -j lines of one instance (one JSON object per queued message)."""
    result = subprocess.run(in_namespace(namespace, ["postqueue", "-c", str(instance.config_dir), "-j"]),
                            capture_output=True, text=True, check=False)
    return [line for line in result.stdout.splitlines() if line.strip()]


def flush_queue(namespace: str, instance: PostfixInstance) -> None:
    subprocess.run(in_namespace(namespace, ["postqueue", "-c", str(instance.config_dir), "-f"]),
                   capture_output=True, text=True, check=False)


def wait_for_port(namespace: str, host: str, port: int, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    probe = (f"import socket,sys\ns=socket.socket()\ns.settimeout(0.5)\n"
             f"sys.exit(s.connect_ex(({host!r},{port})))")
    while subprocess.run(in_namespace(namespace, ["python3", "-c", probe]), check=False).returncode != 0:
        if time.monotonic() > deadline:
            raise LabError(f"{what}: nothing listens on {host}:{port} after {START_TIMEOUT_SECONDS:.0f} s")
        time.sleep(0.1)
