#!/usr/bin/python3
"""mailinfra-apply-config: make this host match its config manifest (components/mta_host.py renders it).

The manifest is this host's S3 object (its role reads that object and no other): rendered files with their
modes, secret markers and postmap types; secrets (names of this host's own SSM parameters, never values);
the private addresses its MTA binds; its postmulti instances; its services. Applying is idempotent: a file
is rewritten only when its bytes, mode or owner differ, and a second run changes nothing. What the
previously applied manifest listed and the new one does not (a file, a secret, an address this program
added) is removed: the last applied manifest is kept, root-only, in STATE.

Mail (the queues, bounce mail) lives on the host's spool volume, an EBS volume that outlives the instance:
at boot, before the MTA starts, the volume named in the manifest is found by its volume id (on Nitro
instances the NVMe serial, /dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol<id>), given a file system
if it has none (a new volume; one with a file system is never formatted), mounted, and its directories
bound over the spool paths. A replacement instance so finds the queue its predecessor left.

S3 and SSM reads are retried with backoff where the failure can be transient at first boot (IAM policies
and instance-profile credentials take seconds to propagate, egress waits for the EIP association,
throttling): a lasting failure, or a permanent one (a missing parameter), ends in one line.

Written by cloud-init and never changed by a plan change: plan changes reach the host as a new manifest
(`mailinfra-refresh-config`), so the EC2 user data, and with it the instance, stays the same.
Tests run it against a temporary root (--root) with stand-in commands (MAILINFRA_IP, ...) and a local
AWS stand-in (--endpoint-url).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path, PurePosixPath
from typing import Any

FORMAT = 1
STATE = "/var/lib/mailinfra/applied-manifest.json"
# Where postmap(1) writes the indexed database of a `type:path` map.
MAP_SUFFIXES = {"hash": (".db",), "btree": (".db",), "lmdb": (".lmdb",), "cdb": (".cdb",),
                "dbm": (".dir", ".pag"), "sdbm": (".dir", ".pag")}
# Tool -> the command run (each overridable as MAILINFRA_<TOOL> for tests).
TOOLS = {"ip": "ip", "postmap": "postmap", "postfix": "postfix", "postconf": "postconf", "systemctl": "systemctl",
         "blkid": "blkid", "mkfs": "mkfs.ext4", "mount": "mount", "cp": "cp", "openssl": "openssl"}
# Where udev names an EBS volume on a Nitro instance: the NVMe model and serial (the volume id without
# its dash), systemd's 60-persistent-storage rules; EC2 User Guide, "Amazon EBS and NVMe".
NVME_BY_ID = "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_{serial}"
SPOOL_LABEL = "mailinfra-spool"
# Failures that can end by themselves at first boot: IAM propagation (AccessDenied; S3 also answers a
# missing object with AccessDenied to a role without s3:ListBucket), credentials not yet on IMDS,
# throttling, service errors, no route out yet. Anything else (ParameterNotFound, ...) is permanent.
TRANSIENT = {"AccessDenied", "AccessDeniedException", "ExpiredToken", "ExpiredTokenException",
             "InvalidAccessKeyId", "UnrecognizedClientException", "RequestTimeout", "Throttling",
             "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded", "SlowDown",
             "InternalError", "InternalServerError", "ServiceUnavailable", "500", "502", "503", "504",
             "NoCredentialsError", "CredentialRetrievalError", "EndpointConnectionError",
             "ConnectTimeoutError", "ReadTimeoutError", "ConnectionClosedError"}
MAX_BACKOFF_SECONDS = 60.0


class ApplyError(Exception):
    """One line for the operator (the SSM Run Command output); never a secret value."""


class Host:
    """The host as this program sees it: a root directory and the commands it runs."""

    def __init__(self, root: str, log: list[str]) -> None:
        self.root = root.rstrip("/")
        self.tools = {name: os.environ.get(f"MAILINFRA_{name.upper()}", command) for name, command in TOOLS.items()}
        self.log = log

    def path(self, absolute: str) -> Path:
        return Path(self.root + absolute)

    def run(self, tool: str, *args: str) -> str:
        done = subprocess.run([self.tools[tool], *args], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            detail = (done.stderr.strip() or done.stdout.strip()).splitlines()
            raise ApplyError(f"{tool} {' '.join(args)}: exit {done.returncode}"
                             + (f": {detail[-1]}" if detail else ""))
        return done.stdout

    def probe(self, tool: str, *args: str) -> tuple[int, str]:
        """Exit code and output of a command whose failure is an answer (blkid: no file system)."""
        done = subprocess.run([self.tools[tool], *args], capture_output=True, text=True, check=False)
        return done.returncode, done.stdout


def check_path(path: Any, where: str) -> str:
    # Every path comes from the manifest: absolute and normalized, so none escapes its place (or --root).
    if not isinstance(path, str) or not path.startswith("/") or str(PurePosixPath(path)) != path \
            or ".." in PurePosixPath(path).parts:
        raise ApplyError(f"manifest {where}: received {path!r}, expected an absolute normalized path")
    return path


def check_manifest(manifest: Any) -> dict[str, Any]:
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        received = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise ApplyError(f"manifest format: received {received!r}, expected {FORMAT}")
    for key in ("files", "secrets", "addresses", "postfix_instances", "services"):
        if not isinstance(manifest.get(key), list):
            raise ApplyError(f"manifest {key}: received {type(manifest.get(key)).__name__}, expected a list")
    for file in manifest["files"]:
        check_path(file.get("path"), "files[].path")
    for secret in manifest["secrets"]:
        check_path(secret.get("path"), "secrets[].path")
        for directory in secret.get("directories", []):
            check_path(directory, "secrets[].directories[]")
    for instance in manifest["postfix_instances"]:
        check_path(instance.get("config_dir"), "postfix_instances[].config_dir")
    for certificate in manifest.get("certificates", []):
        check_path(certificate.get("path"), "certificates[].path")
    spool = manifest.get("spool")
    if spool is not None:
        if not isinstance(spool, dict) or not isinstance(spool.get("volume_id"), str) \
                or not isinstance(spool.get("directories"), list):
            raise ApplyError(f"manifest spool: received {spool!r}, expected a volume_id, mount and directories")
        check_path(spool.get("mount"), "spool.mount")
        for directory in spool.get("directories", []):
            check_path(directory.get("path"), "spool.directories[].path")
    return manifest


def aws_client(service: str, region: str, endpoint: str | None) -> Any:
    import boto3  # Debian's python3-boto3; imported here so --help and tests of errors need no boto3
    from botocore.config import Config

    # botocore's standard mode retries throttling, 5xx and dropped connections itself; the loop in
    # `retried` adds what it does not retry (AccessDenied while IAM propagates, missing credentials).
    config = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=10, read_timeout=30)
    return boto3.client(service, region_name=region, endpoint_url=endpoint, config=config)


def error_code(error: Exception) -> str:
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code") or response.get("ResponseMetadata", {}).get(
            "HTTPStatusCode") or type(error).__name__)
    return type(error).__name__


def retried(what: str, call: Any, args: argparse.Namespace) -> Any:
    """`call()`, again after 1, 2, 4 ... x --retry-seconds (at most MAX_BACKOFF_SECONDS) while it fails
    in a way that can be transient, at most --attempts times; otherwise one ApplyError line."""
    started = time.monotonic()
    for attempt in range(1, args.attempts + 1):
        try:
            return call()
        except Exception as error:
            code = error_code(error)
            if code not in TRANSIENT:
                raise ApplyError(f"{what}: {code} (not transient: not retried)") from None
            if attempt == args.attempts:
                hint = (": IAM propagation takes seconds; a lasting AccessDenied means the role's policy does not"
                        " grant it, or the object is missing" if code.startswith("AccessDenied") else "")
                raise ApplyError(f"{what}: {code} after {attempt} attempt{'s' if attempt > 1 else ''} over "
                                 f"{time.monotonic() - started:.1f} s{hint}") from None
            time.sleep(min(args.retry_seconds * 2 ** (attempt - 1), MAX_BACKOFF_SECONDS))
    raise AssertionError("unreachable")  # the loop returns or raises


def fetch_manifest(args: argparse.Namespace) -> dict[str, Any]:
    if args.manifest:
        return with_code(check_manifest(json.loads(Path(args.manifest).read_text())), args)
    s3 = aws_client("s3", args.region, args.endpoint_url)

    def read() -> bytes:
        return bytes(s3.get_object(Bucket=args.bucket, Key=args.key)["Body"].read())

    return with_code(check_manifest(json.loads(retried(f"s3://{args.bucket}/{args.key}", read, args))), args)


def with_code(manifest: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """The manifest with the files of the code object it names (the host services' Python tree, one object
    of the bucket for every host): fetched, its sha256 checked, its files added like any rendered file (so a
    dropped module is removed, and a second run changes nothing)."""
    code = manifest.get("code")
    if code is None:
        return manifest
    key, digest = (code.get("key"), code.get("sha256")) if isinstance(code, dict) else (None, None)
    if not isinstance(key, str) or not key.startswith("code/") or not isinstance(digest, str) or len(digest) != 64:
        raise ApplyError(f"manifest code: received {code!r}, expected a code/<sha256>.json key and its sha256")
    if not args.bucket:
        raise ApplyError(f"manifest code {key}: no --bucket to fetch it from, expected the config bucket")
    s3 = aws_client("s3", args.region, args.endpoint_url)

    def read() -> bytes:
        return bytes(s3.get_object(Bucket=args.bucket, Key=key)["Body"].read())

    data = retried(f"s3://{args.bucket}/{key}", read, args)
    if hashlib.sha256(data).hexdigest() != digest:
        raise ApplyError(f"s3://{args.bucket}/{key}: received sha256 {hashlib.sha256(data).hexdigest()}, "
                         f"expected {digest} (the manifest's)")
    files = json.loads(data)
    for file in files:
        check_path(file.get("path"), "code files[].path")
    manifest["files"] = [*manifest["files"], *({"path": f["path"], "mode": f["mode"], "content": f["content"],
                                               "fills": [], "postmap": None} for f in files)]
    return manifest


def fetch_secrets(manifest: dict[str, Any], args: argparse.Namespace) -> dict[str, str]:
    """Parameter name -> value, each of this host's parameters read once however many places it fills."""
    names = sorted({s["parameter"] for s in manifest["secrets"]}
                   | {p for f in manifest["files"] for _, p in f.get("fills", [])})
    if not names:
        return {}
    ssm = aws_client("ssm", args.region, args.endpoint_url)
    values = {}
    for name in names:
        values[name] = retried(f"SSM parameter {name}", lambda name=name: ssm.get_parameter(
            Name=name, WithDecryption=True)["Parameter"]["Value"], args)
    return values


