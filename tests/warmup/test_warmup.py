"""Warmup planner: schedules, day index, tier gate, provider split, Postfix pacing."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from mailinfra.model.load import load_stack
from mailinfra.model.schema import WarmupSchedule
from mailinfra.plan.build import build_plan
from mailinfra.plan.model import IpPlan, StreamPlan, WarmupSpec
from mailinfra.warmup import (
    BUILTIN_SCHEDULES,
    FIRST_DAY_MAX,
    FIRST_DAY_MIN,
    HOURS_PER_DAY_SPREAD,
    PROVIDER_SHARES,
    RAMP_MAX_DAYS,
    RAMP_MIN_DAYS,
    TIER_GATE_DAYS,
    WARMED_DAILY_CAP,
    check_schedule,
    plan_warmup,
    postfix_rate_delay,
    schedule_table,
    split_providers,
)

START = dt.date(2026, 11, 1)


def _ip(name: str, *, tier: str = "default", start: dt.date | None = START, schedule: str | None = "standard",
        stream: str = "s", pool: str = "p") -> IpPlan:
    warmed = start is None
    return IpPlan(name=name, pool=pool, stream=stream, tier=tier, host="h", address="192.0.2.1",
                  placeholder=True, adopted=False, allocation_id=None, helo=f"{name}.example.com",
                  warmup=WarmupSpec(warmed=warmed, start=start, schedule=None if warmed else schedule))


def _stream(route: str | None = None) -> StreamPlan:
    return StreamPlan(name="s", kind="marketing", org_domain="example.com", sending_domain="news.example.com",
                      return_path="bounce.news.example.com", pools=(("active", "p"),), route=route,
                      dkim_selector="s1", ed25519_selector=None, one_click_unsubscribe=True)


@pytest.mark.parametrize("name", sorted(BUILTIN_SCHEDULES))
def test_builtin_schedules_ramp_up_never_down(name: str) -> None:
    """Every built-in table is non-decreasing and starts low."""
    table = BUILTIN_SCHEDULES[name]
    assert all(a <= b for a, b in itertools.pairwise(table))
    assert table[0] <= 500


def test_standard_schedule_matches_common_practice() -> None:
    """standard: 200-500/day/IP on day 1, full volume within 4-6 weeks."""
    table = BUILTIN_SCHEDULES["standard"]
    assert 200 <= table[0] <= 500
    assert 28 <= len(table) <= 42


@pytest.mark.parametrize("name", sorted(BUILTIN_SCHEDULES))
def test_builtin_schedules_follow_the_guidance(name: str) -> None:
    """Every built-in starts at 200-500/day/IP and reaches full volume in 4-6 weeks (common practice,
    /work/shared/notes/deliverability.md); the audit's bounds find nothing in it."""
    table = BUILTIN_SCHEDULES[name]
    assert FIRST_DAY_MIN <= table[0] <= FIRST_DAY_MAX
    assert RAMP_MIN_DAYS <= len(table) <= RAMP_MAX_DAYS
    assert check_schedule(table) == []


def _cap_on(table: tuple[int, ...], day: int) -> int:
    """The cap on a 1-based day (past its end a table keeps its last cap, as plan_warmup does)."""
    return table[min(day, len(table)) - 1]


def test_conservative_is_never_above_standard() -> None:
    """Property: on every day of either ramp (and after), conservative allows at most what standard does
    (the issue: conservative reached 175 k/day on day 30 while standard was at 91 k)."""
    conservative, standard = BUILTIN_SCHEDULES["conservative"], BUILTIN_SCHEDULES["standard"]
    for day in range(1, max(len(conservative), len(standard)) + 10):
        assert _cap_on(conservative, day) <= _cap_on(standard, day), day


@pytest.mark.parametrize(("caps", "severities"), [
    ((50, 175_000), ["error", "info"]),  # too fast from day 2, and below 200 on day 1
    ((1000, 2000), ["error"]),  # starts above 500
    (BUILTIN_SCHEDULES["aggressive"], []),  # on the fastest allowed curve
    (tuple(range(200, 200 + 50 * 10, 10)), ["info"]),  # 50 days: slower than 6 weeks
])
def test_check_schedule_bounds(caps: tuple[int, ...], severities: list[str]) -> None:
    """A custom table faster than 500/day -> full volume in 4 weeks is an error; a slower one a note."""
    assert [severity for severity, _ in check_schedule(caps)] == severities


@pytest.mark.parametrize(("as_of", "day"), [(START, 1), (START + dt.timedelta(days=9), 10)])
def test_day_index_counts_from_start(as_of: dt.date, day: int) -> None:
    """Day 1 is the start date; the cap is the table's entry for that day."""
    (limits,) = plan_warmup((_ip("a"),), (_stream(),), {}, as_of)
    assert limits.day == day
    assert limits.daily_cap == BUILTIN_SCHEDULES["standard"][day - 1]
    assert limits.status == "warming"


def test_before_start_sends_nothing() -> None:
    """An IP whose start date is in the future gets no volume."""
    (limits,) = plan_warmup((_ip("a"),), (_stream(),), {}, START - dt.timedelta(days=1))
    assert (limits.status, limits.daily_cap, limits.hourly_cap) == ("not-started", 0, 0)
    assert not limits.sending


def test_after_table_stays_at_last_cap() -> None:
    """Past its last day an IP is warmed and keeps the table's last cap."""
    table = BUILTIN_SCHEDULES["aggressive"]
    as_of = START + dt.timedelta(days=len(table) + 5)
    (limits,) = plan_warmup((_ip("a", schedule="aggressive"),), (_stream(),), {}, as_of)
    assert (limits.status, limits.daily_cap) == ("warmed", table[-1])


