"""Postfix + OpenDKIM of one host, provisioned the way an EC2 host is, then started by PID.

The host's user data (the deployment's aws:ec2/instance:Instance) writes mailinfra-apply-config and runs it
against the host's manifest object; the lab runs that same program with the same arguments, signed with the
credentials of the host's own instance-profile role, against the moto stand-in of the deployment's S3, SSM
and IAM (mailinfra.deployment.aws_world, IAM enforced). It writes the manifest's files and the SSM secrets,
runs postmap, adds the private addresses to the lab interface and prepares the postmulti instances.

The lab overlay, and nothing else, differs from a real host:
1. Paths: the apply program writes under the lab root (<runtime>/root, its --root), and every absolute
   /etc, /var or /run path inside the written files is moved under that root (also before the apply
   program's `postfix set-permissions`/`check`, through the lab's postfix stand-in), so each instance's
   queue, key and socket is the lab's own.
2. AWS: --endpoint-url names the moto server and the role session's keys are in the environment (a host
   gets them from the instance metadata service).
3. Network: the apply program's `ip` runs inside the lab namespace, where the lab gives it the default
   route a host's subnet gives; the EIP NAT AWS performs is the lab's nftables (firewall.install_firewall), so
   receivers see the EIP. Every instance listens on the private address behind the host's inbound EIP
   only (inet_interfaces), the primary on loopback as well (where the pool instances hand it DSNs, as on a
   real bounce host whose `all` includes loopback). On a real host `all` is that host's own addresses; in
   the lab the providers' and routes' addresses are local too, and Postfix would refuse to deliver to them
   ("mail for gmail.com loops back to myself"); the primary would also collide with the providers on 25.
4. Processes: --services none, and the lab starts every OpenDKIM signer (RSA, and Ed25519 when rendered)
   and every Postfix instance itself, by PID (no systemd; the primary does not drive postmulti); the
   day's warmup limits are set by the manifest's mailinfra-apply-limits (the user data's
   mailinfra-limits.service) for the lab's date; each instance logs to a file (maillog_file) because the
   lab has no syslog. The signers run as their rendered UserID and read the keys written for that user.
   Milter sockets: both files name them by the same /run path, so overlay 1 moves OpenDKIM's
   `Socket local:` and Postfix's `smtpd_milters = unix:` alike. A host adds postfix to the opendkim group
   (cloud-init); rather than change the lab machine's groups, the lab's run/opendkim is owned by the
   signer, setgid and group-owned by Postfix's mail_owner group: the sockets inherit that group, and
   UMask 007 gives the group the same access it has on a host.
5. Only with `rsa_only` (off by default): the Ed25519 signer is not started and the instances call
   the RSA signer only, for comparing a run without Ed25519 signatures.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import pwd
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mailinfra.deployment.aws_world import HostAccess, MotoServer
from mailinfra.deployment.program import Deployment
from mailinfra.lab.namespace import LabError, in_namespace, namespace_pids
from mailinfra.lab.procs import LabState, adopt_process, start_process, stop_process
from mailinfra.mta.host_code import HOST_PYTHON_PATH
from mailinfra.mta.limits_calendar import APPLY_SCRIPT, LIMITS_FILE
from mailinfra.mta.opendkim import Signer, plan_signers
from mailinfra.mta.postfix import plan_instances
from mailinfra.plan.model import HostPlan, Plan

# An absolute path a rendered file refers to; `${command_directory}/...` and /usr paths stay as they are.
_HOST_PATH = re.compile(r"(?<![\w.}/-])/(etc|var|run)/")
START_TIMEOUT_SECONDS = 15.0
# Where the user data installs the apply program, and where that program keeps the manifest it applied.
APPLY_PROGRAM = "/usr/local/sbin/mailinfra-apply-config"
APPLIED_STATE = "var/lib/mailinfra/applied-manifest.json"
HOST_SKELETON = ("etc", "run", "var/lib", "var/log", "var/mail", "var/spool")
LIMITS_SCRIPT, LIMITS_CALENDAR = f"/{APPLY_SCRIPT}", f"/{LIMITS_FILE}"
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
    listen: str  # the private address the instances listen on (the inbound EIP's, behind the lab's NAT)


def relocate(text: str, root: Path) -> str:
    """Overlay 1: put every /etc, /var, /run path of a rendered file under the lab root (a path already
    there stays: the apply step and the overlay may both see a file)."""
    prefix = f"{root}/"

    def move(match: re.Match[str]) -> str:
        if text.startswith(prefix, match.start()):
            return match.group(0)
        return f"{root}/{match.group(1)}/"

    return _HOST_PATH.sub(move, text)


def provision_host(deployment: Deployment, world: MotoServer, access: HostAccess, plan: Plan, host: HostPlan, *,
                   root: Path, namespace: str, interface: str, rsa_only: bool = False) -> StagedHost:
    """The host gets its files as on EC2: its user data's mailinfra-apply-config, run with its role's
    credentials against the AWS stand-in, applies its manifest (bundle object, SSM secrets, private
    addresses on the interface, postmulti instances); then the overlay below."""
    program, args = boot_command(deployment, host.name)
    for skeleton in HOST_SKELETON:
        # What a Debian host has before any package writes there (postfix creates data and queue below).
        (root / skeleton).mkdir(parents=True, exist_ok=True)
    installed = root / APPLY_PROGRAM.lstrip("/")
    installed.parent.mkdir(parents=True, exist_ok=True)
    installed.write_text(program)
    installed.chmod(0o700)
    tools = _stand_in_tools(root.parent / "tools" / host.name, namespace, root)
    # On EC2 the ENI's subnet gives the default route the apply program puts the addresses beside.
    ensure_default_route(namespace, interface)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | access.credentials.environment()
    env |= {f"MAILINFRA_{tool.upper()}": str(path) for tool, path in tools.items()}
    # --services none: the lab starts each process itself, by PID (overlay 4); --endpoint-url: the stand-in.
    argv = [sys.executable, str(installed), *args, "--root", str(root), "--endpoint-url", world.url,
            "--services", "none", "--attempts", "2", "--retry-seconds", "1"]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        raise LabError(f"host {host.name}: provisioning with role {access.role} failed: {reason}")
    manifest = json.loads((root / APPLIED_STATE).read_text())["manifest"]
    _relocate_applied(manifest, root)
    _apply_limits(root, plan)
    private = dict(zip(host.ips, manifest["addresses"], strict=True))
    listen = next(private[n] for n in host.ips if plan.ip(n).address == host.inbound_address)
    instances = [PostfixInstance("postfix", root / "etc/postfix", None, None)]
    instances += [PostfixInstance(i.name, root / i.config_dir.lstrip("/"), i.pool, i.port)
                  for i in plan_instances(plan, host)]
    signers = plan_signers(plan, host)
    if rsa_only:
        signers = tuple(s for s in signers if s.algorithm == "rsa-sha256")
    for instance in instances:
        overrides = {"maillog_file": str(root / "var/log" / f"{instance.name}.log"),
                     "maillog_file_prefixes": str(root / "var"), "inet_interfaces": listen}
        if instance.pool is None:
            overrides |= {"multi_instance_wrapper": "", "multi_instance_directories": "",
                          "queue_directory": str(root / "var/spool/postfix"),
                          "data_directory": str(root / "var/lib/postfix"),
                          "inet_interfaces": f"{listen}, 127.0.0.1"}
        elif rsa_only:
            overrides["smtpd_milters"] = relocate(", ".join(s.milter_entry for s in signers), root)
        postconf_set(instance.config_dir, overrides)
        settings = read_main_cf(instance.config_dir / "main.cf")
        queue, data = settings["queue_directory"], settings["data_directory"]
        owner = settings.get("mail_owner", "postfix")
        Path(queue).mkdir(parents=True, exist_ok=True)
        Path(data).mkdir(parents=True, exist_ok=True)
        shutil.chown(data, user=owner)
    (root / "var/log").mkdir(parents=True, exist_ok=True)
    # Every instance runs as the same mail_owner (Postfix's default, postfix); the signers run as their
    # rendered UserID and read the keys the apply program wrote for that user.
    _prepare_socket_dirs({signer_socket(signer, root).parent for signer in signers}, owner,
                         {_signer_user(root / signer.conf.lstrip("/")) for signer in signers})
    return StagedHost(host.name, root, tuple(instances), signers, listen)


def boot_command(deployment: Deployment, host: str) -> tuple[str, list[str]]:
    """The apply program and its boot arguments, as the host's EC2 user data (cloud-config) writes and runs
    them (templates/cloud-init/user-data.yaml.j2: write_files, runcmd)."""
    import yaml

    instance = next((r for r in deployment.of_type("aws:ec2/instance:Instance")
                     if (r.inputs.get("tags") or {}).get("host") == host), None)
    if instance is None:
        raise LabError(f"host {host}: the deployment declares no aws:ec2/instance:Instance tagged host={host}")
    text = instance.inputs.get("userData") or gzip.decompress(
        base64.b64decode(str(instance.inputs.get("userDataBase64") or ""))).decode()
    config = yaml.safe_load(text)
    program = next((f["content"] for f in config.get("write_files", []) if f.get("path") == APPLY_PROGRAM), None)
    command = next((c for c in config.get("runcmd", []) if isinstance(c, str)
                    and c.startswith(f"{APPLY_PROGRAM} ") and "--addresses-only" not in c), None)
    if program is None or command is None:
        raise LabError(f"instance {instance.name}: user data writes or runs no {APPLY_PROGRAM}, expected both")
    return program, shlex.split(command)[1:]


def boot_region(deployment: Deployment) -> str:
    """The region the hosts' user data runs the apply program against (`--region`)."""
    for instance in deployment.of_type("aws:ec2/instance:Instance"):
        host = str((instance.inputs.get("tags") or {}).get("host", ""))
        _, args = boot_command(deployment, host)
        if "--region" in args:
            return args[args.index("--region") + 1]
    return "us-east-1"


