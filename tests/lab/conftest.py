"""The lab tests share one running lab of the dev stack (about 8 s to build), torn down at the end.

They skip when the machine cannot run the lab (not Linux, not root, a Debian tool missing) unless
MAILINFRA_REQUIRE_LAB=1, as in CI: then a missing prerequisite fails instead of silently skipping.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REQUIRE_LAB_ENV = "MAILINFRA_REQUIRE_LAB"
# dovecot, sievec: the seeds' IMAP store (the dev stack declares seeds; mailinfra.lab.seeds).
TOOLS = ("ip", "knotd", "knotc", "kdig", "postfix", "postconf", "postqueue", "opendkim", "nft", "dovecot", "sievec")


def _missing_prerequisite() -> str | None:
    if sys.platform != "linux":
        return f"the lab needs Linux network namespaces (platform {sys.platform})"
    if os.geteuid() != 0:
        return "the lab needs root (ip netns, Postfix, port 25)"
    missing = [t for t in TOOLS if not shutil.which(t, path="/usr/sbin:/usr/bin:/sbin:/bin")]
    if missing:
        return (f"missing tools {', '.join(missing)} "
                "(apt-get install iproute2 knot knot-dnsutils postfix opendkim nftables dovecot-imapd dovecot-lmtpd "
                "dovecot-sieve)")
    return None


def require_lab() -> None:
    problem = _missing_prerequisite()
    if problem is None:
        return
    if os.environ.get(REQUIRE_LAB_ENV) == "1":
        pytest.fail(f"{problem}; {REQUIRE_LAB_ENV}=1 requires the lab to run")
    pytest.skip(problem)


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """GIVEN the dev stack, on the first day all its IPs are warmed, running in its own namespace."""
    require_lab()
    from mailinfra.lab import lab as lab_module
    from mailinfra.lab.layout import plan_layout
    from mailinfra.model.load import load_stack
    from mailinfra.plan.build import build_plan

    as_of = lab_module.first_day("dev", "warmed", start=dt.date(2026, 11, 29))
    plan = build_plan(load_stack("dev"), as_of)
    build_root = tmp_path_factory.mktemp("lab-build")
    layout = plan_layout(plan, build_root, Path("/run/mailinfra-lab-test"), namespace="mi-test-dev")
    running = lab_module.Lab(plan, layout)
    lab_module.up(running)
    try:
        yield running
    finally:
        lab_module.down(running)