def test_warmed_ip_gets_full_volume() -> None:
    """An IP marked warmed has no schedule and the full-volume cap."""
    (limits,) = plan_warmup((_ip("a", start=None),), (_stream(),), {}, START)
    assert (limits.status, limits.daily_cap, limits.day) == ("warmed", WARMED_DAILY_CAP, None)


def test_custom_table_from_stack() -> None:
    """A custom schedule of the stack file is used day by day."""
    custom = {"slow": WarmupSchedule(daily_caps=[10, 20, 30])}
    ips = (_ip("a", schedule="slow"),)
    caps = [plan_warmup(ips, (_stream(),), custom, START + dt.timedelta(days=d))[0].daily_cap
            for d in range(4)]
    assert caps == [10, 20, 30, 30]
    assert schedule_table("slow", custom) == (10, 20, 30)


def test_cold_tier_waits_for_active_tier() -> None:
    """GIVEN active and cold IPs starting together WHEN the gate has not passed THEN cold sends nothing."""
    ips = (_ip("a", tier="active"), _ip("c", tier="cold", pool="pc"))
    before = plan_warmup(ips, (_stream(),), {}, START + dt.timedelta(days=TIER_GATE_DAYS - 1))
    assert before[0].sending
    assert (before[1].status, before[1].daily_cap) == ("gated", 0)
    after = plan_warmup(ips, (_stream(),), {}, START + dt.timedelta(days=TIER_GATE_DAYS))
    assert after[1].day == 1
    assert after[1].effective_start == START + dt.timedelta(days=TIER_GATE_DAYS)


def test_tier_gate_ignores_warmed_active_tier() -> None:
    """A stream whose active tier is already warmed does not hold its winback tier back."""
    ips = (_ip("a", tier="active", start=None), _ip("w", tier="winback", pool="pw"))
    _, winback = plan_warmup(ips, (_stream(),), {}, START)
    assert (winback.day, winback.status) == (1, "warming")


def test_new_active_ip_does_not_regate_warmed_tiers() -> None:
    """GIVEN an active tier sending for months and a winback tier past its gate WHEN one IP is added to the
    active pool starting today THEN the winback tier keeps its schedule day (the gate follows the tier's
    history; prod: adding com-ma9 on 2026-12-07 sent winback back to day 1)."""
    today = START + dt.timedelta(days=60)
    ips = (_ip("a1", tier="active"), _ip("w", tier="winback", pool="pw"))
    _, before = plan_warmup(ips, (_stream(),), {}, today)
    added = (*ips, _ip("a9", tier="active", start=today))
    _, after, new = plan_warmup(added, (_stream(),), {}, today)
    assert (after.day, after.daily_cap, after.status) == (before.day, before.daily_cap, before.status)
    assert after.day == 60 - TIER_GATE_DAYS + 1
    assert new.day == 1


def test_zero_share_is_deferred_not_unpaced() -> None:
    """A provider share that rounds to 0 msgs/h is deferred and never gets a 0 s rate delay (postconf(5):
    `_destination_rate_delay = 0` turns pacing off, i.e. unlimited)."""
    for limit in split_providers(3):
        if limit.msgs_per_hour == 0:
            assert limit.deferred
            assert limit.postfix_rate_delay_seconds > 0
        else:
            assert not limit.deferred
    assert any(limit.deferred for limit in split_providers(3))


@pytest.mark.parametrize(("route", "overflow"), [("relay", "route:relay"), (None, "defer")])
def test_overflow_is_named(route: str | None, overflow: str) -> None:
    """Demand above the cap goes to the stream's route, or is deferred when there is none."""
    (limits,) = plan_warmup((_ip("a"),), (_stream(route),), {}, START)
    assert limits.overflow == overflow


@pytest.mark.parametrize("hourly", [0, 1, 23, 1250, 25_000])
def test_provider_split_stays_within_hourly_cap(hourly: int) -> None:
    """Provider rates add up to at most the IP's hourly cap."""
    assert sum(p.msgs_per_hour for p in split_providers(hourly)) <= hourly
    assert abs(sum(PROVIDER_SHARES.values()) - 1) < 1e-9


@pytest.mark.parametrize(("rate", "domains"), [(1, 1), (437, 2), (3000, 4), (5000, 1), (20_000, 2)])
def test_postfix_rate_delay_never_exceeds_rate(rate: int, domains: int) -> None:
    """Whole-second delays, rounded so the provider's domains together stay within its rate."""
    delay = postfix_rate_delay(rate, domains)
    assert isinstance(delay, int)
    if delay:
        assert domains * 3600 / delay <= rate
    else:
        assert rate / domains >= 3600


def test_hourly_cap_spreads_day() -> None:
    """The hourly cap is the daily cap spread over 12 hours, rounded up."""
    (limits,) = plan_warmup((_ip("a"),), (_stream(),), {}, START + dt.timedelta(days=3))
    assert limits.hourly_cap * HOURS_PER_DAY_SPREAD >= limits.daily_cap > (limits.hourly_cap - 1) * 12


def test_dev_plan_has_limits_for_every_ip() -> None:
    """build_plan computes one IpLimits per IP for the dev stack on the given date."""
    plan = build_plan(load_stack("dev"), dt.date(2026, 11, 29))
    assert [limits.ip for limits in plan.warmup] == [ip.name for ip in plan.ips]
    assert any(limits.sending for limits in plan.warmup)
