"""Helpers shared by tests that run real Debian tools (named-checkzone, postfix, opendkim, knot)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

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


@contextlib.contextmanager
def moto_server(start_timeout: float = 30) -> Iterator[str]:
    """A moto server (the AWS APIs boto3 talks to) in its own process on loopback; its URL; stopped by PID."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.2)
        yield url
    finally:
        stop_by_pid(server)
