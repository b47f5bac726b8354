"""Processes the lab starts, remembered by PID in a state file so `down` stops exactly those."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class LabState:
    """What a running lab consists of; written to <runtime>/state.json after every change."""

    stack: str
    namespace: str
    interface: str = "lo"
    started: float = field(default_factory=time.time)
    processes: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {pid, argv0, log}
    info: dict[str, Any] = field(default_factory=dict)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o711)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2, sort_keys=True))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> LabState | None:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        return cls(**data)


def start_process(state: LabState, name: str, argv: Sequence[str], log: Path,
                  env: Mapping[str, str] | None = None) -> int:
    """Start argv in its own session (stdout/stderr to `log`) and record its PID under `name`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(list(argv), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env=dict(env) if env is not None else None)
    # The environment is not recorded: the state file must never hold what a shell exported.
    state.processes[name] = {"pid": proc.pid, "argv0": program_name(argv), "log": str(log), "argv": list(argv)}
    return proc.pid


def program_name(argv: Sequence[str]) -> str:
    """The name the process will carry: `ip netns exec NS prog` execs prog in place of ip."""
    if list(argv[:3]) == ["ip", "netns", "exec"] and len(argv) > 4:
        return Path(argv[4]).name
    return Path(argv[0]).name


def restart_process(state: LabState, name: str, env: Mapping[str, str] | None = None) -> int:
    """Stop a process started with start_process and start it again with the same argv."""
    entry = dict(state.processes[name])
    stop_process(state, name)
    return start_process(state, name, entry["argv"], Path(entry["log"]), env=env)


def adopt_process(state: LabState, name: str, pid: int, argv0: str) -> None:
    """Record a daemon that forked itself (Postfix master) so `down` stops it too."""
    state.processes[name] = {"pid": pid, "argv0": argv0, "log": ""}


def is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); it is dead for our purposes.
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z"):
            _reap(pid)
            return False
    return True


def stop_pid(pid: int, timeout: float = 5.0) -> None:
    """SIGTERM, wait up to `timeout`, then SIGKILL. A PID that is already gone is fine."""
    if not is_alive(pid):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pid)
        if not is_alive(pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    _reap(pid)


def stop_process(state: LabState, name: str, timeout: float = 5.0) -> None:
    entry = state.processes.pop(name, None)
    if entry and _matches(int(entry["pid"]), str(entry["argv0"])):
        stop_pid(int(entry["pid"]), timeout)


def _matches(pid: int, argv0: str) -> bool:
    """Guard against PID reuse after a reboot or crash: only stop a process with the recorded name."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(Path(part.decode(errors="replace")).name == argv0 for part in cmdline[:3] if part)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def stop_all(state: LabState, names: Sequence[str], timeout: float = 10.0) -> None:
    """Stop several processes at once: SIGTERM to all, then wait for all, then SIGKILL what is left."""
    pids = []
    for name in names:
        entry = state.processes.pop(name, None)
        if entry and _matches(int(entry["pid"]), str(entry["argv0"])):
            pids.append(int(entry["pid"]))
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(is_alive(pid) for pid in pids):
        time.sleep(0.05)
    for pid in pids:
        stop_pid(pid, timeout=0)


def python_env() -> dict[str, str]:
    """Child Python processes import mailinfra from this checkout, whatever their cwd."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH", "")]))
    return env