def ensure_default_route(namespace: str, interface: str) -> None:
    """A default route on the lab interface (`ip -4 route show default` names the interface the apply program
    adds the private addresses to); the interface is a dummy, so nothing routed there leaves the namespace."""
    result = subprocess.run(["ip", "-n", namespace, "route", "replace", "default", "dev", interface],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise LabError(f"ip -n {namespace} route replace default dev {interface}: {result.stderr.strip()}")


def _stand_in_tools(directory: Path, namespace: str, root: Path) -> dict[str, Path]:
    """The commands the apply program runs, lab edition: `ip` acts inside the lab namespace (the host's own
    network), `postfix` sees its instance's paths under the lab root (overlay 1) before the real postfix
    runs; postmap and postconf are the real ones; systemctl is never reached (--services none)."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    pythonpath = str(Path(__file__).resolve().parents[2])
    scripts = {
        "ip": f'#!/bin/sh\nexec ip -n {shlex.quote(namespace)} "$@"\n',
        "postfix": (f"#!/bin/sh\nPYTHONPATH={shlex.quote(pythonpath)} exec {shlex.quote(sys.executable)} "
                    f'-m mailinfra.lab.mta postfix {shlex.quote(str(root))} "$@"\n'),
        "systemctl": "#!/bin/sh\necho systemctl is not used in the lab >&2\nexit 1\n",
    }
    tools = {}
    for name, body in scripts.items():
        path = directory / name
        path.write_text(body)
        path.chmod(0o700)
        tools[name] = path
    return tools


def _relocate_applied(manifest: dict[str, Any], root: Path) -> None:
    """Overlay 1 on every file the manifest wrote (not the secrets: their values are not touched); a map
    whose source changed is indexed again, as the apply program would."""
    for file in manifest["files"]:
        if file["path"].startswith(f"{HOST_PYTHON_PATH}/"):
            continue  # code, not config: its path constants stay; the services get --root or relocated configs
        path = root / file["path"].lstrip("/")
        text = path.read_text()
        moved = relocate(text, root)
        if moved != text:
            path.write_text(moved)
            if file.get("postmap"):
                kind, _, source = file["postmap"].partition(":")
                subprocess.run(["postmap", f"{kind}:{root}{source}"], check=True, capture_output=True)


def _apply_limits(root: Path, plan: Plan) -> None:
    """What the user data runs next (`systemctl start mailinfra-limits.service`): the warmup calendar's limits
    of the lab's date (the host's files hold warmup day 0's), by the manifest's own mailinfra-apply-limits."""
    script, calendar = root / LIMITS_SCRIPT.lstrip("/"), root / LIMITS_CALENDAR.lstrip("/")
    if not script.is_file():
        return
    done = subprocess.run([sys.executable, str(script), str(calendar), plan.as_of.isoformat()],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise LabError(f"{script}: exit {done.returncode}: {(done.stderr.strip().splitlines() or [''])[-1]}")


def _postfix_stand_in(root: Path, argv: list[str]) -> int:
    """`postfix -c DIR ...` from the apply program: DIR's main.cf and master.cf moved under the lab root
    (so `set-permissions create-missing` and `check` act on the lab's queue, not this machine's), then
    the real postfix."""
    if argv[:1] == ["-c"] and len(argv) > 1:
        for name in ("main.cf", "master.cf"):
            path = Path(argv[1]) / name
            if path.is_file():
                text = path.read_text()
                if relocate(text, root) != text:
                    path.write_text(relocate(text, root))
    return subprocess.run(["postfix", *argv], check=False).returncode


def signer_socket(signer: Signer, root: Path) -> Path:
    """Where a signer listens in the lab: its rendered socket path moved by overlay 1, as in its
    opendkim.conf and in every instance's smtpd_milters."""
    path = Path(relocate(signer.socket_path, root))
    if len(str(path).encode()) > UNIX_PATH_MAX:
        raise LabError(f"lab root {root}: socket path {path} is longer than {UNIX_PATH_MAX} bytes "
                       "(sun_path), expected a shorter runtime directory")
    return path


def _signer_user(conf: Path) -> str:
    """The UserID a rendered opendkim.conf runs as (user[:group])."""
    for line in conf.read_text().splitlines():
        if line.startswith("UserID"):
            return line.split()[1].split(":")[0]
    return "root"


def _prepare_socket_dirs(directories: set[Path], postfix_owner: str, signer_users: set[str]) -> None:
    """Overlay 4: the signers' socket directories owned by the signer, setgid and group Postfix's, so the
    sockets are <signer>:<postfix group> 0770 (UMask 007) and smtpd can connect; nobody else can. (A host
    adds postfix to the opendkim group instead; the lab does not change this machine's groups.)"""
    group = pwd.getpwnam(postfix_owner).pw_gid
    users = sorted(signer_users)
    if len(users) != 1:
        raise LabError(f"opendkim.conf UserID: received {users}, expected one user for every signer of a host")
    uid = pwd.getpwnam(users[0]).pw_uid
    for directory in directories:
        directory.mkdir(parents=True, exist_ok=True)
        os.chown(directory, uid, group)
        directory.chmod(0o2750)


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


def start_postfix(state: LabState, namespace: str, instance: PostfixInstance, listen: str | None = None) -> int:
    """`postfix start` inside the namespace; the master's PID (from its pid file) is recorded. `listen`: where
    to wait for its port (default: the first address of its inet_interfaces, the private one)."""
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
        address = listen or read_main_cf(instance.config_dir / "main.cf")["inet_interfaces"].split(",")[0].strip()
        wait_for_port(namespace, address, instance.port, instance.name)
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


if __name__ == "__main__":
    # The lab's stand-in for postfix(1) in the apply program's runs (_stand_in_tools).
    if sys.argv[1:2] != ["postfix"] or len(sys.argv) < 3:
        sys.exit("usage: python -m mailinfra.lab.mta postfix ROOT ARGS...")
    sys.exit(_postfix_stand_in(Path(sys.argv[2]), sys.argv[3:]))
