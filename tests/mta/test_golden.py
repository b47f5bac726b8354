"""Golden files: the dev stack's rendered host files, byte for byte.

Regenerate after an intended change with `MAILINFRA_UPDATE_GOLDEN=1 .venv/bin/pytest tests/mta/test_golden.py`
and review the diff: it is exactly what the change does to the hosts.
"""

from __future__ import annotations

import os
from pathlib import Path

from mailinfra.model.load import load_stack
from mailinfra.mta.render import render_all
from mailinfra.plan.build import build_plan
from tests.mta.conftest import AS_OF

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "dev" / "hosts"
UPDATE_ENV = "MAILINFRA_UPDATE_GOLDEN"


def test_dev_hosts_match_golden_files() -> None:
    """Every rendered file of the dev stack equals its golden copy, and no golden file is stale."""
    plan = build_plan(load_stack("dev"), AS_OF)
    rendered = {f"{host}/{item.path}": item.content for host, files in render_all(plan).items() for item in files}
    if os.environ.get(UPDATE_ENV) == "1":
        for path, content in rendered.items():
            target = GOLDEN / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content, encoding="utf-8")
        for stale in [p for p in GOLDEN.rglob("*") if p.is_file()]:
            if str(stale.relative_to(GOLDEN)) not in rendered:
                stale.unlink()
    on_disk = {str(p.relative_to(GOLDEN)): p.read_text(encoding="utf-8") for p in GOLDEN.rglob("*") if p.is_file()}
    assert sorted(on_disk) == sorted(rendered)
    for path, content in rendered.items():
        assert content == on_disk[path], f"{path} differs from its golden file (see {UPDATE_ENV})"
