"""Every zone file of every reference stack loads in real DNS servers; dev's match the golden files."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from pathlib import Path

import pytest

from mailinfra.model.load import STACKS_DIR, load_stack
from mailinfra.plan import build_plan
from mailinfra.preview.artifacts import render_zones
from tests.tooling import require_tool

AS_OF = dt.date(2026, 11, 29)
GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "dev" / "dns"
STACKS = sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in STACKS_DIR.glob("Pulumi.*.yaml"))


@pytest.mark.parametrize("stack", STACKS)
def test_every_zone_passes_named_checkzone(stack: str, tmp_path: Path) -> None:
    """named-checkzone loads every forward and reverse zone with no warnings."""
    checker = require_tool("named-checkzone")
    files = render_zones(build_plan(load_stack(stack), AS_OF))
    assert files
    for item in files:
        path = tmp_path / Path(item.path).name
        path.write_text(item.content)
        zone = path.name.removesuffix(".zone")
        proc = subprocess.run([checker, "-i", "local", "-k", "fail", "-m", "fail", "-M", "fail", "-n", "fail",
                               zone, str(path)], capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert proc.stdout.splitlines() == [f"zone {zone}/IN: loaded serial {AS_OF:%Y%m%d}00", "OK"], proc.stdout


def test_dev_zones_match_golden_files() -> None:
    """dev's zone files are exactly the reviewed golden files (MAILINFRA_UPDATE_GOLDEN=1 rewrites them)."""
    files = {Path(f.path).name: f.content for f in render_zones(build_plan(load_stack("dev"), AS_OF))}
    if os.environ.get("MAILINFRA_UPDATE_GOLDEN") == "1":
        GOLDEN.mkdir(parents=True, exist_ok=True)
        for old in GOLDEN.glob("*.zone"):
            old.unlink()
        for name, content in files.items():
            (GOLDEN / name).write_text(content)
    golden = {p.name: p.read_text() for p in GOLDEN.glob("*.zone")}
    assert files == golden