def owner_ids(owner: str) -> tuple[int, int]:
    import grp
    import pwd

    user, _, group = owner.partition(":")
    try:
        return pwd.getpwnam(user).pw_uid, grp.getgrnam(group or user).gr_gid
    except KeyError:
        raise ApplyError(f"owner {owner!r}: no such user or group on this host") from None


def write_file(path: Path, data: bytes, mode: int, owner: tuple[int, int] | None = None) -> bool:
    """Replace `path` atomically with `data`, `mode` (and `owner`) unless it already is exactly that."""
    try:
        status = path.lstat()
        if (path.is_file() and not path.is_symlink() and (status.st_mode & 0o7777) == mode
                and (owner is None or (status.st_uid, status.st_gid) == owner) and path.read_bytes() == data):
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # 0600 until complete
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            if owner is not None:
                os.fchown(out.fileno(), *owner)
            os.fchmod(out.fileno(), mode)
            os.fsync(out.fileno())
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return True


def ensure_directory(path: Path, mode: int, owner: tuple[int, int]) -> bool:
    changed = not path.is_dir()
    path.mkdir(parents=True, exist_ok=True)
    status = path.stat()
    if (status.st_mode & 0o7777, (status.st_uid, status.st_gid)) != (mode, owner):
        os.chown(path, *owner)
        path.chmod(mode)
        changed = True
    return changed


