"""One report in, its effect on the store out: what the processor service calls (s12b's bounceproc).

The only I/O is through the store given. Parsing and deciding are pure; `apply` is one transaction that
also records the report's key, so a report handed over twice (the processor killed after the commit and
before its LMTP reply, an SQS message received twice) changes the store once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from mailinfra.suppression.model import Action, Decision, Policy, Report
from mailinfra.suppression.policy import decide
from mailinfra.suppression.reports import Context, parse_message
from mailinfra.suppression.store import Applied, SuppressionStore


def process_message(raw: bytes, *, envelope_recipient: str | None, context: Context, policy: Policy,
                    store: SuppressionStore, now: dt.datetime, actor: str) -> list[Applied]:
    """Parse one received message (a DSN, an ARF report, a non-RFC bounce) and apply what it says."""
    reports = parse_message(raw, envelope_recipient=envelope_recipient, context=context, today=now.date())
    return process_reports(reports, policy=policy, store=store, now=now, actor=actor)


def process_messages(messages: Iterable[tuple[bytes, str | None]], *, context: Context, policy: Policy,
                     store: SuppressionStore, now: dt.datetime, actor: str) -> list[list[Applied]]:
    """`process_message` for each (raw, envelope recipient), committed together (store.batch): the
    processor's group commit. Answer the LMTP transactions of the batch only after this returns."""
    with store.batch():
        return [process_message(raw, envelope_recipient=envelope, context=context, policy=policy, store=store,
                                now=now, actor=actor) for raw, envelope in messages]


def process_reports(reports: Iterable[Report], *, policy: Policy, store: SuppressionStore, now: dt.datetime,
                    actor: str) -> list[Applied]:
    """Decide and apply each report (SES events, PowerMTA accounting records and the CLI come in here)."""
    results = []
    for report in reports:
        decision = decide(report, policy, soft_count_before=0, now=now, actor=actor)
        if _is_soft(decision):
            # Only a soft failure needs the address's history: ask the store then, not for every report.
            before = store.soft_count(report.recipient, now - policy.soft_window)
            decision = decide(report, policy, soft_count_before=before, now=now, actor=actor)
        results.append(store.apply(report.dedupe_key, decision, now=now, actor=actor, window=policy.soft_window))
    return results


def _is_soft(decision: Decision) -> bool:
    entry = decision.entry
    return decision.action is Action.COUNT_SOFT or (
        decision.action is Action.SUPPRESS and entry is not None and entry.expires is not None)
