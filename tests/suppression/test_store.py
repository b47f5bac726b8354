"""Both stores (SQLite file, DynamoDB on moto) keep the same contract: entries, merges, dedupe, feed, audit."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

from mailinfra.model.schema import StreamKind
from mailinfra.suppression.model import ALL_KINDS, Action, BounceClass, Decision, Entry, Source
from mailinfra.suppression.sqlite_store import SqliteStore
from mailinfra.suppression.store import SuppressionStore
from tests.suppression.samples import NOW

T, M, B = StreamKind.TRANSACTIONAL, StreamKind.MARKETING, StreamKind.BULK
WEEK = dt.timedelta(days=7)


def entry(address: str = "bob@example.net", scope=ALL_KINDS, expires: dt.datetime | None = None,
          source: Source = Source.BOUNCE) -> Entry:
    return Entry(address=address, scope=frozenset(scope), reason="5.1.1 bad-mailbox", cls=BounceClass.BAD_MAILBOX,
                 source=source, first_seen=NOW, last_seen=NOW, expires=expires, added_by="processor@tx-a",
                 stream="news")


def test_put_get_check_scope_and_expiry(store: SuppressionStore) -> None:
    store.put(entry("c@example.net", scope={M, B}, source=Source.COMPLAINT), actor="t")
    store.put(entry("s@example.net", expires=NOW + dt.timedelta(days=30)), actor="t")
    assert store.check("c@example.net", M, NOW) is not None
    assert store.check("c@example.net", T, NOW) is None  # a complaint leaves transactional mail alone
    assert store.check("s@example.net", T, NOW + dt.timedelta(days=29)) is not None
    assert store.check("s@example.net", T, NOW + dt.timedelta(days=30)) is None  # lapsed, even before TTL
    assert store.check("nobody@example.net", T, NOW) is None
    assert [e.address for e in store.entries()] == ["c@example.net", "s@example.net"]
    got = store.get("c@example.net")
    assert got is not None and got.scope == {M, B} and got.source is Source.COMPLAINT and got.stream == "news"


def test_merge_never_shortens_an_entry(store: SuppressionStore) -> None:
    """Scopes add up; a hard bounce makes a soft entry permanent and a later soft one does not shorten it."""
    store.put(entry(scope={M}, expires=NOW + dt.timedelta(days=30)), actor="t")
    store.put(entry(scope={B}), actor="t")
    merged = store.get("bob@example.net")
    assert merged is not None and merged.scope == {M, B} and merged.expires is None
    store.put(entry(scope={T}, expires=NOW + dt.timedelta(days=1)), actor="t")
    again = store.get("bob@example.net")
    assert again is not None and again.expires is None and again.scope == ALL_KINDS


def test_apply_once_per_key(store: SuppressionStore) -> None:
    """The same report applied twice (processor restart, SQS redelivery) changes the store once."""
    decision = Decision(Action.SUPPRESS, "hard bounce", address="bob@example.net", entry=entry())
    first = store.apply("bounce:<r1>:bob@example.net", decision, now=NOW, actor="p", window=WEEK)
    second = store.apply("bounce:<r1>:bob@example.net", decision, now=NOW, actor="p", window=WEEK)
    assert (first.duplicate, second.duplicate) == (False, True)
    assert len(store.changes_since(0)) == 1 and len(store.audit_log("bob@example.net")) == 1


def test_soft_counts_inside_the_window(store: SuppressionStore) -> None:
    soft = Decision(Action.COUNT_SOFT, "soft", address="bob@example.net")
    for day in (0, 1, 9):
        store.apply(f"k{day}", soft, now=NOW + dt.timedelta(days=day), actor="p", window=WEEK)
    assert store.soft_count("bob@example.net", NOW + dt.timedelta(days=9) - WEEK) == 1
    assert store.soft_count("bob@example.net", NOW - WEEK) >= 1
    assert store.get("bob@example.net") is None  # counting alone suppresses nobody


def test_pool_counts(store: SuppressionStore) -> None:
    block = Decision(Action.COUNT_POOL, "block", address="bob@example.net", cls=BounceClass.REPUTATION, pool="mkt")
    store.apply("a", block, now=NOW, actor="p", window=WEEK)
    store.apply("b", block, now=NOW, actor="p", window=WEEK)
    assert store.pool_counts(NOW - dt.timedelta(days=1)) == {("mkt", "reputation"): 2}
    assert store.get("bob@example.net") is None


def test_remove_feeds_a_tombstone_and_is_audited(store: SuppressionStore) -> None:
    store.put(entry(), actor="processor@tx-a")
    assert store.remove("bob@example.net", actor="cli:alice", detail="confirmed by phone")
    assert not store.remove("bob@example.net", actor="cli:alice")
    assert store.get("bob@example.net") is None and list(store.entries()) == []
    changes = store.changes_since(0)
    assert changes[-1].entry is None and changes[-1].address == "bob@example.net"
    assert [c.seq for c in changes] == sorted(c.seq for c in changes)
    assert store.changes_since(changes[-1].seq) == []
    log = store.audit_log("bob@example.net")
    assert [(e.actor, e.action) for e in log] == [("processor@tx-a", "add"), ("cli:alice", "remove")]
    assert "confirmed by phone" in log[-1].detail


def test_sqlite_is_wal_and_survives_reopen(tmp_path: Path) -> None:
    """WAL (readers never block the processor); a committed entry is there for the next process."""
    path = tmp_path / "deep" / "dir" / "s.db"
    store = SqliteStore(path)
    store.put(entry(), actor="t")
    store.close()
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert SqliteStore(path).get("bob@example.net") is not None