def filled(file: dict[str, Any], secrets: dict[str, str]) -> bytes:
    text = str(file["content"])
    for marker, parameter in file.get("fills", []):
        if marker not in text:
            raise ApplyError(f"{file['path']}: marker {marker} not found")
        text = text.replace(marker, secrets[parameter])  # literal: a password may hold any character
    return text.encode()


def map_outputs(postmap: str) -> list[str]:
    kind, _, path = postmap.partition(":")
    return [path + suffix for suffix in MAP_SUFFIXES.get(kind, ())]


def default_interface(host: Host) -> str:
    words = host.run("ip", "-4", "route", "show", "default").split()
    if "dev" not in words:
        raise ApplyError("ip -4 route show default: no default route, expected one naming the interface")
    return words[words.index("dev") + 1]


def interface_addresses(host: Host, interface: str) -> set[str]:
    words = host.run("ip", "-4", "-o", "addr", "show", "dev", interface).split()
    return {words[i + 1].split("/")[0] for i, word in enumerate(words[:-1]) if word == "inet"}


def ensure_addresses(host: Host, wanted: list[str], added_before: list[str]) -> list[str]:
    """Put each wanted address on the default interface; remove those this program added before and the
    manifest no longer lists. Returns the addresses this program added (kept in STATE)."""
    # The EIPs are NAT-mapped to these private addresses of the ENI; cloud-init configures secondary
    # addresses only where the image enables it, and not at all after first boot.
    if not wanted and not added_before:
        return []
    interface = default_interface(host)
    present = interface_addresses(host, interface)
    added = [a for a in wanted if a in added_before and a in present]
    for address in wanted:
        if address not in present:
            host.run("ip", "addr", "add", f"{address}/32", "dev", interface)
            host.log.append(f"address added: {address}")
            added.append(address)
    for address in sorted(set(added_before) - set(wanted)):
        if address in present:
            host.run("ip", "addr", "del", f"{address}/32", "dev", interface)
            host.log.append(f"address removed: {address}")
    return sorted(set(added))


