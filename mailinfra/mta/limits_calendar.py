"""Warmup limits on a Postfix host: a fixed boot date for its rendered files, and a calendar of later days.

Why (docs/architecture.md, "Warmup limits on the hosts"): the host's files travel in EC2 user data, so a
render of today's limits would change the user data every day of a warmup (an instance update on every
`pulumi up`, and cloud-init does not re-run on restart, so the new limits would not even apply). The files
are therefore rendered as of `limits_anchor` — the day before the host's first IP may send, when every pool
defers — and a daily timer on the host applies the calendar's entry of the day with `postconf -e`.
The calendar's values come from `postfix.plan_limit_parameters`, the function main.cf renders them with.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath

from mailinfra.errors import PlanError
from mailinfra.mta.files import RenderedFile, render_template, rendered
from mailinfra.mta.postfix import instance_log, plan_instances, plan_limit_parameters, plan_transport_caps
from mailinfra.plan.model import HostPlan, Plan

LIMITS_FILE = "etc/mailinfra/limits.json"
APPLY_SCRIPT = "usr/local/sbin/mailinfra-apply-limits"
UNIT = "mailinfra-limits"  # .service (applies the day's entry) and .timer (daily and at boot)
# The daily-cap counter: reads each instance's log every minute, defers a transport at its day's cap.
CAPS_SCRIPT = "usr/local/sbin/mailinfra-enforce-caps"
CAPS_UNIT = "mailinfra-caps"
# On the spool disk (/var/lib, with the queues): the counts survive a restart or a reboot.
CAPS_STATE = "/var/lib/mailinfra/caps-state.json"
# How often the counter runs: a transport may overshoot its cap by at most this long at its paced rate.
CAPS_INTERVAL_SECONDS = 60
# The instances' logs (maillog_file) rotate daily (`postfix logrotate`); rotated files are kept this long.
LOGROTATE_UNIT = "mailinfra-logrotate"
LOG_KEEP_DAYS = 14
# The longest built-in schedule is 35 days and a gated tier waits 14 more; a custom table past this
# many days would make a calendar too large for user data (16 KB).
MAX_CALENDAR_DAYS = 366
# A host none of whose IPs warms up renders the same limits on every date: any fixed date will do.
NO_WARMUP_ANCHOR = dt.date(1970, 1, 1)


@dataclass(frozen=True, slots=True)
class LimitsEntry:
    """The limit parameters of every pool instance of a host on one date: config dir -> {param: value}."""

    date: dt.date
    instances: dict[str, dict[str, str]]
    # config dir -> {transport: messages it may deliver that day} (mailinfra-enforce-caps)
    caps: dict[str, dict[str, int]]
    # config dir -> its log file, where the deliveries are counted
    logs: dict[str, str]


def limits_anchor(plan: Plan, host: HostPlan) -> dt.date:
    """The date a host's files are rendered as of: the day before its earliest IP may send (warmup day 0).

    Day 0, not day 1: an instance that boots before its IPs' start date must not send at all, and one that
    boots later is moved to the day's limits by the calendar at boot. Never full volume on a first boot.
    The gated tiers' start (IpLimits.effective_start) does not depend on the plan's date.
    """
    starts = [limit.effective_start for limit in plan.warmup
              if limit.schedule is not None and limit.effective_start is not None
              and plan.ip(limit.ip).host == host.name]
    return min(starts) - dt.timedelta(days=1) if starts else NO_WARMUP_ANCHOR


def plan_limits_calendar(plan_at: Callable[[dt.date], Plan], host: str) -> tuple[LimitsEntry, ...]:
    """Each date from the host's anchor until every IP of the host is warmed (that last entry included).

    `plan_at(date)` is the stack's plan as of `date` (build_plan(stack, date)).
    """
    first = plan_at(NO_WARMUP_ANCHOR)
    host_plan = first.host(host)
    anchor = limits_anchor(first, host_plan)
    ips = set(host_plan.ips)
    entries = []
    for offset in range(MAX_CALENDAR_DAYS + 1):
        plan = plan_at(anchor + dt.timedelta(days=offset))
        entries.append(plan_limits_entry(plan, host_plan))
        if all(limit.status == "warmed" for limit in plan.warmup if limit.ip in ips):
            return tuple(entries)
    raise PlanError(f"host {host}: its IPs are not all warmed {MAX_CALENDAR_DAYS} days after {anchor}, "
                    f"expected warmup schedules of at most {MAX_CALENDAR_DAYS} days")


def plan_limits_entry(plan: Plan, host: HostPlan) -> LimitsEntry:
    """The limit parameters of the host's instances as of the plan's date."""
    instances = plan_instances(plan, host)
    return LimitsEntry(plan.as_of, {i.config_dir: plan_limit_parameters(i) for i in instances},
                       {i.config_dir: plan_transport_caps(i) for i in instances},
                       {i.config_dir: instance_log(i) for i in instances})


def render_limits_files(calendar: tuple[LimitsEntry, ...]) -> tuple[RenderedFile, ...]:
    """The calendar file, the script that applies the day's entry, the daily-cap counter, the rotation of
    the logs it reads, and their systemd services and timers."""
    logs = calendar[-1].logs if calendar else {}
    return (
        rendered(LIMITS_FILE, encode_calendar(calendar)),
        rendered(APPLY_SCRIPT, render_template("postfix/mailinfra-apply-limits.j2", limits_file=f"/{LIMITS_FILE}",
                                               state_file=CAPS_STATE), mode=0o755),
        rendered(CAPS_SCRIPT, render_template("postfix/mailinfra-enforce-caps.j2", limits_file=f"/{LIMITS_FILE}",
                                              state_file=CAPS_STATE), mode=0o755),
        rendered(f"etc/systemd/system/{CAPS_UNIT}.service", render_template(
            "postfix/mailinfra-caps.service.j2", script=f"/{CAPS_SCRIPT}")),
        rendered(f"etc/systemd/system/{CAPS_UNIT}.timer", render_template(
            "postfix/mailinfra-caps.timer.j2", interval=CAPS_INTERVAL_SECONDS)),
        rendered(f"etc/systemd/system/{UNIT}.service", render_template(
            "postfix/mailinfra-limits.service.j2", script=f"/{APPLY_SCRIPT}")),
        rendered(f"etc/systemd/system/{UNIT}.timer", render_template("postfix/mailinfra-limits.timer.j2")),
        rendered(f"etc/systemd/system/{LOGROTATE_UNIT}.service", render_template(
            "postfix/mailinfra-logrotate.service.j2", config_dirs=sorted(logs), keep_days=LOG_KEEP_DAYS,
            log_dir=_log_dir(logs))),
        rendered(f"etc/systemd/system/{LOGROTATE_UNIT}.timer", render_template(
            "postfix/mailinfra-logrotate.timer.j2")),
    )


def _log_dir(logs: dict[str, str]) -> str:
    """The one directory the instances log to (postfix.instance_log)."""
    directories = {str(PurePosixPath(log).parent) for log in logs.values()} or {"/var/log"}
    if len(directories) != 1:
        raise PlanError(f"instance logs in {sorted(directories)}, expected one directory")
    return directories.pop()


def encode_calendar(calendar: tuple[LimitsEntry, ...]) -> str:
    """JSON: the first entry complete, each later one only the parameters that changed (user data is
    limited to 16 KB). The host merges the entries up to the day; `decode_calendar` is the same merge."""
    entries: list[dict[str, object]] = []
    previous: dict[str, dict[str, str]] = {}
    previous_caps: dict[str, dict[str, int]] = {}
    for entry in calendar:
        changed = {d: {k: v for k, v in params.items() if previous.get(d, {}).get(k) != v}
                   for d, params in entry.instances.items()}
        caps = {d: {t: n for t, n in counts.items() if previous_caps.get(d, {}).get(t) != n}
                for d, counts in entry.caps.items()}
        entries.append({"date": entry.date.isoformat(), "instances": {d: p for d, p in changed.items() if p},
                        "caps": {d: c for d, c in caps.items() if c}})
        previous, previous_caps = entry.instances, entry.caps
    logs = calendar[-1].logs if calendar else {}
    return json.dumps({"entries": entries, "logs": logs}, separators=(",", ":"), sort_keys=False) + "\n"


def decode_calendar(text: str, day: dt.date) -> dict[str, dict[str, str]]:
    """The parameters the host applies on `day` (the merge the apply script does); {} before the first entry."""
    return {d: {k: str(v) for k, v in p.items()} for d, p in _merge(text, day, "instances").items()}


def decode_caps(text: str, day: dt.date) -> dict[str, dict[str, int]]:
    """The transports' daily caps on `day` (the merge mailinfra-enforce-caps does)."""
    return {d: {t: int(str(n)) for t, n in c.items()} for d, c in _merge(text, day, "caps").items()}


def _merge(text: str, day: dt.date, key: str) -> dict[str, dict[str, object]]:
    merged: dict[str, dict[str, object]] = {}
    for entry in json.loads(text)["entries"]:
        if entry["date"] > day.isoformat():
            break
        for directory, values in entry.get(key, {}).items():
            merged.setdefault(directory, {}).update(values)
    return merged
