"""Postfix + OpenDKIM of one host, started from exactly the files `mailinfra render` produces.

The lab overlay, and nothing else, differs from a real host:
1. Paths: every absolute /etc, /var or /run path in the rendered files is moved under the lab's
   root (<runtime>/root), where the files themselves are written; so the lab DKIM keys sit where
   the KeyTable expects them and each instance's queue is the lab's own.
2. Secrets: the `@@SECRET:name@@` markers are filled with credentials made for this lab run.
3. Addresses: every instance listens on the host's inbound address only (inet_interfaces), the
   primary on loopback as well (where the pool instances hand it DSNs, as on a real bounce host whose
   `all` includes loopback). On a real host `all` is that host's own addresses; in the lab the
   providers' and routes' addresses are local too, and Postfix would refuse to deliver to them
   ("mail for gmail.com loops back to myself"); the primary would also collide with the providers
   on port 25.
4. Processes: every OpenDKIM signer (RSA, and Ed25519 when rendered) runs as root (the lab keys are
   root-only) with its PID file under the root; the primary does not drive postmulti (the lab starts
   every instance itself, by PID), and each instance logs to a file (maillog_file) because the lab
   has no syslog.
   Milter sockets: both files name them by the same /run path, so overlay 1 moves OpenDKIM's
   `Socket local:` and Postfix's `smtpd_milters = unix:` alike. A host runs OpenDKIM as opendkim and
   adds postfix to the opendkim group (cloud-init); a root signer would make its sockets root:root,
   which Postfix's smtpd (user postfix) cannot open. Rather than change the lab machine's users, the
   lab's run/opendkim is setgid and group-owned by Postfix's mail_owner group: the sockets inherit that
   group, and UMask 007 gives the group the same access it has on a host.
5. Only with `rsa_only` (off by default): the Ed25519 signer is not started and the instances call
   the RSA signer only, for comparing a run without Ed25519 signatures.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from mailinfra.lab.namespace import LabError, in_namespace, namespace_pids
from mailinfra.lab.procs import LabState, adopt_process, start_process, stop_process
from mailinfra.mta.files import SECRET_MARK, RenderedFile
from mailinfra.mta.opendkim import Signer, plan_signers
from mailinfra.mta.postfix import MAIL_UID, plan_instances
from mailinfra.mta.render import render_host
from mailinfra.plan.model import HostPlan, Plan

# An absolute path a rendered file refers to; `${command_directory}/...` and /usr paths stay as they are.
_HOST_PATH = re.compile(r"(?<![\w.}/-])/(etc|var|run)/")
START_TIMEOUT_SECONDS = 15.0
UNIX_PATH_MAX = 107  # sun_path is 108 bytes on Linux, NUL included (unix(7))


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
    signers: tuple[Signer, ...]  # the rendered OpenDKIM processes the lab starts (conf paths on the host)


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
    signers = plan_signers(plan, host)
    if rsa_only:
        signers = tuple(s for s in signers if s.algorithm == "rsa-sha256")
    for instance in instances:
        overrides = {"maillog_file": str(root / "var/log" / f"{instance.name}.log"),
                     "maillog_file_prefixes": str(root / "var"), "inet_interfaces": host.inbound_address}
        if instance.pool is None:
            overrides |= {"multi_instance_wrapper": "", "multi_instance_directories": "",
                          "queue_directory": str(root / "var/spool/postfix"),
                          "data_directory": str(root / "var/lib/postfix"),
                          "inet_interfaces": f"{host.inbound_address}, 127.0.0.1"}
        elif rsa_only:
            overrides["smtpd_milters"] = relocate(", ".join(s.milter for s in signers), root)
        postconf_set(instance.config_dir, overrides)
        settings = read_main_cf(instance.config_dir / "main.cf")
        queue, data = settings["queue_directory"], settings["data_directory"]
        owner = settings.get("mail_owner", "postfix")
        Path(queue).mkdir(parents=True, exist_ok=True)
        Path(data).mkdir(parents=True, exist_ok=True)
        shutil.chown(data, user=owner)
    (root / "var/log").mkdir(parents=True, exist_ok=True)
    for signer in signers:
        conf = root / signer.conf.lstrip("/")
        lines = [line for line in conf.read_text().splitlines() if not line.startswith("UserID")]
        conf.write_text("\n".join(lines) + "\n")
    # Every instance runs as the same mail_owner (Postfix's default, postfix).
    _prepare_socket_dirs({signer_socket(signer, root).parent for signer in signers}, owner)
    # virtual(8) delivers bounces as the mail user (virtual_uid_maps), creating each domain's maildir.
    mailboxes = root / "var/mail/mailinfra-bounces"
    mailboxes.mkdir(parents=True, exist_ok=True)
    os.chown(mailboxes, MAIL_UID, MAIL_UID)
    return StagedHost(host.name, root, tuple(instances), signers)


def signer_socket(signer: Signer, root: Path) -> Path:
    """Where a signer listens in the lab: its rendered socket path moved by overlay 1, as in its
    opendkim.conf and in every instance's smtpd_milters."""
    path = Path(relocate(signer.socket_path, root))
    if len(str(path).encode()) > UNIX_PATH_MAX:
        raise LabError(f"lab root {root}: socket path {path} is longer than {UNIX_PATH_MAX} bytes "
                       "(sun_path), expected a shorter runtime directory")
    return path