def mount_points(host: Host) -> set[str]:
    """The mount points of /proc/self/mountinfo (its fifth field, octal escapes such as \\040 decoded)."""
    path = host.path("/proc/self/mountinfo")
    if not path.is_file():
        return set()
    points = set()
    for line in path.read_text().splitlines():
        fields = line.split()
        if len(fields) > 4:
            points.add(fields[4].encode().decode("unicode_escape"))
    return points


def find_volume(host: Host, spool: dict[str, Any], wait_seconds: float) -> str:
    """The block device of the spool volume, waiting for it: at first boot the attachment is made after
    the instance runs. Found by the volume id (the NVMe serial), not by a device name the kernel assigns."""
    serial = str(spool["volume_id"]).replace("-", "")
    candidates = [NVME_BY_ID.format(serial=serial)]
    # Xen instances (no NVMe) show the attachment's device name /dev/sdX as /dev/xvdX.
    if str(spool.get("device_name", "")).startswith("/dev/sd"):
        candidates.append("/dev/xvd" + str(spool["device_name"]).removeprefix("/dev/sd"))
    deadline = time.monotonic() + wait_seconds
    while True:
        for candidate in candidates:
            if host.path(candidate).exists():
                return str(host.path(candidate))
        if time.monotonic() >= deadline:
            raise ApplyError(f"spool volume {spool['volume_id']}: no block device after {wait_seconds:.0f} s "
                             f"(looked for {', '.join(candidates)}); is its VolumeAttachment in place?")
        time.sleep(min(2.0, wait_seconds))


def ensure_spool(host: Host, spool: dict[str, Any] | None, wait_seconds: float) -> None:
    """Mount the spool volume and bind each of its directories over its spool path (idempotent)."""
    if not spool:
        return
    mount = spool["mount"]
    mounted = mount_points(host)
    if str(host.path(mount)) not in mounted:
        device = find_volume(host, spool, wait_seconds)
        code, kind = host.probe("blkid", "-o", "value", "-s", "TYPE", device)
        if code == 2 or (code == 0 and not kind.strip()):  # blkid(8): exit 2, no file system found
            host.run("mkfs", "-q", "-L", SPOOL_LABEL, device)
            host.log.append(f"spool file system made: {spool['volume_id']}")
        elif code != 0 or kind.strip() != "ext4":
            # Never format a volume that holds something: it may be another host's mail.
            raise ApplyError(f"spool volume {spool['volume_id']}: blkid says {kind.strip() or f'exit {code}'!r}, "
                             "expected ext4 or no file system")
        host.path(mount).mkdir(mode=0o700, parents=True, exist_ok=True)
        host.run("mount", "-o", "noatime", device, str(host.path(mount)))
        host.log.append(f"spool mounted: {spool['volume_id']} on {mount}")
    for directory in spool["directories"]:
        target = host.path(directory["path"])
        if str(target) in mounted:
            continue
        source = host.path(mount + directory["path"])
        if not source.is_dir():
            source.mkdir(parents=True)
            if target.is_dir() and any(target.iterdir()):
                # What the packages or an older instance put there (a queue on the root disk) moves along.
                host.run("cp", "-a", f"{target}/.", f"{source}/")
            else:
                ensure_directory(source, int(directory["mode"], 8), owner_ids(directory["owner"]))
        target.mkdir(parents=True, exist_ok=True)
        host.run("mount", "--bind", str(source), str(target))
        host.log.append(f"spool bound: {directory['path']}")


