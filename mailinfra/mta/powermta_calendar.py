"""Warmup limits on a PowerMTA host: its `config` rendered as of a fixed date, and a calendar of later limits.

Why (docs/architecture.md, "Warmup limits on the hosts"): a render of today's limits (max-msg-rate,
max-smtp-out, ...) would change the host's config bundle every day of a warmup, and the host would apply
a new day's limits only after a redeploy. As for Postfix (limits_calendar), the bundle's /etc/pmta/config
is rendered as of `limits_anchor` (warmup day 0), and /etc/pmta/limits.json carries, for every date on which
they change, the parts of the config that follow the warmup (`powermta.plan_warmup_state`: per virtual-mta
and domain the limit directives, per pool its members; the config's structure is the same on every date).
A daily timer on the host sets that day's values in the config and runs `pmta reload` only on a change.
The values are the ones render_powermta renders: no limit is derived twice, and the tests check that the
host's result is, byte for byte, render_powermta as of each date.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass

from mailinfra.errors import PlanError
from mailinfra.mta.files import RenderedFile, render_template, rendered
from mailinfra.mta.limits_calendar import MAX_CALENDAR_DAYS, NO_WARMUP_ANCHOR, limits_anchor
from mailinfra.mta.powermta import CONFIG_PATH, LIMITS_FILE, WarmupState, plan_warmup_state
from mailinfra.plan.model import Plan

APPLY_SCRIPT = "usr/local/sbin/mailinfra-apply-pmta-config"
UNIT = "mailinfra-pmta-config"  # .service (sets the day's limits) and .timer (daily and at boot)


@dataclass(frozen=True, slots=True)
class WarmupEntry:
    """The host's warmup state from `date` on (until the next entry)."""

    date: dt.date
    state: WarmupState


def plan_config_calendar(plan_at: Callable[[dt.date], Plan], host: str) -> tuple[WarmupEntry, ...]:
    """The host's warmup state as of each date it changes, from its anchor (always the first entry: what the
    bundle's config holds) until every IP of the host is warmed.

    `plan_at(date)` is the stack's plan as of `date` (build_plan(stack, date)).
    """
    first = plan_at(NO_WARMUP_ANCHOR)
    anchor = limits_anchor(first, first.host(host))
    ips = set(first.host(host).ips)
    entries: list[WarmupEntry] = []
    for offset in range(MAX_CALENDAR_DAYS + 1):
        date = anchor + dt.timedelta(days=offset)
        plan = plan_at(date)
        state = plan_warmup_state(plan, plan.host(host))
        if not entries or state != entries[-1].state:
            entries.append(WarmupEntry(date, state))
        if all(limit.status == "warmed" for limit in plan.warmup if limit.ip in ips):
            return tuple(entries)
    raise PlanError(f"host {host}: its IPs are not all warmed {MAX_CALENDAR_DAYS} days after {anchor}, "
                    f"expected warmup schedules of at most {MAX_CALENDAR_DAYS} days")


def encode_calendar(calendar: tuple[WarmupEntry, ...]) -> str:
    """JSON: the first entry complete, each later one only the directives and pools that changed; the host
    merges the entries up to the day (`decode_calendar` is the same merge)."""
    entries: list[dict[str, object]] = []
    previous: WarmupState | None = None
    for entry in calendar:
        directives: dict[str, dict[str, dict[str, str]]] = {}
        for vmta, domains in entry.state.directives.items():
            for domain, values in domains.items():
                before = previous.directives.get(vmta, {}).get(domain, {}) if previous else {}
                changed = {k: v for k, v in values.items() if before.get(k) != v}
                if changed:
                    directives.setdefault(vmta, {})[domain] = changed
        pools = {p: list(m) for p, m in entry.state.pools.items() if not previous or previous.pools.get(p) != m}
        entries.append({"date": entry.date.isoformat(), "directives": directives, "pools": pools})
        previous = entry.state
    return json.dumps({"entries": entries}, separators=(",", ":")) + "\n"


def decode_calendar(text: str, day: dt.date) -> WarmupState:
    """The state the host applies on `day`: the entries dated on or before it, merged."""
    directives: dict[str, dict[str, dict[str, str]]] = {}
    pools: dict[str, tuple[str, ...]] = {}
    for entry in json.loads(text)["entries"]:
        if entry["date"] > day.isoformat():
            break
        for vmta, domains in entry["directives"].items():
            for domain, values in domains.items():
                directives.setdefault(vmta, {}).setdefault(domain, {}).update(values)
        pools.update({p: tuple(m) for p, m in entry["pools"].items()})
    return WarmupState(directives, pools)


def render_config_calendar_files(calendar: tuple[WarmupEntry, ...]) -> tuple[RenderedFile, ...]:
    """The calendar, the script that sets the day's limits in the config and its systemd service and timer."""
    return (
        rendered(LIMITS_FILE, encode_calendar(calendar)),
        rendered(APPLY_SCRIPT, render_template(
            "powermta/mailinfra-apply-pmta-config.j2", limits_file=f"/{LIMITS_FILE}", config=f"/{CONFIG_PATH}"),
            mode=0o755),
        rendered(f"etc/systemd/system/{UNIT}.service", render_template(
            "powermta/mailinfra-pmta-config.service.j2", script=f"/{APPLY_SCRIPT}", limits_file=f"/{LIMITS_FILE}")),
        rendered(f"etc/systemd/system/{UNIT}.timer", render_template("powermta/mailinfra-pmta-config.timer.j2")),
    )
