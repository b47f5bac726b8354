"""The lab's suppression services: each Postfix host's lookup service and each bounce host's processor,
started by PID from the files the host's manifest wrote (their rendered configs and systemd units), and the
lab report's suppression section.

Overlay (as for OpenDKIM and Postfix, mailinfra/lab/mta.py): no systemd, so the lab starts the unit's
program itself with `--root <lab root>` (every path of its config moved under the root), as root (the unit
runs it as `postfix`; the sockets are still given Postfix's group, 0660, as on a host). The lab's hosts share
one root, so the store is mailinfra.suppression.paths.lab_db_path(runtime_dir).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

from mailinfra.lab.namespace import LabError, in_namespace
from mailinfra.lab.procs import LabState, start_process, stop_process
from mailinfra.mta.enforcement import LOOKUP_CONFIG, LOOKUP_SOCKET
from mailinfra.mta.host_code import HOST_PYTHON_PATH
from mailinfra.mta.intake import LMTP_SOCKET, PROCESSOR_CONFIG, VERP_SECRET_FILE
from mailinfra.plan.model import HostPlan
from mailinfra.suppression.paths import lab_db_path

HOST_PYTHON = "/usr/bin/python3"  # ExecStart of templates/mailinfra/*.service.j2
START_TIMEOUT_SECONDS = 30.0  # the processor imports the whole core (schema, parsers): seconds on a busy machine


def processor_name(host: str) -> str:
    return f"bounceproc-{host}"


def lookup_name(host: str) -> str:
    return f"suppression-lookup-{host}"


def start_services(state: LabState, namespace: str, root: Path, host: HostPlan, env: dict[str, str]) -> None:
    """The processor (bounce hosts) and the lookup service, before Postfix (it asks them)."""
    if host.accepts_bounces:
        start_processor(state, namespace, root, host, env)
    # No --root: the overlay (mailinfra.lab.mta.relocate) already put the config's paths under the lab root.
    argv = [*host_python(), "-m", "mailinfra.suppression_service", "--config", str(root / LOOKUP_CONFIG)]
    log = root / "var/log" / f"{lookup_name(host.name)}.log"
    pid = start_process(state, lookup_name(host.name), in_namespace(namespace, argv), log,
                        env=host_environment(root, env))
    wait_for_path(root / LOOKUP_SOCKET.lstrip("/"), lookup_name(host.name), pid, log)


def start_processor(state: LabState, namespace: str, root: Path, host: HostPlan, env: dict[str, str]) -> None:
    socket = root / LMTP_SOCKET.lstrip("/")
    socket.unlink(missing_ok=True)
    # No --root: the overlay (mailinfra.lab.mta.relocate) already put the config's paths under the lab root.
    argv = [*host_python(), "-m", "mailinfra.bounceproc", "--config", str(root / PROCESSOR_CONFIG)]
    log = root / "var/log" / f"{processor_name(host.name)}.log"
    pid = start_process(state, processor_name(host.name), in_namespace(namespace, argv), log,
                        env=host_environment(root, env))
    wait_for_path(socket, processor_name(host.name), pid, log)


def host_python() -> list[str]:
    """The unit's interpreter (Debian's python3 and its python3-* packages, not the lab's venv); -P keeps the
    working directory (the checkout) off sys.path, -s the user site."""
    return [HOST_PYTHON, "-P", "-s"]


def host_environment(root: Path, env: dict[str, str]) -> dict[str, str]:
    """The unit's `PYTHONPATH=/usr/local/lib/mailinfra/python`, inside the lab root: the services import
    the code the host's manifest shipped there (mailinfra.mta.host_code), never the checkout."""
    kept = {k: v for k, v in env.items() if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}}
    return kept | {"PYTHONPATH": str(root / HOST_PYTHON_PATH.lstrip("/"))}


def stop_processor(state: LabState, host: str) -> None:
    stop_process(state, processor_name(host))


def wait_for_path(path: Path, what: str, pid: int | None = None, log: Path | None = None) -> None:
    """Until the service's socket exists; a service that exited fails at once with its log's last line."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not path.exists():
        exited = pid is not None and not Path(f"/proc/{pid}").exists()
        if exited or time.monotonic() > deadline:
            last = log.read_text(errors="replace").strip().splitlines()[-1:] if log and log.exists() else []
            state = "exited" if exited else f"no {path} after {START_TIMEOUT_SECONDS:.0f} s"
            raise LabError(f"{what}: {state}: {' '.join(last) or 'no log'}")
        time.sleep(0.05)


def verp_secret_file(runtime_dir: Path) -> Path:
    """The stack secret as the hosts got it (their SSM parameter, written by mailinfra-apply-config): what
    the lab's injector (the app) signs its return paths with."""
    return runtime_dir / "root" / VERP_SECRET_FILE.lstrip("/")


def suppression_section(runtime_dir: Path, now: dt.datetime | None = None) -> dict[str, Any]:
    """Entries by source and class, refusals counted per pool (policy blocks), the audit trail's length."""
    path = lab_db_path(runtime_dir)
    if not path.exists():
        return {"store": str(path), "entries": 0}
    from mailinfra.suppression.sqlite_store import SqliteStore

    store = SqliteStore(path)
    try:
        moment = now or dt.datetime.now(dt.UTC)
        entries = list(store.entries())
        by_source: dict[str, int] = {}
        for entry in entries:
            key = f"{entry.source}:{entry.cls or '-'}"
            by_source[key] = by_source.get(key, 0) + 1
        counts = store.pool_counts(moment - dt.timedelta(days=1))
        pools = {f"{pool}/{cls}": n for (pool, cls), n in sorted(counts.items())}
        return {
            "store": str(path), "entries": len(entries), "by_source": dict(sorted(by_source.items())),
            "pool_counts_24h": pools, "audit_events": len(store.audit_log()),
            "addresses": [{"address": e.address, "scope": sorted(e.scope), "reason": e.reason,
                           "source": str(e.source), "first_seen": e.first_seen.isoformat()} for e in entries],
        }
    finally:
        store.close()


def write_section(build_dir: Path, section: dict[str, Any]) -> Path:
    """Kept under build/lab/<stack>/ (survives `down`)."""
    build_dir.mkdir(parents=True, exist_ok=True)
    target = build_dir / "suppression.json"
    target.write_text(json.dumps(section, indent=2))
    return target
