"""The embedded suppression store: one SQLite file on the bounce host (and in the lab).

WAL journal (https://sqlite.org/wal.html): readers (the CLI, the change feed the enforcement hosts poll)
never block the processor's writes, and a crash mid-transaction loses nothing committed. Every change of an
entry appends one row to `audit` (who, what, why) in the same transaction; its id is the change feed's sequence
number (`changes_since`), so the feed and the log can never disagree.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from mailinfra.model.kinds import StreamKind
from mailinfra.suppression.codec import KIND_BITS, bits_to_kinds, from_epoch, kinds_to_bits, to_epoch
from mailinfra.suppression.model import Action, BounceClass, Decision, Entry, Source
from mailinfra.suppression.store import Applied, AuditEvent, Change

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    address TEXT PRIMARY KEY, kinds INTEGER NOT NULL, reason TEXT NOT NULL, cls TEXT, source TEXT NOT NULL,
    first_seen REAL NOT NULL, last_seen REAL NOT NULL, expires REAL, added_by TEXT NOT NULL, stream TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS soft (address TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS soft_address ON soft (address, at);
CREATE TABLE IF NOT EXISTS pool_counts (
    pool TEXT NOT NULL, cls TEXT NOT NULL, day TEXT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (pool, cls, day)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS applied (key TEXT PRIMARY KEY, at REAL NOT NULL) WITHOUT ROWID;
-- No AUTOINCREMENT (it writes sqlite_sequence on every insert): audit rows are never deleted, so the
-- next id is always max(id) + 1 and the feed's sequence only grows (sqlite.org/autoinc.html).
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY, at REAL NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
    address TEXT NOT NULL, detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_address ON audit (address);
"""


