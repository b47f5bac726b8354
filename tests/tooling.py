"""Helpers shared by tests that run real Debian tools (named-checkzone, postfix, opendkim, knot)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess

import pytest

REQUIRE_TOOLS_ENV = "MAILINFRA_REQUIRE_TOOLS"


def require_tool(name: str) -> str:
    """Return the path of executable `name`; skip the test when it is missing.

    With MAILINFRA_REQUIRE_TOOLS=1 (CI with the Debian packages installed) a missing tool fails the
    test instead, so a broken image cannot turn the real-tool checks into silent skips.
    """
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if path:
        return path
    message = f"{name} not found in PATH (install the Debian package that provides it)"
    if os.environ.get(REQUIRE_TOOLS_ENV) == "1":
        pytest.fail(f"{message}; {REQUIRE_TOOLS_ENV}=1 requires it")
    pytest.skip(message)


def stop_by_pid(process: subprocess.Popen[bytes] | subprocess.Popen[str], timeout: float = 10) -> None:
    """Stop a server a test started: SIGTERM to its PID, SIGKILL if it has not exited within `timeout`."""
    os.kill(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
