"""The PowerMTA warmup calendar: each date's merged entry is the warmup state render_powermta renders as of that
date, every date's config passes the validator, and the real apply script turns the bundle's day-0 config into
exactly render_powermta of the day, reloading PowerMTA only when it changed."""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from mailinfra.model.load import STACKS_DIR, load_stack
from mailinfra.mta.files import secret_placeholder
from mailinfra.mta.limits_calendar import limits_anchor
from mailinfra.mta.pmta_check import check_powermta
from mailinfra.mta.powermta import LIMITS_FILE, WarmupState, plan_warmup_state, render_powermta
from mailinfra.mta.powermta_calendar import (
    APPLY_SCRIPT,
    WarmupEntry,
    decode_calendar,
    encode_calendar,
    plan_config_calendar,
    render_config_calendar_files,
)
from mailinfra.plan.build import build_plan
from mailinfra.plan.model import Plan

STACKS = [s for s in ("staging", "prod") if (STACKS_DIR / f"Pulumi.{s}.yaml").is_file()]
TODAY = dt.date(2026, 11, 29)
MARKER = secret_placeholder("").removesuffix("@@")  # what every secret marker starts with


@functools.cache
def _plan_at(stack: str) -> Callable[[dt.date], Plan]:
    return functools.cache(functools.partial(build_plan, load_stack(stack)))


def _pmta_hosts() -> list[tuple[str, str]]:
    return [(s, h.name) for s in STACKS for h in _plan_at(s)(TODAY).hosts if h.mta == "powermta"]


@functools.cache
def _calendar(stack: str, host: str) -> tuple[WarmupEntry, ...]:
    return plan_config_calendar(_plan_at(stack), host)


def _config_of(stack: str, host: str, day: dt.date) -> str:
    plan = _plan_at(stack)(day)
    (config,) = render_powermta(plan, plan.host(host))
    return config.content


def _state_of(stack: str, host: str, day: dt.date) -> WarmupState:
    plan = _plan_at(stack)(day)
    return plan_warmup_state(plan, plan.host(host))


def _all_warmed(plan: Plan, host: str) -> bool:
    return all(limit.status == "warmed" for limit in plan.warmup if plan.ip(limit.ip).host == host)


@pytest.mark.parametrize(("stack", "host"), _pmta_hosts())
def test_calendar_runs_from_warmup_day_0_until_every_ip_is_warmed(stack, host):
    """The first entry is the anchor's (the bundle's config); the last one holds from the first day every IP of
    the host is warmed on (and still a year later), the day before it does not."""
    calendar = _calendar(stack, host)
    plan = _plan_at(stack)(TODAY)
    assert calendar[0].date == limits_anchor(plan, plan.host(host))
    dates = [e.date for e in calendar]
    assert dates == sorted(set(dates)) and len(dates) > 1
    day = dates[-1]
    while not _all_warmed(_plan_at(stack)(day), host):
        day += dt.timedelta(days=1)
    for later in (day, day + dt.timedelta(days=365)):
        assert _state_of(stack, host, later) == calendar[-1].state
    assert _state_of(stack, host, dates[-1] - dt.timedelta(days=1)) != calendar[-1].state


@pytest.mark.parametrize(("stack", "host"), _pmta_hosts())
def test_merged_entry_of_every_date_is_the_plans_state_of_that_date(stack, host):
    """GIVEN any date D from day 0 to long after the ramp THEN the calendar file's entries up to D, merged,
    are the warmup state of the plan as of D (what render_powermta renders that day)."""
    calendar = _calendar(stack, host)
    text = encode_calendar(calendar)
    for offset in [*range(0, (calendar[-1].date - calendar[0].date).days + 2), 400]:
        day = calendar[0].date + dt.timedelta(days=offset)
        assert decode_calendar(text, day) == _state_of(stack, host, day), day


@pytest.mark.parametrize(("stack", "host"), _pmta_hosts())
def test_only_dates_whose_state_changes_are_kept_and_later_entries_hold_only_changes(stack, host):
    calendar = _calendar(stack, host)
    assert all(a.state != b.state for a, b in itertools.pairwise(calendar))
    entries = json.loads(encode_calendar(calendar))["entries"]
    first, *later = entries
    assert set(first["directives"]) == set(calendar[0].state.directives)
    assert all(e["directives"] or e["pools"] for e in later)
    assert sum(len(json.dumps(e)) for e in later) < len(json.dumps(first)) * len(later)


@pytest.mark.parametrize(("stack", "host"), _pmta_hosts())
def test_every_dates_config_passes_the_validator(stack, host):
    plan = _plan_at(stack)(TODAY)
    addresses = [plan.ip(name).address for name in plan.host(host).ips]
    for entry in _calendar(stack, host):
        assert check_powermta(_config_of(stack, host, entry.date), addresses) == [], entry.date