class SqliteStore:
    """SuppressionStore on one SQLite file (created with its directory if missing)."""

    def __init__(self, path: Path | str, *, timeout_seconds: float = 10.0) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), timeout=timeout_seconds, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a committed transaction survives a process crash; only a power loss may roll
        # back the last ones (sqlite.org/pragma.html#pragma_synchronous). The processor's LMTP reply comes
        # after the commit, so a lost one is re-sent by Postfix and deduplicated.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    # ------------------------------------------------------------ reads

    def get(self, address: str) -> Entry | None:
        row = self._db.execute("SELECT * FROM entries WHERE address = ?", (address,)).fetchone()
        return _entry(row) if row else None

    def check(self, address: str, kind: StreamKind, now: dt.datetime) -> Entry | None:
        entry = self.get(address)
        return entry if entry is not None and entry.covers(kind, now) else None

    def entries(self) -> Iterator[Entry]:
        for row in self._db.execute("SELECT * FROM entries ORDER BY address"):
            yield _entry(row)

    def soft_count(self, address: str, since: dt.datetime) -> int:
        row = self._db.execute("SELECT count(*) FROM soft WHERE address = ? AND at >= ?",
                               (address, to_epoch(since))).fetchone()
        return int(row[0])

    def changes_since(self, seq: int, limit: int = 10000) -> list[Change]:
        rows = self._db.execute(
            "SELECT c.id, c.address, e.* FROM audit c LEFT JOIN entries e ON e.address = c.address "
            "WHERE c.id > ? ORDER BY c.id LIMIT ?", (seq, limit)).fetchall()
        return [Change(seq=row[0], address=row[1], entry=_entry(row[2:]) if row[2] is not None else None)
                for row in rows]

    def pool_counts(self, since: dt.datetime) -> dict[tuple[str, str], int]:
        rows = self._db.execute("SELECT pool, cls, sum(n) FROM pool_counts WHERE day >= ? GROUP BY pool, cls",
                                (since.date().isoformat(),))
        return {(pool, cls): int(n) for pool, cls, n in rows}

    def audit_log(self, address: str | None = None) -> list[AuditEvent]:
        query = "SELECT at, actor, action, address, detail FROM audit"
        rows = (self._db.execute(query + " WHERE address = ? ORDER BY id", (address,)) if address
                else self._db.execute(query + " ORDER BY id"))
        return [AuditEvent(from_epoch(at), actor, action, addr, detail) for at, actor, action, addr, detail in rows]

    # ------------------------------------------------------------ writes

    def put(self, entry: Entry, *, actor: str, detail: str = "") -> None:
        with _transaction(self._db):
            self._put(entry, actor, detail, to_epoch(entry.last_seen))

    def remove(self, address: str, *, actor: str, detail: str = "") -> bool:
        with _transaction(self._db):
            gone = self._db.execute("DELETE FROM entries WHERE address = ?", (address,)).rowcount > 0
            if gone:
                self._db.execute("DELETE FROM soft WHERE address = ?", (address,))
                self._audit(actor, "remove", address, detail, dt.datetime.now(dt.UTC).timestamp())
        return gone

    def apply(self, key: str, decision: Decision, *, now: dt.datetime, actor: str,
              window: dt.timedelta) -> Applied:
        at = to_epoch(now)
        if decision.action is Action.IGNORE:
            # Nothing to apply, so nothing to count twice: no transaction (forged and unrelated mail is
            # most of what a bounce host receives on a bad day).
            return Applied(decision, duplicate=False)
        with _transaction(self._db):
            fresh = self._db.execute("INSERT OR IGNORE INTO applied (key, at) VALUES (?, ?)", (key, at)).rowcount
            if not fresh:
                return Applied(decision, duplicate=True)
            soft = 0
            if decision.action is Action.COUNT_SOFT or (decision.action is Action.SUPPRESS and decision.entry
                                                        and decision.entry.expires is not None):
                address = decision.address or (decision.entry.address if decision.entry else "")
                if address:
                    self._db.execute("INSERT INTO soft (address, at) VALUES (?, ?)", (address, at))
                    # Counters outside the window are history: keep the table the size of the window.
                    self._db.execute("DELETE FROM soft WHERE address = ? AND at < ?",
                                     (address, at - window.total_seconds()))
                    soft = self.soft_count(address, now - window)
            if decision.action is Action.SUPPRESS and decision.entry is not None:
                self._put(decision.entry, actor, decision.why, at)
            if decision.action is Action.COUNT_POOL:
                self._db.execute(
                    "INSERT INTO pool_counts (pool, cls, day, n) VALUES (?, ?, ?, 1) "
                    "ON CONFLICT (pool, cls, day) DO UPDATE SET n = n + 1",
                    (decision.pool or "-", str(decision.cls or BounceClass.OTHER), now.date().isoformat()))
        return Applied(decision, duplicate=False, soft_count=soft)

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Group commit: every write inside is one transaction (all or nothing). A commit is most of the
        cost of applying a report (WAL frame writes); a processor that applies what is queued in one
        batch, and answers each LMTP transaction after the batch commits, loses nothing on a crash."""
        with _transaction(self._db):
            yield

    def record_soft(self, address: str, now: dt.datetime) -> None:
        """One soft failure of `address` (the pipeline calls apply; this is for imports and tests)."""
        self._db.execute("INSERT INTO soft (address, at) VALUES (?, ?)", (address, to_epoch(now)))

    def close(self) -> None:
        self._db.close()

    # ------------------------------------------------------------ internals

    def _put(self, entry: Entry, actor: str, detail: str, at: float) -> None:
        old = self.get(entry.address)
        merged = old.merged(entry) if old is not None else entry
        self._db.execute(
            "INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (merged.address, kinds_to_bits(merged.scope), merged.reason, str(merged.cls) if merged.cls else None,
             str(merged.source), to_epoch(merged.first_seen), to_epoch(merged.last_seen),
             to_epoch(merged.expires) if merged.expires else None, merged.added_by, merged.stream))
        scope = "|".join(sorted(merged.scope))
        self._audit(actor, "update" if old else "add", entry.address,
                    f"{merged.source} [{scope}] {merged.reason}" + (f"; {detail}" if detail else ""), at)

    def _audit(self, actor: str, action: str, address: str, detail: str, at: float) -> None:
        self._db.execute("INSERT INTO audit (at, actor, action, address, detail) VALUES (?, ?, ?, ?, ?)",
                         (at, actor, action, address, detail))


def _entry(row: tuple[object, ...] | sqlite3.Row) -> Entry:
    address, kinds, reason, cls, source, first, last, expires, added_by, stream = tuple(row)
    return Entry(address=str(address), scope=bits_to_kinds(int(str(kinds))), reason=str(reason),
                 cls=BounceClass(str(cls)) if cls else None, source=Source(str(source)),
                 first_seen=from_epoch(float(str(first))), last_seen=from_epoch(float(str(last))),
                 expires=from_epoch(float(str(expires))) if expires is not None else None,
                 added_by=str(added_by), stream=str(stream) if stream is not None else None)


class _transaction:  # noqa: N801 -- used as a context manager, reads as a statement
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error): one writer at a time, no lost updates. Inside a
    batch (SqliteStore.batch) it is part of the batch's one transaction."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.nested = db.in_transaction

    def __enter__(self) -> None:
        if not self.nested:
            self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, *_: object) -> None:
        if not self.nested:
            self.db.execute("ROLLBACK" if kind else "COMMIT")


__all__ = ["KIND_BITS", "SqliteStore"]
