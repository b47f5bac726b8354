"""The PowerMTA config calendar: each date's file is render_powermta as of that date, every file passes the
validator, and the apply script installs the day's file and reloads PowerMTA only when it changed."""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from mailinfra.model.load import STACKS_DIR, load_stack
from mailinfra.mta.files import RenderedFile
from mailinfra.mta.limits_calendar import limits_anchor
from mailinfra.mta.pmta_check import check_powermta
from mailinfra.mta.powermta import render_powermta
from mailinfra.mta.powermta_calendar import (
    APPLY_SCRIPT,
    CALENDAR_DIR,
    calendar_path,
    config_directives,
    plan_config_calendar,
    render_config_calendar_files,
)
from mailinfra.plan.build import build_plan
from mailinfra.plan.model import Plan

STACKS = [s for s in ("staging", "prod") if (STACKS_DIR / f"Pulumi.{s}.yaml").is_file()]
TODAY = dt.date(2026, 11, 29)


@functools.cache
def _plan_at(stack: str) -> Callable[[dt.date], Plan]:
    return functools.cache(functools.partial(build_plan, load_stack(stack)))


def _pmta_hosts() -> list[tuple[str, str]]:
    return [(s, h.name) for s in STACKS for h in _plan_at(s)(TODAY).hosts if h.mta == "powermta"]


@functools.cache
def _calendar(stack: str, host: str) -> tuple[RenderedFile, ...]:
    return plan_config_calendar(_plan_at(stack), host)


def _date(file: RenderedFile) -> dt.date:
    return dt.date.fromisoformat(Path(file.path).name.removesuffix(".config"))


def _config_of(stack: str, host: str, day: dt.date) -> str:
    plan = _plan_at(stack)(day)
    (config,) = render_powermta(plan, plan.host(host))
    return config.content


def _all_warmed(plan: Plan, host: str) -> bool:
    return all(limit.status == "warmed" for limit in plan.warmup if plan.ip(limit.ip).host == host)


def _entry_of(calendar: tuple[RenderedFile, ...], day: dt.date) -> RenderedFile:
    return [f for f in calendar if _date(f) <= day][-1]


@pytest.mark.parametrize(("stack", "host"), _pmta_hosts())
def test_calendar_runs_from_warmup_day_0_until_every_ip_is_warmed(stack, host):
    """The first file is the anchor's (the bundle's config); the last one holds from the first day every IP of
    the host is warmed on (and still a year later), the one before it does not."""
    calendar = _calendar(stack, host)
    plan = _plan_at(stack)(TODAY)
    assert calendar[0].path == calendar_path(limits_anchor(plan, plan.host(host)))
    dates = [_date(f) for f in calendar]
    assert dates == sorted(set(dates)) and len(dates) > 1
    day = dates[-1]
    while not _all_warmed(_plan_at(stack)(day), host):
        day += dt.timedelta(days=1)
    for later in (day, day + dt.timedelta(days=365)):
        assert config_directives(_config_of(stack, host, later)) == config_directives(calendar[-1].content)
    assert config_directives(_config_of(stack, host, dates[-1] - dt.timedelta(days=1))) != config_directives(
        calendar[-1].content)


@pytest.mark.parametrize(("stack", "host"), _pmta_hosts())
@pytest.mark.parametrize("offset", [0, 1, 7, 20, 45, 400])
def test_entry_of_a_date_is_render_powermta_as_of_that_date(stack, host, offset):
    """GIVEN a date D (from day 0 to long after the ramp) THEN the calendar's latest file on or before D
    is the config render_powermta gives as of D (its directives, when the file is of an earlier date)."""
    calendar = _calendar(stack, host)
    day = _date(calendar[0]) + dt.timedelta(days=offset)
    entry = _entry_of(calendar, day)
    expected = _config_of(stack, host, day)
    if _date(entry) == day:
        assert entry.content == expected
    else:
        assert config_directives(entry.content) == config_directives(expected)


@pytest.mark.parametrize(("stack", "host"), _pmta_hosts())
def test_only_dates_whose_config_changes_are_kept(stack, host):
    """Consecutive calendar files differ in a directive (not only in comments): none repeats the one before."""
    calendar = _calendar(stack, host)
    texts = [config_directives(f.content) for f in calendar]
    assert all(a != b for a, b in itertools.pairwise(texts))


@pytest.mark.parametrize(("stack", "host"), _pmta_hosts())
def test_every_calendar_config_passes_the_validator(stack, host):
    plan = _plan_at(stack)(TODAY)
    addresses = [plan.ip(name).address for name in plan.host(host).ips]
    for file in _calendar(stack, host):
        assert check_powermta(file.content, addresses) == [], file.path


def _fake_tools(bin_dir: Path, log: Path, active: bool) -> dict[str, str]:
    bin_dir.mkdir()
    (bin_dir / "pmta").write_text(f"#!/bin/sh\necho \"pmta $*\" >> {log}\n")
    (bin_dir / "systemctl").write_text(f"#!/bin/sh\nexit {0 if active else 3}\n")
    for tool in ("pmta", "systemctl"):
        (bin_dir / tool).chmod(0o755)
    return {"PATH": f"{bin_dir}:/usr/bin:/bin"}


def test_apply_script_installs_the_days_config_and_reloads_only_when_it_changed(tmp_path):
    """GIVEN the calendar on disk and the bundle's day-0 config WHEN the real script runs for a later day
    THEN /etc/pmta/config is that day's file with its mode and `pmta reload` ran once; a second run changes
    nothing and does not reload; a day before the calendar leaves the config alone."""
    stack, host = _pmta_hosts()[0]
    calendar = _calendar(stack, host)
    for file in render_config_calendar_files(calendar):
        path = tmp_path / file.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(file.content)
        path.chmod(file.mode)
    config = tmp_path / "config"
    config.write_text(calendar[0].content)
    log = tmp_path / "pmta.log"
    env = _fake_tools(tmp_path / "bin", log, active=True)
    day = _date(calendar[0]) + dt.timedelta(days=10)

    def apply(date: dt.date) -> None:
        done = subprocess.run([sys.executable, str(tmp_path / APPLY_SCRIPT), str(tmp_path / CALENDAR_DIR),
                               str(config), date.isoformat()], capture_output=True, text=True, check=False, env=env)
        assert done.returncode == 0, done.stderr

    apply(day)
    entry = _entry_of(calendar, day)
    assert entry is not calendar[0]
    assert config.read_text() == entry.content
    assert config.stat().st_mode & 0o777 == entry.mode
    assert log.read_text().splitlines() == ["pmta reload"]
    apply(day)
    assert log.read_text().splitlines() == ["pmta reload"]
    config.write_text(calendar[0].content)
    apply(_date(calendar[0]) - dt.timedelta(days=1))
    assert config.read_text() == calendar[0].content
    assert log.read_text().splitlines() == ["pmta reload"]