def _prepare_socket_dirs(directories: set[Path], postfix_owner: str) -> None:
    """Overlay 4: the signers' socket directories setgid, group Postfix's, so root-made sockets are
    root:<postfix group> 0770 (UMask 007) and smtpd can connect; nobody else can."""
    group = pwd.getpwnam(postfix_owner).pw_gid
    for directory in directories:
        directory.mkdir(parents=True, exist_ok=True)
        os.chown(directory, 0, group)
        directory.chmod(0o2750)


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


def read_main_cf(path: Path) -> dict[str, str]:
    """`name = value` pairs of a main.cf (continuation lines joined); postconf -h costs ~1 s a call here."""
    values: dict[str, str] = {}
    last = ""
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line[0].isspace() and last:
            values[last] += " " + line.strip()
            continue
        name, sep, value = line.partition("=")
        if sep:
            last = name.strip()
            values[last] = value.strip()
    return values


def opendkim_process(signer: Signer, host: str) -> str:
    """The lab's process name of a signer: opendkim-<host>, opendkim-ed25519-<host>."""
    return f"{signer.service}-{host}"


def start_opendkim(state: LabState, namespace: str, staged: StagedHost) -> list[int]:
    """Every signer of the host from its rendered config, in the foreground (the lab tracks the PID)."""
    pids = []
    for signer in staged.signers:
        name = opendkim_process(signer, staged.host)
        conf = staged.root / signer.conf.lstrip("/")
        argv = in_namespace(namespace, ["opendkim", "-f", "-x", str(conf), "-l"])
        pids.append(start_process(state, name, argv, staged.root / "var/log" / f"{signer.service}.log"))
    for signer in staged.signers:
        wait_for_socket(signer_socket(signer, staged.root), opendkim_process(signer, staged.host))
    return pids


def stop_opendkim(state: LabState, staged: StagedHost) -> None:
    for signer in staged.signers:
        stop_process(state, opendkim_process(signer, staged.host))


def start_postfix(state: LabState, namespace: str, instance: PostfixInstance, listen: str) -> int:
    """`postfix start` inside the namespace; the master's PID (from its pid file) is recorded."""
    result = subprocess.run(in_namespace(namespace, ["postfix", "-c", str(instance.config_dir), "start"]),
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        # postfix(1) reports through its log, not stderr: show the log's last line.
        log = Path(read_main_cf(instance.config_dir / "main.cf")["maillog_file"])
        last = log.read_text().strip().splitlines()[-1:] if log.exists() else []
        raise LabError(f"{instance.config_dir}: postfix start failed: "
                       f"{(result.stderr or result.stdout).strip()} {' '.join(last)}".strip())
    pid_file = Path(read_main_cf(instance.config_dir / "main.cf")["queue_directory"]) / "pid" / "master.pid"
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
    """Until something listens on host:port inside the namespace (read from /proc, no process spawned)."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not is_listening(namespace, host, port):
        if time.monotonic() > deadline:
            raise LabError(f"{what}: nothing listens on {host}:{port} after {START_TIMEOUT_SECONDS:.0f} s")
        time.sleep(0.05)


def wait_for_socket(path: Path, what: str) -> None:
    """Until a Unix-domain socket accepts connections (a file-system socket is reachable from outside the
    network namespace; a stale file left by a killed signer refuses)."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not _accepts(path):
        if time.monotonic() > deadline:
            raise LabError(f"{what}: nothing listens on {path} after {START_TIMEOUT_SECONDS:.0f} s")
        time.sleep(0.05)


def _accepts(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        try:
            client.connect(str(path))
        except OSError:
            return False
    return True


def is_listening(namespace: str, host: str, port: int) -> bool:
    """/proc/<pid>/net/tcp of any process in the namespace lists the namespace's sockets."""
    pids = namespace_pids(namespace)
    if not pids:
        return False
    try:
        table = Path(f"/proc/{pids[0]}/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return False
    wanted = {f"{_hex_address(host)}:{port:04X}", f"00000000:{port:04X}"}
    # Column 2 is local address:port in hex, column 4 the state (0A = LISTEN).
    return any(fields[1] in wanted and fields[3] == "0A" for fields in (row.split() for row in table))


def _hex_address(address: str) -> str:
    return "".join(f"{int(octet):02X}" for octet in reversed(address.split(".")))
