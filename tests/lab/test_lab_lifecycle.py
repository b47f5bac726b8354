"""Lab lifecycle: `up` twice in a row works, `down` leaves nothing running and keeps the build files."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import pytest

from mailinfra.lab import lab as lab_module
from mailinfra.lab.layout import plan_layout
from mailinfra.lab.namespace import namespace_exists
from mailinfra.lab.procs import is_alive
from mailinfra.lab.report import read_arrivals
from mailinfra.model.load import load_stack
from mailinfra.plan.build import build_plan
from tests.lab.conftest import require_lab

pytestmark = [pytest.mark.lab, pytest.mark.slow]


def _lab(tmp_path: Path, namespace: str) -> lab_module.Lab:
    as_of = lab_module.first_day("dev", "warmed", start=dt.date(2026, 11, 29))
    plan = build_plan(load_stack("dev"), as_of)
    # A runtime root of its own: `up` and `down` remove <root>/<stack>, which under /run/mailinfra-lab-test is the
    # session lab's (tests/lab/conftest.py), and lab tests collected after this file would find it gone.
    return lab_module.Lab(plan, plan_layout(plan, tmp_path, Path("/run/mailinfra-lab-test-life"), namespace=namespace))


def test_up_twice_then_down_leaves_nothing_but_the_build_files(tmp_path: Path) -> None:
    """GIVEN a running lab WHEN `up` runs again THEN it rebuilds cleanly and delivers; `down` stops every
    recorded PID, removes the namespace and runtime state, and keeps the zones and delivered mail."""
    require_lab()
    lab = _lab(tmp_path, "mi-test-life")
    try:
        first = lab_module.up(lab)
        second = lab_module.up(lab)
        assert not any(is_alive(int(p["pid"])) for p in first.processes.values()
                       if int(p["pid"]) not in {int(q["pid"]) for q in second.processes.values()})
        sent = lab_module.send(lab, pool="tx", provider="yahoo")
        lab_module.wait_for_arrivals(lab, [sent[0]["lab_id"]], 20)
    finally:
        lab_module.down(lab)
    assert not namespace_exists("mi-test-life")
    assert not lab.layout.runtime_dir.exists()
    assert not any(is_alive(int(p["pid"])) for p in second.processes.values())
    assert list(lab.layout.zones_dir.glob("*.zone"))
    assert [a["lab_id"] for a in read_arrivals(lab.layout.mail_dir)] == [sent[0]["lab_id"]]
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    assert "mi-test-life" not in listing