def load_state(host: Host) -> dict[str, Any]:
    path = host.path(STATE)
    if not path.is_file():
        return {"manifest": {"files": [], "secrets": [], "addresses": [], "postfix_instances": []},
                "added_addresses": []}
    return dict(json.loads(path.read_text()))


def write_secrets(host: Host, manifest: dict[str, Any], secrets: dict[str, str]) -> set[str]:
    changed = set()
    for secret in manifest["secrets"]:
        owner = owner_ids(secret["owner"])
        for directory in secret.get("directories", []):
            # The signer reads keys after dropping root: it owns its 0700 key directories (OpenDKIM
            # refuses keys in group- or world-accessible ones).
            if ensure_directory(host.path(directory), 0o700, owner):
                host.log.append(f"directory: {directory}")
        value = secrets[secret["parameter"]].encode()
        if write_file(host.path(secret["path"]), value, int(secret["mode"], 8), owner):
            changed.add(secret["path"])
    return changed


def remove_dropped(host: Host, manifest: dict[str, Any], previous: dict[str, Any]) -> None:
    """Remove what the previously applied manifest wrote and this one does not list (files, secrets, the
    databases of dropped maps): a file dropped from the plan must not stay on the host."""
    kept = {f["path"] for f in manifest["files"]} | {s["path"] for s in manifest["secrets"]}
    maps = {f["postmap"] for f in manifest["files"] if f.get("postmap")}
    dropped = [f["path"] for f in previous["files"] + previous["secrets"] if f["path"] not in kept]
    dropped += [o for f in previous["files"] if f.get("postmap") and f["postmap"] not in maps
                for o in map_outputs(f["postmap"])]
    for path in sorted(set(dropped)):
        if host.path(path).is_file():
            host.path(path).unlink()
            host.log.append(f"removed: {path}")


def run_postmaps(host: Host, manifest: dict[str, Any], changed: set[str]) -> None:
    for file in manifest["files"]:
        postmap = file.get("postmap")
        if postmap and (file["path"] in changed or not all(host.path(o).exists() for o in map_outputs(postmap))):
            kind, _, path = postmap.partition(":")
            host.run("postmap", f"{kind}:{host.path(path)}")
            host.log.append(f"postmap: {postmap}")


def prepare_instances(host: Host, manifest: dict[str, Any], previous: dict[str, Any], changed: set[str]) -> None:
    """Give new postmulti instances (and those whose files changed) their queue and check them; stop the
    instances the manifest no longer lists (their queue stays, as after postmulti destroy)."""
    prepared = {i["config_dir"] for i in previous["postfix_instances"]}
    for instance in manifest["postfix_instances"]:
        config_dir = host.path(instance["config_dir"])
        queue = host.path(host.run("postconf", "-c", str(config_dir), "-h", "queue_directory").strip())
        touched = any(p.startswith(instance["config_dir"] + "/") for p in changed)
        if instance["config_dir"] in prepared and queue.is_dir() and not touched:
            continue
        # Registered by the default main.cf (multi_instance_directories); postfix chdirs into its queue
        # directory, then creates the rest with the right owners.
        queue.mkdir(mode=0o755, parents=True, exist_ok=True)
        host.run("postfix", "-c", str(config_dir), "set-permissions", "create-missing")
        host.run("postfix", "-c", str(config_dir), "check")
        host.log.append(f"instance prepared: {instance['name']}")


