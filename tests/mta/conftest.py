"""Shared fixtures: real stacks rendered once per test session into a temporary tree."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from mailinfra.model.load import load_stack
from mailinfra.mta.files import RenderedFile
from mailinfra.mta.render import render_all
from mailinfra.plan.build import build_plan
from mailinfra.plan.model import Plan

# Fixed so golden files and limits do not change with the calendar.
AS_OF = dt.date(2026, 11, 29)
STACKS_DIR = Path(__file__).resolve().parents[2] / "stacks"
STACKS = [name for name in ("dev", "staging", "prod") if (STACKS_DIR / f"Pulumi.{name}.yaml").exists()]


def write_host(root: Path, files: tuple[RenderedFile, ...]) -> Path:
    for item in files:
        target = root / item.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(item.content, encoding="utf-8")
    return root


@pytest.fixture(scope="session", params=STACKS)
def stack_plan(request: pytest.FixtureRequest) -> Plan:
    return build_plan(load_stack(request.param), AS_OF)


@pytest.fixture(scope="session")
def rendered_stack(stack_plan: Plan, tmp_path_factory: pytest.TempPathFactory) -> tuple[Plan, dict[str, Path]]:
    """(plan, host -> directory holding that host's rendered files)."""
    base = tmp_path_factory.mktemp(f"render-{stack_plan.stack}")
    dirs = {host: write_host(base / host, files) for host, files in render_all(stack_plan).items()}
    return stack_plan, dirs
