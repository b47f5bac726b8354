"""Named plan dates (`--as-of warmed`, `all-sending`): the first day on which a stack's IPs reach a state.

One vocabulary for every command that plans "as of" a day: an ISO date, `today`, or one of NAMED_DAYS.
"""

from __future__ import annotations

import datetime as dt

from mailinfra.errors import UsageError
from mailinfra.model.load import Stack
from mailinfra.plan.build import build_plan

# name -> what must hold on that day
NAMED_DAYS = {
    "all-sending": "every Postfix pool instance may send",
    "warmed": "every IP has finished its warmup",
}
HORIZON_DAYS = 730


def first_day(stack: Stack, require: str, start: dt.date | None = None, horizon_days: int = HORIZON_DAYS) -> dt.date:
    """The first day from `start` (default today) on which `require` (a NAMED_DAYS key) holds.

    `warmed` gives the pacing of a warm IP (a few seconds between messages per provider instead of hours on a
    cold pool's first day); `all-sending` the first day no pool instance is gated any more.
    """
    from mailinfra.mta.postfix import plan_instances

    if require not in NAMED_DAYS:
        raise ValueError(f"require must be one of {', '.join(NAMED_DAYS)}, got {require!r}")
    day = start or dt.date.today()
    for offset in range(horizon_days):
        plan = build_plan(stack, day + dt.timedelta(days=offset))
        if require == "warmed":
            ok = all(limit.status == "warmed" for limit in plan.warmup)
        else:
            ok = all(i.sending for h in plan.hosts if h.mta == "postfix" for i in plan_instances(plan, h))
        if ok:
            return day + dt.timedelta(days=offset)
    raise UsageError(f"--as-of: received {require!r}, but no day within {horizon_days} days on which "
                     f"{NAMED_DAYS[require]} in {stack.source}")
