"""Pulumi drift: `pulumi refresh --preview-only --expect-no-changes`, folded into the report.

--preview-only never writes state (plain `refresh --expect-no-changes` would, before failing).
Exit codes (CLI >= 3.226): 0 no changes, 7 changes found; older CLIs return 255 for both errors and
changes, so 255 is reported as could-not-check rather than guessed at.
"""

from __future__ import annotations

import shutil
import subprocess

from mailinfra.drift.model import DriftResult, Status

CHANGES_FOUND = 7
TIMEOUT_SECONDS = 900


def check_pulumi(stack: str, cli: str = "pulumi") -> tuple[list[DriftResult], list[str]]:
    key = f"pulumi:{stack}"
    path = shutil.which(cli)
    if path is None:
        line = f"pulumi CLI not found in PATH: cannot run `pulumi refresh --preview-only` for stack {stack}"
        return [DriftResult("pulumi", key, Status.UNKNOWN, detail=line)], [line]
    command = [path, "refresh", "--preview-only", "--expect-no-changes", "--non-interactive", "--stack", stack]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False)
    except subprocess.TimeoutExpired:
        line = f"pulumi refresh for stack {stack} did not finish in {TIMEOUT_SECONDS} s"
        return [DriftResult("pulumi", key, Status.UNKNOWN, detail=line)], [line]
    tail = " ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
    if done.returncode == 0:
        return [DriftResult("pulumi", key, Status.OK, detail="refresh found no changes")], []
    if done.returncode == CHANGES_FOUND:
        return [DriftResult("pulumi", key, Status.CHANGED, detail=f"refresh found changes: {tail}")], []
    line = f"pulumi refresh for stack {stack} failed (exit {done.returncode}): {tail}"
    return [DriftResult("pulumi", key, Status.UNKNOWN, detail=line)], [line]
