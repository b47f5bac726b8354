"""One report in, its effect on the store out: what the processor service calls (s12b's bounceproc).

The only I/O is through the store given. Parsing and deciding are pure; `apply` is one transaction that
also records the report's key, so a report handed over twice (the processor killed after the commit and
before its LMTP reply, an SQS message received twice) changes the store once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from mailinfra.suppression.model import Policy, Report
from mailinfra.suppression.policy import decide
from mailinfra.suppression.reports import Context, parse_message
from mailinfra.suppression.store import Applied, SuppressionStore


def process_message(raw: bytes, *, envelope_recipient: str | None, context: Context, policy: Policy,
                    store: SuppressionStore, now: dt.datetime, actor: str) -> list[Applied]:
    """Parse one received message (a DSN, an ARF report, a non-RFC bounce) and apply what it says."""
    reports = parse_message(raw, envelope_recipient=envelope_recipient, context=context, today=now.date())
    return process_reports(reports, policy=policy, store=store, now=now, actor=actor)


def process_reports(reports: Iterable[Report], *, policy: Policy, store: SuppressionStore, now: dt.datetime,
                    actor: str) -> list[Applied]:
    """Decide and apply each report (SES events, PowerMTA accounting records and the CLI come in here)."""
    results = []
    for report in reports:
        before = store.soft_count(report.recipient, now - policy.soft_window) if report.verp_verified else 0
        decision = decide(report, policy, soft_count_before=before, now=now, actor=actor)
        results.append(store.apply(report.dedupe_key, decision, now=now, actor=actor, window=policy.soft_window))
    return results
