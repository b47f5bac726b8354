"""Warmup limits on a PowerMTA host: its `config` rendered as of a fixed date, and a calendar of later configs.

Why (docs/architecture.md, "Warmup limits on the hosts"): a render of today's limits (max-msg-rate,
max-smtp-out, ...) would change the host's config bundle every day of a warmup, and the host would apply
a new day's limits only after a redeploy. As for Postfix (limits_calendar), the bundle's /etc/pmta/config
is rendered as of `limits_anchor` (warmup day 0) and carries the whole `config` of every date on which it
changes; a daily timer on the host installs the day's file and runs `pmta reload`. Each calendar file is
`render_powermta` of its date: no limit is derived twice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from mailinfra.errors import PlanError
from mailinfra.mta.files import RenderedFile, render_template, rendered
from mailinfra.mta.limits_calendar import MAX_CALENDAR_DAYS, NO_WARMUP_ANCHOR, limits_anchor
from mailinfra.mta.powermta import CONFIG_PATH, render_powermta
from mailinfra.plan.model import Plan

CALENDAR_DIR = "etc/pmta/calendar"  # <YYYY-MM-DD>.config: the whole config from that date on
APPLY_SCRIPT = "usr/local/sbin/mailinfra-apply-pmta-config"
UNIT = "mailinfra-pmta-config"  # .service (installs the day's config) and .timer (daily and at boot)


def plan_config_calendar(plan_at: Callable[[dt.date], Plan], host: str) -> tuple[RenderedFile, ...]:
    """The host's `config` as of each date it changes, from its anchor until every IP of the host is
    warmed, each at CALENDAR_DIR/<date>.config (the anchor's always: the host boots with it).

    `plan_at(date)` is the stack's plan as of `date` (build_plan(stack, date)).
    """
    first = plan_at(NO_WARMUP_ANCHOR)
    anchor = limits_anchor(first, first.host(host))
    entries: list[RenderedFile] = []
    previous: str | None = None
    for offset in range(MAX_CALENDAR_DAYS + 1):
        date = anchor + dt.timedelta(days=offset)
        plan = plan_at(date)
        (config,) = render_powermta(plan, plan.host(host))
        text = config_directives(config.content)
        if text != previous:
            entries.append(rendered(calendar_path(date), config.content, mode=config.mode))
            previous = text
        if all(limit.status == "warmed" for limit in plan.warmup if plan.ip(limit.ip).host == host):
            return tuple(entries)
    raise PlanError(f"host {host}: its IPs are not all warmed {MAX_CALENDAR_DAYS} days after {anchor}, "
                    f"expected warmup schedules of at most {MAX_CALENDAR_DAYS} days")


def config_directives(text: str) -> str:
    """The config without its comment lines: the render names its date and each IP's warmup day there
    (a warmed IP's day still counts up), which PowerMTA ignores and which is no reason for a new file."""
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


def calendar_path(date: dt.date) -> str:
    return f"{CALENDAR_DIR}/{date.isoformat()}.config"


def render_config_calendar_files(calendar: tuple[RenderedFile, ...]) -> tuple[RenderedFile, ...]:
    """The calendar's configs, the script that installs the day's one and its systemd service and timer."""
    return (
        *calendar,
        rendered(APPLY_SCRIPT, render_template(
            "powermta/mailinfra-apply-pmta-config.j2", calendar_dir=f"/{CALENDAR_DIR}", config=f"/{CONFIG_PATH}"),
            mode=0o755),
        rendered(f"etc/systemd/system/{UNIT}.service", render_template(
            "powermta/mailinfra-pmta-config.service.j2", script=f"/{APPLY_SCRIPT}")),
        rendered(f"etc/systemd/system/{UNIT}.timer", render_template("powermta/mailinfra-pmta-config.timer.j2")),
    )
