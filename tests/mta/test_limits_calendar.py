"""The Postfix limits calendar: each day's entry is what main.cf renders for that day, and postconf applies it."""

from __future__ import annotations

import datetime as dt
import functools
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from mailinfra.model.load import load_stack
from mailinfra.mta.limits_calendar import (
    APPLY_SCRIPT,
    LIMITS_FILE,
    LimitsEntry,
    decode_calendar,
    encode_calendar,
    limits_anchor,
    plan_limits_calendar,
    render_limits_files,
)
from mailinfra.mta.render import render_host
from mailinfra.plan.build import build_plan
from mailinfra.plan.model import Plan
from tests.mta.conftest import write_host
from tests.tooling import require_tool


@pytest.fixture(scope="module")
def dev_at() -> Callable[[dt.date], Plan]:
    return functools.cache(functools.partial(build_plan, load_stack("dev")))


@pytest.fixture(scope="module")
def calendar(dev_at: Callable[[dt.date], Plan]) -> tuple[LimitsEntry, ...]:
    return plan_limits_calendar(dev_at, "mta1")


def _main_cf_parameters(plan: Plan, config_dir: str) -> dict[str, str]:
    """name -> value of the single-line parameters of one instance's main.cf as render_host writes it."""
    path = f"{config_dir.lstrip('/')}/main.cf"
    content = next(f.content for f in render_host(plan, "mta1") if f.path == path)
    pairs = (line.split("=", 1) for line in content.splitlines() if "=" in line and line[:1].isalnum())
    return {name.strip(): value.strip() for name, value in pairs}


def test_calendar_runs_from_warmup_day_0_to_the_first_day_every_ip_is_warmed(calendar, dev_at):
    """Consecutive dates from the day before the first IP sends; the last is the first all-warmed day."""
    plan = dev_at(dt.date(2026, 11, 29))
    first_send = min(limit.effective_start for limit in plan.warmup if limit.effective_start)
    assert calendar[0].date == limits_anchor(plan, plan.host("mta1")) == first_send - dt.timedelta(days=1)
    assert [e.date for e in calendar] == [calendar[0].date + dt.timedelta(days=i) for i in range(len(calendar))]
    assert {limit.status for limit in dev_at(calendar[-1].date).warmup} == {"warmed"}
    assert {limit.status for limit in dev_at(calendar[-2].date).warmup} != {"warmed"}


def test_day_0_sends_nothing(calendar):
    """The files a host boots with (the anchor's) defer every pool: never full volume on a first boot."""
    for params in calendar[0].instances.values():
        assert params["smtpd_sender_restrictions"] == "defer"
        assert params["defer_transports"]


@pytest.mark.parametrize("offset", [0, 1, 8, 15, 22, 30, -1])
def test_entry_of_a_date_is_what_main_cf_renders_for_that_date(calendar, dev_at, offset):
    """GIVEN the calendar entry of day D THEN every parameter equals main.cf rendered with as_of=D."""
    entry = calendar[offset]
    for config_dir, params in entry.instances.items():
        rendered = _main_cf_parameters(dev_at(entry.date), config_dir)
        assert params == {name: rendered[name] for name in params}, (entry.date, config_dir)


def test_final_entry_holds_after_the_ramp(calendar, dev_at):
    """A date long after the ramp renders the final entry's (warmed) limits."""
    later = dev_at(calendar[-1].date + dt.timedelta(days=400))
    for config_dir, params in calendar[-1].instances.items():
        rendered = _main_cf_parameters(later, config_dir)
        assert params == {name: rendered[name] for name in params}
    assert calendar[-1].instances != calendar[0].instances


def test_encoded_calendar_merges_back_to_each_entry(calendar):
    """The host's merge of the delta-encoded file gives every day's complete entry, and the last after it."""
    text = encode_calendar(calendar)
    for entry in calendar:
        assert decode_calendar(text, entry.date) == entry.instances
    assert decode_calendar(text, calendar[-1].date + dt.timedelta(days=90)) == calendar[-1].instances
    assert decode_calendar(text, calendar[0].date - dt.timedelta(days=1)) == {}


def test_apply_script_sets_a_day_with_postconf_without_warnings(calendar, dev_at, tmp_path):
    """GIVEN instance dirs rendered as of day 0 WHEN the real apply script runs for a later day THEN
    `postconf -n` prints no warning and shows that day's values."""
    postconf = require_tool("postconf")
    anchor = calendar[0].date
    root = write_host(tmp_path / "host", render_host(dev_at(anchor), "mta1") + render_limits_files(calendar))
    day = calendar[20]
    local = {str(root / d.lstrip("/")): params for d, params in day.instances.items()}
    # The calendar names the host's dirs (/etc/postfix-<pool>); point it at the rendered tree.
    text = (root / LIMITS_FILE).read_text()
    for config_dir in day.instances:
        text = text.replace(f'"{config_dir}"', f'"{root / config_dir.lstrip("/")}"')
    (root / LIMITS_FILE).write_text(text)
    done = subprocess.run([sys.executable, str(root / APPLY_SCRIPT), str(root / LIMITS_FILE), day.date.isoformat()],
                          capture_output=True, text=True, check=False,
                          env={"PATH": str(Path(postconf).parent) + ":/usr/sbin:/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    for directory, params in local.items():
        shown = subprocess.run([postconf, "-c", directory, "-n"], capture_output=True, text=True, check=False)
        assert shown.returncode == 0 and not shown.stderr, shown.stderr
        values = dict(line.split(" = ", 1) if " = " in line else (line.rstrip(" ="), "")
                      for line in shown.stdout.splitlines())
        assert {name: values[name] for name in params} == params, directory
    assert any(day.instances[d] != calendar[0].instances[d] for d in day.instances)
