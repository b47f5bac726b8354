"""decide(): what a report does to its recipient under the stack's policy."""

from __future__ import annotations

import datetime as dt

import pytest

from mailinfra.model.schema import StreamKind, Suppression
from mailinfra.suppression.model import ALL_KINDS, Action, FeedbackType, Policy, Report, ReportKind, Source
from mailinfra.suppression.policy import decide, policy_from_config
from tests.suppression.samples import NOW

POLICY = Policy()
T, M, B = StreamKind.TRANSACTIONAL, StreamKind.MARKETING, StreamKind.BULK


def bounce(status: str, diagnostic: str = "", action: str = "failed", verified: bool = True) -> Report:
    return Report(kind=ReportKind.BOUNCE, recipient="bob@example.net", stream="news", stream_kind=M, pool="mkt",
                  action=action, status=status, diagnostic=diagnostic, message_ref="<r1>",
                  verp_verified=verified)


def complaint(kind: FeedbackType | None, stream_kind: StreamKind = M) -> Report:
    return Report(kind=ReportKind.COMPLAINT, recipient="bob@example.net", stream="news", stream_kind=stream_kind,
                  feedback_type=kind, reporter="Yahoo!-Mail-Feedback/2.0", message_ref="<c1>", verp_verified=True)


def run(report: Report, before: int = 0, policy: Policy = POLICY):
    return decide(report, policy, soft_count_before=before, now=NOW, actor="processor@tx-a")


def test_hard_bounce_suppresses_every_kind_for_good() -> None:
    decision = run(bounce("5.1.1", "550 5.1.1 user unknown"))
    assert decision.action is Action.SUPPRESS and decision.entry is not None
    entry = decision.entry
    assert entry.scope == ALL_KINDS and entry.expires is None and entry.source is Source.BOUNCE
    assert entry.added_by == "processor@tx-a" and entry.stream == "news"


@pytest.mark.parametrize("action", ["delayed", "delivered", "relayed", "expanded", None])
def test_only_failed_counts(action: str | None) -> None:
    """RFC 3464 §2.3.3: a delayed DSN with 5.1.1 text (a warning) is not a failure."""
    assert run(bounce("5.1.1", action=action)).action is Action.IGNORE  # type: ignore[arg-type]


def test_policy_block_counts_for_the_pool_only() -> None:
    decision = run(bounce("5.7.1", "554 5.7.1 blocked using zen.spamhaus.org"))
    assert decision.action is Action.COUNT_POOL and decision.pool == "mkt" and decision.entry is None


def test_soft_bounces_suppress_past_the_threshold_with_expiry() -> None:
    report = bounce("5.2.2", "552 5.2.2 over quota")
    assert run(report, before=0).action is Action.COUNT_SOFT
    assert run(report, before=1).action is Action.COUNT_SOFT
    third = run(report, before=2)
    assert third.action is Action.SUPPRESS and third.entry is not None
    assert third.entry.expires == NOW + dt.timedelta(days=30)


def test_unverified_report_never_suppresses() -> None:
    assert run(bounce("5.1.1", verified=False)).action is Action.IGNORE
    forged = Report(kind=ReportKind.COMPLAINT, recipient="victim@example.net", feedback_type=FeedbackType.ABUSE)
    assert run(forged).action is Action.IGNORE


def test_complaints_scope_and_not_spam() -> None:
    decision = run(complaint(FeedbackType.ABUSE, T))
    assert decision.entry is not None and decision.entry.scope == {M, B}  # transactional goes on by default
    assert decision.entry.source is Source.COMPLAINT
    for kind in (FeedbackType.FRAUD, FeedbackType.VIRUS):
        assert run(complaint(kind)).action is Action.SUPPRESS
    for kind in (FeedbackType.NOT_SPAM, FeedbackType.OTHER, FeedbackType.AUTH_FAILURE, None):
        assert run(complaint(kind)).action is Action.IGNORE


def test_policy_from_the_stack() -> None:
    policy = policy_from_config(Suppression(soft_bounce_threshold=5, complaint_streams=[T, M, B],
                                            soft_expiry_days=10))
    assert policy.soft_threshold == 5 and policy.soft_expiry == dt.timedelta(days=10)
    decision = run(complaint(FeedbackType.ABUSE, T), policy=policy)
    assert decision.entry is not None and decision.entry.scope == ALL_KINDS


def test_unsubscribe_scope_is_its_stream_kind() -> None:
    report = Report(kind=ReportKind.UNSUBSCRIBE, recipient="bob@example.net", stream="news", stream_kind=M,
                    message_ref="list-unsubscribe:1", verp_verified=True)
    decision = run(report)
    assert decision.entry is not None and decision.entry.scope == {M}
    assert decision.entry.source is Source.UNSUBSCRIBE