def _fake_tools(bin_dir: Path, log: Path, active: bool) -> dict[str, str]:
    """`pmta` and `systemctl` are PowerMTA's and systemd's, absent here: recorders stand in for them."""
    bin_dir.mkdir()
    (bin_dir / "pmta").write_text(f"#!/bin/sh\necho \"pmta $*\" >> {log}\n")
    (bin_dir / "systemctl").write_text(f"#!/bin/sh\nexit {0 if active else 3}\n")
    for tool in ("pmta", "systemctl"):
        (bin_dir / tool).chmod(0o755)
    return {"PATH": f"{bin_dir}:/usr/bin:/bin"}


def _install(tmp_path: Path, calendar: tuple[WarmupEntry, ...]) -> None:
    for file in render_config_calendar_files(calendar):
        path = tmp_path / file.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(file.content)
        path.chmod(file.mode)


def _apply(tmp_path: Path, config: Path, day: dt.date, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(tmp_path / APPLY_SCRIPT), str(tmp_path / LIMITS_FILE), str(config),
                           day.isoformat()], capture_output=True, text=True, check=False, env=env)


@pytest.mark.parametrize(("stack", "host"), _pmta_hosts())
def test_apply_script_turns_day_0_config_into_render_powermta_of_the_day(stack, host, tmp_path):
    """GIVEN the bundle's day-0 config and the calendar on disk WHEN the real script runs on each date of the
    ramp, in order, and after it THEN the config is byte for byte render_powermta as of that date."""
    calendar = _calendar(stack, host)
    _install(tmp_path, calendar)
    config = tmp_path / "config"
    config.write_text(_config_of(stack, host, calendar[0].date))
    env = _fake_tools(tmp_path / "bin", tmp_path / "pmta.log", active=False)
    for offset in [*range(1, (calendar[-1].date - calendar[0].date).days + 2), 400]:
        day = calendar[0].date + dt.timedelta(days=offset)
        done = _apply(tmp_path, config, day, env)
        assert done.returncode == 0, done.stderr
        assert config.read_text() == _config_of(stack, host, day), day


def test_apply_script_keeps_filled_secrets_and_mode_and_reloads_only_on_change(tmp_path):
    """GIVEN a config whose relay password was filled in at boot (0600) WHEN a later day is applied THEN only
    warmup values changed, the password and the mode stayed, `pmta reload` ran once; a second run and a day
    before the calendar change nothing."""
    stack, host = next((s, h) for s, h in _pmta_hosts() if MARKER in _config_of(s, h, _calendar(s, h)[0].date))
    calendar = _calendar(stack, host)
    _install(tmp_path, calendar)
    day0 = _config_of(stack, host, calendar[0].date)
    marker = next(word for word in day0.split() if word.startswith(MARKER))
    config = tmp_path / "config"
    config.write_text(day0.replace(marker, "s3cr3t$&\\1"))
    config.chmod(0o600)
    log = tmp_path / "pmta.log"
    env = _fake_tools(tmp_path / "bin", log, active=True)
    day = calendar[0].date + dt.timedelta(days=10)
    assert _apply(tmp_path, config, day, env).returncode == 0
    assert config.read_text() == _config_of(stack, host, day).replace(marker, "s3cr3t$&\\1")
    assert config.stat().st_mode & 0o777 == 0o600
    assert log.read_text().splitlines() == ["pmta reload"]
    assert _apply(tmp_path, config, day, env).returncode == 0
    assert log.read_text().splitlines() == ["pmta reload"]
    before = config.read_text()
    assert _apply(tmp_path, config, calendar[0].date - dt.timedelta(days=1), env).returncode == 0
    assert config.read_text() == before
    assert log.read_text().splitlines() == ["pmta reload"]


def test_apply_script_refuses_a_calendar_that_does_not_match_the_config(tmp_path):
    """A calendar naming a virtual-mta the config lacks (a bundle and calendar out of step): exit non-zero with
    one line naming the file, and the config is left as it was."""
    stack, host = _pmta_hosts()[0]
    calendar = _calendar(stack, host)
    _install(tmp_path, calendar)
    limits = tmp_path / LIMITS_FILE
    data = json.loads(limits.read_text())
    data["entries"][0]["directives"]["ip-nonexistent"] = {"gmail.com": {"max-smtp-out": "1"}}
    limits.write_text(json.dumps(data))
    config = tmp_path / "config"
    config.write_text(_config_of(stack, host, calendar[0].date))
    before = config.read_text()
    done = _apply(tmp_path, config, calendar[-1].date, _fake_tools(tmp_path / "bin", tmp_path / "log", active=True))
    assert done.returncode != 0
    assert "ip-nonexistent" in done.stderr and str(limits) in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert config.read_text() == before
    assert not (tmp_path / "log").exists()
