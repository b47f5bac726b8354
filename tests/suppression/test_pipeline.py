"""The processor's call: a message in, the store changed as the policy says — once, and never by a forgery."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from mailinfra.model.schema import StreamKind
from mailinfra.suppression.lookup import LookupTable
from mailinfra.suppression.model import Action, Policy
from mailinfra.suppression.pipeline import process_message, process_messages
from mailinfra.suppression.sqlite_store import SqliteStore
from mailinfra.suppression.store import SuppressionStore
from tests.suppression import samples as s

SECRET = s.new_secret()
CTX = s.context(SECRET)
T, M = StreamKind.TRANSACTIONAL, StreamKind.MARKETING


def process(store: SuppressionStore, raw: bytes, envelope: str | None, now: dt.datetime = s.NOW):
    return process_message(raw, envelope_recipient=envelope, context=CTX, policy=Policy(), store=store, now=now,
                           actor="processor@tx-a")


def test_hard_bounce_suppresses_and_a_redelivery_changes_nothing(store: SuppressionStore) -> None:
    """GIVEN a DSN for a 5.1.1 WHEN it is processed twice (a restart before the LMTP reply) THEN one entry,
    one change, one audit line."""
    rp = s.return_path(SECRET, "bob@example.net")
    raw = s.postfix_dsn(to=rp, recipient="bob@example.net")
    [first] = process(store, raw, rp)
    [again] = process(store, raw, rp)
    assert first.decision.action is Action.SUPPRESS and not first.duplicate and again.duplicate
    assert store.check("bob@example.net", T, s.NOW) is not None
    assert len(store.changes_since(0)) == 1 and len(store.audit_log()) == 1


def test_forged_reports_change_nothing(store: SuppressionStore) -> None:
    """A forged DSN, a forged ARF and the RFC 5965 example (not ours): the store stays empty."""
    forged_rp = "b-aaaaaaaaaaaaaaaaaaaaaaa-victim=example.net@bounce.example.com"
    process(store, s.postfix_dsn(to=forged_rp, recipient="victim@example.net"), forged_rp)
    process(store, s.comcast_scrubbed(s.new_secret(), "victim@comcast.net"), s.FBL)
    process(store, s.arf(mail_from="somespammer@example.net", rcpt_to="victim@example.com"), s.FBL)
    assert list(store.entries()) == [] and store.changes_since(0) == []


def test_policy_block_suppresses_nobody(store: SuppressionStore) -> None:
    rp = s.return_path(SECRET, "bob@example.net")
    raw = s.postfix_dsn(to=rp, recipient="bob@example.net", status="5.7.1",
                        diagnostic="smtp; 554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using "
                                   "zen.spamhaus.org")
    [applied] = process(store, raw, rp)
    assert applied.decision.action is Action.COUNT_POOL and list(store.entries()) == []
    assert store.pool_counts(s.NOW - dt.timedelta(days=1)) == {("mkt", "reputation"): 1}


def test_soft_bounces_suppress_at_the_threshold(store: SuppressionStore) -> None:
    rp = s.return_path(SECRET, "bob@example.net")
    actions = []
    for n in range(3):
        raw = s.postfix_dsn(to=rp, recipient="bob@example.net", status="5.2.2",
                            diagnostic="smtp; 552 5.2.2 mailbox full", message_id=f"<full-{n}@mta1>")
        [applied] = process(store, raw, rp, now=s.NOW + dt.timedelta(hours=n))
        actions.append(applied.decision.action)
    assert actions == [Action.COUNT_SOFT, Action.COUNT_SOFT, Action.SUPPRESS]
    entry = store.get("bob@example.net")
    assert entry is not None and entry.expires is not None


def test_complaint_then_enforcement_via_the_replica(store: SuppressionStore, tmp_path: Path) -> None:
    """A Comcast-scrubbed complaint reaches a host's replica: marketing refused, transactional still goes."""
    process(store, s.comcast_scrubbed(SECRET, "gina@comcast.net"), s.FBL)
    replica = LookupTable(tmp_path / "replica.db")
    assert replica.sync(store) == 1
    hit = replica.lookup("gina@comcast.net", M, s.NOW)
    assert hit is not None and replica.lookup("gina@comcast.net", T, s.NOW) is None
    assert hit.reply() == f"550 5.7.1 <gina@comcast.net>: recipient suppressed (complaint {s.NOW:%Y-%m-%d})"
    store.remove("gina@comcast.net", actor="cli:alice")
    assert replica.sync(store) == 1 and replica.lookup("gina@comcast.net", M, s.NOW) is None
    assert replica.sync(store) == 0


def test_group_commit_is_all_or_nothing_and_still_once(store: SuppressionStore) -> None:
    """A batch (the processor's group commit) applies a report given twice once; a crash inside the batch
    leaves the store as before it, so Postfix's re-delivery of the whole batch counts each report once."""
    rp = s.return_path(SECRET, "bob@example.net")
    raw = s.postfix_dsn(to=rp, recipient="bob@example.net")
    [[first], [again]] = process_messages([(raw, rp), (raw, rp)], context=CTX, policy=Policy(), store=store,
                                          now=s.NOW, actor="processor@tx-a")
    assert not first.duplicate and again.duplicate and len(store.audit_log()) == 1
    if isinstance(store, SqliteStore):
        other = s.return_path(SECRET, "carol@example.org")
        with pytest.raises(RuntimeError), store.batch():
            process(store, s.postfix_dsn(to=other, recipient="carol@example.org", message_id="<c@x>"), other)
            raise RuntimeError("killed mid-batch")
        assert store.get("carol@example.org") is None
        process(store, s.postfix_dsn(to=other, recipient="carol@example.org", message_id="<c@x>"), other)
        assert store.get("carol@example.org") is not None
