"""Warmup plan: how much each sending IP may send today, split per mailbox provider.

Pure: dates in, typed limits out. Every MTA renderer (Postfix transports, PowerMTA <domain> blocks) and the
`mailinfra warmup` table read the limits computed here; nothing else derives a rate.

Rules, each with the practice behind it (/work/shared/notes/deliverability.md, "Warmup schedules"):
- Schedules are daily caps per IP, day 1 first. Built-ins follow the seed's guidance (common practice:
  start at 200-500/day/IP, reach full volume in 4-6 weeks), and `conservative` is never above `standard` on
  any day. KumoMTA's published presets (conservative 50 -> 175,000 in 30 days, aggressive 200 -> 300,000 in
  14 days) ramp faster than that guidance and are not used as they are. Custom tables come from
  `warmup_schedules` in the stack file and are audited against the same bounds (`check_schedule`). Past its
  last day an IP keeps the last cap.
- The hourly cap is the daily cap / 12 (KumoMTA), so a day's volume spreads over at least 12 hours. Pacing at
  that rate for 24 hours would allow twice the daily cap: each provider share also has a daily cap
  (`ProviderLimit.msgs_per_day`), which the host counts and enforces (Postfix: mailinfra-enforce-caps).
- Tier order (engaged first): a winback or cold tier gets no volume until the stream's active tier has sent
  for TIER_GATE_DAYS days; its own day 1 is the later of its start date and that gate date. The gate follows
  the active tier's history (its earliest-sending IP), not its newest IP: adding an IP to a warmed active
  pool must not send an already warmed winback tier back to day 1.
- A provider share that rounds to 0 messages/hour is *deferred* (`ProviderLimit.deferred`): an MTA must
  hold that mail, never send it unpaced (a Postfix rate delay of 0 means no pacing at all, postconf(5)).
- Overflow (demand above an IP's cap) is never silent: it goes to the other IPs of the same pool up to their
  caps; above the pool's cap it goes to the stream's secondary route when the stream has one, else it stays
  queued (deferred) for the next day. `IpLimits.overflow` says which, per IP.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Mapping

from mailinfra.model.schema import WarmupSchedule
from mailinfra.plan.model import IpLimits, IpPlan, ProviderLimit, StreamPlan

# Hourly cap = daily cap / 12 (KumoMTA warmup presets): no IP sends its whole day in one burst.
HOURS_PER_DAY_SPREAD = 12

# A winback/cold tier starts once the stream's active tier has sent for this many days (two weeks: the
# engaged audience has built the IPs' and the domain's reputation before less engaged recipients see them).
TIER_GATE_DAYS = 14
GATED_TIERS = ("winback", "cold")

# An IP marked `warmed: true` sends up to this many messages a day (the top of the built-in tables).
WARMED_DAILY_CAP = 300_000

# Planning shares of an IP's hourly volume per provider: a typical consumer list (Gmail largest, then
# Microsoft consumer mail, Yahoo incl. AOL, Apple iCloud). Demand above a provider's share overflows like
# any demand above a cap (see the module docstring). Shares add up to 1.
PROVIDER_SHARES: Mapping[str, float] = {
    "gmail": 0.35,
    "microsoft": 0.25,
    "yahoo": 0.15,
    "apple": 0.10,
    "default": 0.15,
}

# Recipient domains of each provider (the MTAs match on these; every other domain is "default").
PROVIDER_DOMAINS: Mapping[str, tuple[str, ...]] = {
    "gmail": ("gmail.com", "googlemail.com"),
    "microsoft": ("outlook.com", "hotmail.com", "live.com", "msn.com"),
    "yahoo": ("yahoo.com", "aol.com", "ymail.com"),
    "apple": ("icloud.com", "me.com", "mac.com"),
    "default": (),
}
PROVIDERS = tuple(PROVIDER_SHARES)

# Most parallel connections one IP opens to a provider. Microsoft and Yahoo throttle new IPs on
# concurrency first (421 4.7.0 / TSS04), so they get fewer than Gmail.
PROVIDER_MAX_CONCURRENCY: Mapping[str, int] = {
    "gmail": 10,
    "microsoft": 5,
    "yahoo": 5,
    "apple": 5,
    "default": 10,
}
# One SMTP connection comfortably delivers a message every 2 s: more demand than that opens another.
MSGS_PER_CONNECTION_HOUR = 1800

# Postfix paces with `<transport>_destination_rate_delay` in whole seconds per (transport, recipient
# domain) (postconf(5)); one message per second is therefore the fastest paced rate.
SECONDS_PER_HOUR = 3600


# The seed's guidance for a new IP (/work/shared/notes/deliverability.md, "Common practice"): start at
# 200-500 messages/day, reach full volume in 4-6 weeks.
FIRST_DAY_MIN, FIRST_DAY_MAX = 200, 500
RAMP_MIN_DAYS, RAMP_MAX_DAYS = 28, 42


def _geometric(first: int, last: int, days: int) -> tuple[int, ...]:
    """A smooth ramp first -> last over `days` days, each day the same factor up, rounded *down* to 2
    significant digits (so a table on the fastest allowed curve never rounds above it)."""
    factor = (last / first) ** (1 / (days - 1))
    caps = []
    for day in range(days - 1):
        value = first * factor**day
        unit = 10 ** max(0, int(math.log10(value)) - 1)
        caps.append(int(value // unit * unit))
    return (*caps, last)


BUILTIN_SCHEDULES: Mapping[str, tuple[int, ...]] = {
    "conservative": _geometric(200, 175_000, 42),  # the low end: 200/day, 6 weeks
    "standard": _geometric(250, 250_000, 35),  # 250/day at first, full volume in 5 weeks
    "aggressive": _geometric(500, 300_000, 28),  # the fast end: 500/day, 4 weeks
    "transactional": _geometric(300, 300_000, 28),  # engaged recipients: 4 weeks
}


def fastest_allowed_cap(day: int) -> int:
    """The highest daily cap the guidance allows on `day` (1-based): FIRST_DAY_MAX on day 1, growing by
    the same factor each day to full volume (WARMED_DAILY_CAP) on day RAMP_MIN_DAYS, never faster."""
    factor: float = (WARMED_DAILY_CAP / FIRST_DAY_MAX) ** (1 / (RAMP_MIN_DAYS - 1))
    return math.ceil(min(WARMED_DAILY_CAP, FIRST_DAY_MAX * factor ** (day - 1)))


def check_schedule(caps: tuple[int, ...]) -> list[tuple[str, str]]:
    """Where a table of daily caps leaves the guidance: (severity, why) pairs, "error" when it ramps
    faster than the fastest allowed curve (reputation risk), "info" when it is slower than the guidance
    (no reputation risk, the volume comes later: a bulk tier may start lower on purpose)."""
    problems: list[tuple[str, str]] = []
    if caps[0] > FIRST_DAY_MAX:
        problems.append(("error", f"starts at {caps[0]}/day, expected at most {FIRST_DAY_MAX}/day/IP"))
    else:
        for day, cap in enumerate(caps, start=1):
            if cap > fastest_allowed_cap(day):
                problems.append(("error", f"day {day} allows {cap}/day, expected at most "
                                 f"{fastest_allowed_cap(day)} ({FIRST_DAY_MAX}/day to full volume in no "
                                 f"less than {RAMP_MIN_DAYS} days)"))
                break
    if caps[0] < FIRST_DAY_MIN:
        problems.append(("info", f"starts at {caps[0]}/day, below the {FIRST_DAY_MIN}-{FIRST_DAY_MAX}/day/IP "
                         "of common practice"))
    if len(caps) > RAMP_MAX_DAYS:
        problems.append(("info", f"ramps for {len(caps)} days, longer than {RAMP_MAX_DAYS} (6 weeks)"))
    return problems


def schedule_table(name: str, custom: Mapping[str, WarmupSchedule]) -> tuple[int, ...]:
    """Daily caps of a schedule, day 1 first: a custom table from the stack wins over a built-in name."""
    if name in custom:
        return tuple(custom[name].daily_caps)
    return BUILTIN_SCHEDULES[name]


def plan_warmup(
    ips: tuple[IpPlan, ...],
    streams: tuple[StreamPlan, ...],
    custom: Mapping[str, WarmupSchedule],
    as_of: dt.date,
) -> tuple[IpLimits, ...]:
    """Limits of every IP on `as_of` (explicit, so a render of the same plan is reproducible)."""
    routes = {s.name: s.route for s in streams}
    gates = _tier_gates(ips)
    return tuple(_limit_ip(ip, custom, as_of, gates.get(ip.stream), routes.get(ip.stream)) for ip in ips)


def _tier_gates(ips: tuple[IpPlan, ...]) -> dict[str, dt.date]:
    """stream -> the first day its gated tiers may send: TIER_GATE_DAYS after the stream's active tier
    first sent (its earliest IP; a warmed IP has always sent). The earliest, not the latest: the tier's
    engaged audience has built the reputation since then, and an IP added to the pool later starts its
    own schedule without sending the winback/cold tiers back to day 1."""
    gates: dict[str, dt.date] = {}
    for ip in ips:
        if ip.tier != "active":
            continue
        ready = dt.date.min if ip.warmup.warmed or ip.warmup.start is None else (
            ip.warmup.start + dt.timedelta(days=TIER_GATE_DAYS))
        gates[ip.stream] = min(gates.get(ip.stream, dt.date.max), ready)
    return gates


def _limit_ip(ip: IpPlan, custom: Mapping[str, WarmupSchedule], as_of: dt.date,
              gate: dt.date | None, route: str | None) -> IpLimits:
    overflow = f"route:{route}" if route else "defer"
    spec = ip.warmup
    if spec.warmed or spec.start is None or spec.schedule is None:
        return _limits(ip, None, None, None, day=None, status="warmed", daily_cap=WARMED_DAILY_CAP,
                       overflow=overflow)
    table = schedule_table(spec.schedule, custom)
    start = spec.start
    if ip.tier in GATED_TIERS and gate is not None and gate > start:
        start = gate
    day = (as_of - start).days + 1
    if day < 1:
        status = "gated" if start != spec.start and as_of >= spec.start else "not-started"
        return _limits(ip, spec.schedule, spec.start, start, day=None, status=status, daily_cap=0,
                       overflow=overflow)
    if day > len(table):
        return _limits(ip, spec.schedule, spec.start, start, day=day, status="warmed", daily_cap=table[-1],
                       overflow=overflow)
    return _limits(ip, spec.schedule, spec.start, start, day=day, status="warming", daily_cap=table[day - 1],
                   overflow=overflow)


def _limits(ip: IpPlan, schedule: str | None, start: dt.date | None, effective: dt.date | None, *,
            day: int | None, status: str, daily_cap: int, overflow: str) -> IpLimits:
    hourly = math.ceil(daily_cap / HOURS_PER_DAY_SPREAD)
    return IpLimits(
        ip=ip.name, pool=ip.pool, stream=ip.stream, tier=ip.tier, schedule=schedule, start=start,
        effective_start=effective, day=day, status=status, daily_cap=daily_cap, hourly_cap=hourly,
        overflow=overflow, providers=split_providers(hourly, daily_cap),
    )


@functools.cache  # a calendar re-plans every IP for every date of a warmup: few distinct caps recur
def split_providers(hourly_cap: int, daily_cap: int | None = None) -> tuple[ProviderLimit, ...]:
    """Per-provider hourly and daily limits of one IP (floored, so their sums never exceed the IP's caps).
    `daily_cap` None: the hourly cap spread over HOURS_PER_DAY_SPREAD hours."""
    daily = hourly_cap * HOURS_PER_DAY_SPREAD if daily_cap is None else daily_cap
    result = []
    for provider, share in PROVIDER_SHARES.items():
        rate = math.floor(hourly_cap * share)
        per_day = math.floor(daily * share)
        domains = PROVIDER_DOMAINS[provider]
        result.append(ProviderLimit(
            provider=provider,
            domains=domains,
            msgs_per_hour=rate,
            concurrency=min(PROVIDER_MAX_CONCURRENCY[provider],
                            max(1, math.ceil(rate / MSGS_PER_CONNECTION_HOUR))),
            postfix_rate_delay_seconds=postfix_rate_delay(rate, max(1, len(domains))),
            msgs_per_day=per_day,
            deferred=rate <= 0 or per_day <= 0,
        ))
    return tuple(result)


def postfix_rate_delay(msgs_per_hour: int, domains: int) -> int:
    """Whole seconds between deliveries per recipient domain; `domains` domains together keep the rate.

    Postfix paces each recipient domain separately, so a provider with n domains gets n times the
    per-domain rate: the delay is rounded up, never down, so the provider's hourly cap holds.
    0 means no pacing is needed (above one message per second per domain). A rate of 0 (nothing may be
    sent) gets the slowest pace, one message per hour per domain, never 0: postconf(5) reads a rate delay
    of 0 as "no pacing", and the MTA defers such a transport anyway (`ProviderLimit.deferred`).
    """
    if msgs_per_hour <= 0:
        return SECONDS_PER_HOUR
    per_domain = msgs_per_hour / domains
    if per_domain >= SECONDS_PER_HOUR:
        return 0
    return math.ceil(SECONDS_PER_HOUR / per_domain)
