"""What a report does to its recipient: suppress, count a soft failure, count for the pool, or nothing (pure).

The rules (issue 12; /work/shared/notes/deliverability.md "Suppress on address-level failures only"):
- Nothing from a report that refers to no message we sent (`verp_verified` False): anybody can mail us a
  DSN or an ARF report naming anybody.
- Bounces: only `Action: failed` counts (RFC 3464 §2.3.3: delayed/delivered/relayed/expanded are not
  failures). Address-level failures suppress at once, for every stream kind (the mailbox does not exist for
  any of them); soft ones (mailbox full) count and suppress past the threshold within the window, for
  `soft_expiry`; policy, spam and reputation blocks (5.7.x, 4.7.x) are about our IP or content: they count
  for the pool and suppress nobody (Postal #266, #1243).
- Complaints (RFC 5965 ARF): abuse, fraud and virus suppress for the stream kinds the stack lists
  (`complaint_streams`, marketing and bulk by default); not-spam and the other types never do.
- Unsubscribes (RFC 8058 one-click and the sender's own lists) suppress for the kind of the stream they came
  from (or `unsubscribe_kinds`); manual entries are taken as given.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING

from mailinfra.model.kinds import StreamKind
from mailinfra.suppression.classify import Severity, classify
from mailinfra.suppression.model import (
    ALL_KINDS,
    Action,
    BounceClass,
    Decision,
    Entry,
    FeedbackType,
    Policy,
    Report,
    ReportKind,
    Source,
)

if TYPE_CHECKING:  # the schema (pydantic) is not on the hosts: mailinfra.mta.host_code
    from mailinfra.model.schema import Suppression

_COMPLAINT_TYPES = frozenset({FeedbackType.ABUSE, FeedbackType.FRAUD, FeedbackType.VIRUS})


def policy_from_config(config: Suppression) -> Policy:
    """The pure core's Policy from the stack's `bounces.suppression`."""
    return Policy(
        soft_threshold=config.soft_bounce_threshold,
        soft_window=dt.timedelta(days=config.soft_bounce_window_days),
        soft_expiry=dt.timedelta(days=config.soft_expiry_days),
        complaint_kinds=frozenset(config.complaint_streams),
        token_max_age=dt.timedelta(days=config.token_max_age_days),
    )


def policy_from_rendered(policy: Mapping[str, object]) -> Policy:
    """The Policy from the processor config's `policy` (the plan's validated `bounces.suppression`, dumped as
    JSON by mailinfra.plan.build): read without the schema, which needs pydantic (not on the hosts). A key
    left out keeps Policy's default (the schema's); a mistyped one raises ValueError naming it."""
    default = Policy()

    def number(key: str, fallback: int) -> int:
        value = policy.get(key, fallback)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{key}: received {value!r}, expected a whole number >= 1")
        return value

    streams = policy.get("complaint_streams", sorted(default.complaint_kinds))
    if not isinstance(streams, list) or not streams:
        raise ValueError(f"complaint_streams: received {streams!r}, expected a list of stream kinds")
    return Policy(soft_threshold=number("soft_bounce_threshold", default.soft_threshold),
                  soft_window=dt.timedelta(days=number("soft_bounce_window_days", default.soft_window.days)),
                  soft_expiry=dt.timedelta(days=number("soft_expiry_days", default.soft_expiry.days)),
                  complaint_kinds=frozenset(StreamKind(kind) for kind in streams),
                  token_max_age=dt.timedelta(days=number("token_max_age_days", default.token_max_age.days)))


def decide(report: Report, policy: Policy, *, soft_count_before: int, now: dt.datetime,
           actor: str) -> Decision:
    """The decision for one report. `soft_count_before`: soft failures of this recipient already counted
    inside `policy.soft_window` (the store's soft_count)."""
    if not report.verp_verified:
        return _decision(report, Action.IGNORE, f"{report.kind} for {report.recipient}: refers to no message we "
                         "sent (no valid token)")
    if report.kind is ReportKind.BOUNCE:
        return _decide_bounce(report, policy, soft_count_before, now=now, actor=actor)
    if report.kind is ReportKind.COMPLAINT:
        return _decide_complaint(report, policy, now=now, actor=actor)
    kinds = _unsubscribe_scope(report, policy) if report.kind is ReportKind.UNSUBSCRIBE else ALL_KINDS
    source = Source.UNSUBSCRIBE if report.kind is ReportKind.UNSUBSCRIBE else Source.MANUAL
    entry = _entry(report, kinds, reason=report.diagnostic or str(report.kind), cls=None, source=source, now=now,
                   expires=None, actor=actor)
    return _decision(report, Action.SUPPRESS, f"{report.kind}: {report.recipient}", entry=entry)


def _decide_bounce(report: Report, policy: Policy, soft_count_before: int, *, now: dt.datetime,
                   actor: str) -> Decision:
    verdict = classify(report.status, report.diagnostic, report.remote_mta)
    where = f"{verdict.status or 'no status'} {verdict.cls} ({verdict.rule})"
    if (report.action or "").lower() != "failed":
        # RFC 3464 §2.3.3: only "failed" says the message could not be delivered.
        why = f"action {report.action or 'missing'}, not failed: {where}"
        return _decision(report, Action.IGNORE, why, cls=verdict.cls)
    if verdict.severity is Severity.POOL:
        return _decision(report, Action.COUNT_POOL, f"about the sender, not {report.recipient}: {where}",
                         cls=verdict.cls, pool=report.pool)
    if verdict.severity is Severity.NONE:
        return _decision(report, Action.IGNORE, f"not about the mailbox: {where}", cls=verdict.cls)
    reason = f"{verdict.status or 'bounce'} {verdict.cls}: {_short(report.diagnostic)}".strip(": ")
    if verdict.severity is Severity.HARD:
        entry = _entry(report, ALL_KINDS, reason=reason, cls=verdict.cls, source=Source.BOUNCE, now=now,
                       expires=None, actor=actor)
        return _decision(report, Action.SUPPRESS, f"hard bounce: {where}", entry=entry, cls=verdict.cls)
    count = soft_count_before + 1
    why = f"soft bounce {count}/{policy.soft_threshold}: {where}"
    if count >= policy.soft_threshold:
        entry = _entry(report, ALL_KINDS, reason=f"{reason} ({count} soft bounces)", cls=verdict.cls,
                       source=Source.BOUNCE, now=now, expires=now + policy.soft_expiry, actor=actor)
        return _decision(report, Action.SUPPRESS, why, entry=entry, cls=verdict.cls)
    return _decision(report, Action.COUNT_SOFT, why, cls=verdict.cls)


def _decide_complaint(report: Report, policy: Policy, *, now: dt.datetime, actor: str) -> Decision:
    kind = report.feedback_type
    if kind not in _COMPLAINT_TYPES:
        # RFC 5965 §7.3: not-spam says the opposite of a complaint; auth-failure (RFC 6591) and other
        # are about the message, not a recipient's wish.
        return _decision(report, Action.IGNORE, f"feedback type {kind or 'missing'}: not a complaint")
    reporter = f" ({report.reporter})" if report.reporter else ""
    entry = _entry(report, policy.complaint_kinds, reason=f"{kind} complaint{reporter}", cls=None,
                   source=Source.COMPLAINT, now=now, expires=None, actor=actor)
    return _decision(report, Action.SUPPRESS, f"{kind} complaint{reporter}", entry=entry)


def _unsubscribe_scope(report: Report, policy: Policy) -> frozenset[StreamKind]:
    if policy.unsubscribe_kinds is not None:
        return policy.unsubscribe_kinds
    return frozenset({report.stream_kind}) if report.stream_kind is not None else ALL_KINDS


def _entry(report: Report, kinds: frozenset[StreamKind], *, reason: str, cls: BounceClass | None, source: Source,
           now: dt.datetime, expires: dt.datetime | None, actor: str) -> Entry:
    return Entry(address=report.recipient, scope=kinds, reason=reason, cls=cls, source=source, first_seen=now,
                 last_seen=now, expires=expires, added_by=actor, stream=report.stream)


def _decision(report: Report, action: Action, why: str, *, entry: Entry | None = None,
              cls: BounceClass | None = None, pool: str | None = None) -> Decision:
    return Decision(action=action, why=why, address=report.recipient, entry=entry, cls=cls, pool=pool)


def _short(text: str, limit: int = 120) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."