def stop_dropped_instances(host: Host, manifest: dict[str, Any], previous: dict[str, Any]) -> None:
    listed = {i["config_dir"] for i in manifest["postfix_instances"]}
    for instance in previous["postfix_instances"]:
        if instance["config_dir"] not in listed and host.path(instance["config_dir"]).is_dir():
            host.run("postfix", "-c", str(host.path(instance["config_dir"])), "stop")
            host.log.append(f"instance stopped: {instance['name']}")


def ensure_certificates(host: Host, manifest: dict[str, Any]) -> None:
    """Generate each listed certificate whose file is missing: a self-signed one for its names, the
    private key first and the certificate after it in one root-only file (Postfix smtpd_tls_chain_files).
    The key is made here and never leaves the host; an existing file is kept (a second run changes nothing)."""
    for certificate in manifest.get("certificates", []):
        target = host.path(certificate["path"])
        if target.exists():
            continue
        names = certificate["names"]
        with tempfile.TemporaryDirectory() as scratch:
            key, cert = f"{scratch}/key.pem", f"{scratch}/cert.pem"
            host.run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256",
                     "-days", str(certificate["days"]), "-subj", f"/CN={names[0]}",
                     "-addext", "subjectAltName=" + ",".join(f"DNS:{n}" for n in names),
                     "-keyout", key, "-out", cert)
            data = Path(key).read_bytes() + Path(cert).read_bytes()
        target.parent.mkdir(parents=True, exist_ok=True)
        target.parent.chmod(0o700)
        write_file(target, data, 0o600)
        host.log.append(f"generated: {certificate['path']}")


def save_state(host: Host, state: dict[str, Any]) -> None:
    path = host.path(STATE)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o700)  # root-only: it names every secret's parameter and path
    write_file(path, (json.dumps(state, indent=1) + "\n").encode(), 0o600)


def apply(host: Host, manifest: dict[str, Any], args: argparse.Namespace) -> list[str]:
    """Apply `manifest`; returns the services the previously applied manifest listed."""
    state = load_state(host)
    previous = state["manifest"]
    secrets = fetch_secrets(manifest, args)  # all of them before any write: a failed read changes nothing
    if args.services == "start" and not args.skip_spool:
        # Boot: the queues are on the volume before anything is prepared or started. A refresh never
        # mounts over a running MTA's spool (that would hide its queue); a host without the volume
        # mounted gets it by replacement (docs/pulumi-workflow.md, "Replacing a host").
        ensure_spool(host, manifest.get("spool"), args.device_wait_seconds)
    elif manifest.get("spool") and not args.skip_spool \
            and str(host.path(manifest["spool"]["mount"])) not in mount_points(host):
        # A notice, not a change (a second run still says "no change").
        print(f"mailinfra-apply-config: spool volume {manifest['spool']['volume_id']} not mounted: "
              "mounted at boot only", file=sys.stderr)
    stop_dropped_instances(host, manifest, previous)  # before their files go
    if args.services == "reload":
        disable_dropped_services(host, manifest["services"], previous.get("services", []))  # before their units go
    changed = write_secrets(host, manifest, secrets)
    for file in manifest["files"]:
        if write_file(host.path(file["path"]), filled(file, secrets), int(file["mode"], 8)):
            changed.add(file["path"])
    host.log += [f"written: {path}" for path in sorted(changed)]
    remove_dropped(host, manifest, previous)
    run_postmaps(host, manifest, changed)
    ensure_certificates(host, manifest)
    added = ensure_addresses(host, manifest["addresses"], state["added_addresses"])
    prepare_instances(host, manifest, previous, changed)
    save_state(host, {"manifest": manifest, "added_addresses": added})
    return list(previous.get("services", []))


def disable_dropped_services(host: Host, services: list[str], before: list[str]) -> None:
    """Stop and disable the units the previous manifest listed and this one does not, while their unit files
    are still there (`systemctl disable` reads the [Install] section to find the links it removes)."""
    for service in before:
        if service not in services:
            code, _ = host.probe("systemctl", "disable", "--now", service)
            host.log.append(f"service disabled: {service}" + ("" if code == 0 else f" (exit {code})"))


def run_services(host: Host, services: list[str], how: str, before: list[str]) -> None:
    """Boot: enable and (re)start every listed unit. Refresh: reload the units the previous manifest already
    listed, and enable and start the new ones: a unit file written on a running host is neither enabled
    nor started by anything else (cloud-init ran once), so a new service (or timer) would never run."""
    # Debian's generator turns each multi_instance_directories entry into a postfix@<instance> unit
    # wanted by postfix.service: reload first so that (re)starting postfix covers every instance; a new
    # unit file is loaded by it too.
    host.run("systemctl", "daemon-reload")
    for service in services:
        if how == "start":
            host.run("systemctl", "enable", "--now", service)
            host.run("systemctl", "restart", service)
            host.log.append(f"service {how}: {service}")
        elif service not in before:
            host.run("systemctl", "enable", "--now", service)
            host.log.append(f"service enabled: {service}")
        else:
            host.run("systemctl", "reload-or-restart", service)
            host.log.append(f"service {how}: {service}")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="mailinfra-apply-config", description=__doc__.split("\n")[0])
    parser.add_argument("--region", default=os.environ.get("AWS_REGION", "us-east-1"))
    parser.add_argument("--bucket", help="the config bucket")
    parser.add_argument("--key", help="this host's manifest object")
    parser.add_argument("--manifest", help="a manifest file instead of the S3 object")
    parser.add_argument("--endpoint-url", default=os.environ.get("MAILINFRA_AWS_ENDPOINT") or None)
    parser.add_argument("--root", default=os.environ.get("MAILINFRA_ROOT", ""),
                        help="prefix of every host path (tests)")
    parser.add_argument("--services", choices=("start", "reload", "none"), default="none",
                        help="after applying: enable and restart (boot) or reload (refresh) the services")
    parser.add_argument("--addresses-only", action="store_true",
                        help="only put the last applied manifest's addresses back on the interface (boot)")
    parser.add_argument("--spool-only", action="store_true",
                        help="only mount the last applied manifest's spool volume (boot, before the MTA)")
    parser.add_argument("--skip-spool", action="store_true",
                        help="leave the manifest's spool volume alone (a lab host has no EBS volume)")
    parser.add_argument("--attempts", type=int, default=10, help="tries of each S3/SSM read")
    parser.add_argument("--retry-seconds", type=float, default=2.0,
                        help="first backoff; doubled after each transient failure, at most 60 s")
    parser.add_argument("--device-wait-seconds", type=float, default=600.0,
                        help="how long boot waits for the spool volume's block device")
    args = parser.parse_args(argv)
    if not args.addresses_only and not args.spool_only and not args.manifest and not (args.bucket and args.key):
        parser.error("--bucket and --key (or --manifest) are required")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    # Directories made for rendered files are 0755 (postconf and sendmail run as other users read them);
    # files are created 0600 and given their mode once complete; secret and state directories are 0700.
    os.umask(0o022)
    log: list[str] = []
    host = Host(args.root, log)
    try:
        if args.addresses_only:
            # `ip addr add` does not survive a reboot; the MTA binds these addresses (and with
            # smtp_bind_address_enforce defers rather than send from another one).
            state = load_state(host)
            added = ensure_addresses(host, state["manifest"]["addresses"], state["added_addresses"])
            if added != state["added_addresses"]:
                save_state(host, {**state, "added_addresses": added})
        elif args.spool_only:
            if not host.path(STATE).is_file():
                # Until the first manifest is applied nothing says where mail goes: the MTA must wait.
                raise ApplyError(f"{STATE}: no applied manifest yet, expected mailinfra-apply-config to run first")
            ensure_spool(host, load_state(host)["manifest"].get("spool"), args.device_wait_seconds)
        else:
            manifest = fetch_manifest(args)
            before = apply(host, manifest, args)
            if args.services != "none":
                run_services(host, manifest["services"], args.services, before)
    except ApplyError as error:
        print(f"mailinfra-apply-config: {error}", file=sys.stderr)
        return 1
    except (KeyError, TypeError, AttributeError, ValueError) as error:
        print(f"mailinfra-apply-config: malformed manifest or state ({type(error).__name__}: {error})",
              file=sys.stderr)
        return 1
    finally:
        for line in log:
            print(line)
    if not log:
        print("no change")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
