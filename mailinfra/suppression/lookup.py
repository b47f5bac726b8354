"""The enforcement hosts' local replica of the store: one indexed SQLite file, kept by the change feed.

Why this structure (issue 12: "the lookup must hold at millions of entries ... justify"): a B-tree keyed by
address (a WITHOUT ROWID table, https://sqlite.org/withoutrowid.html) answers a point lookup in a handful of
page reads from the OS page cache (memory-mapped), takes one delta row as one small transaction (so a new
entry is enforceable the moment the feed delivers it, no snapshot rebuild), and needs no extra package or
daemon on the host. A cdb snapshot plus delta would look up as fast but needs a full rebuild to fold the
delta in; Postfix `hash:` needs `postmap` of the whole list for every change. bench/suppression_bench.py
measures it next to `postmap hash:` at 10 M entries.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from mailinfra.model.kinds import StreamKind
from mailinfra.suppression.codec import KIND_BITS, from_epoch, kinds_to_bits, to_epoch
from mailinfra.suppression.model import Entry, Source
from mailinfra.suppression.store import ChangeFeed

_SCHEMA = """
CREATE TABLE IF NOT EXISTS suppressed (
    address TEXT PRIMARY KEY, kinds INTEGER NOT NULL, expires REAL, reason TEXT NOT NULL, since REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS feed (source TEXT PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID;
"""


@dataclass(frozen=True)
class Hit:
    address: str
    reason: str
    since: dt.datetime

    def reply(self) -> str:
        """The RCPT reply. 550 (RFC 5321 §4.2.2: mailbox unavailable, not taken) with 5.7.1 (RFC 3463
        §3.8: "delivery not authorized, message refused"): refusing is our own policy, so claiming the
        mailbox is bad (5.1.1) would be false; the text says why for the sending application."""
        return f"550 5.7.1 <{self.address}>: recipient suppressed ({self.reason} {self.since:%Y-%m-%d})"


class LookupTable:
    """Read side for the RCPT check; `sync` folds in the store's change feed."""

    def __init__(self, path: Path | str, *, mmap_bytes: int = 1 << 30) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(f"PRAGMA mmap_size={int(mmap_bytes)}")
        self._db.executescript(_SCHEMA)

    def lookup(self, address: str, kind: StreamKind, now: dt.datetime) -> Hit | None:
        """The hit refusing mail of `kind` to the (normalised) address at `now`, or None."""
        row = self._db.execute("SELECT kinds, expires, reason, since FROM suppressed WHERE address = ?",
                               (address,)).fetchone()
        if row is None or not row[0] & KIND_BITS[kind] or (row[1] is not None and to_epoch(now) >= row[1]):
            return None
        return Hit(address=address, reason=row[2], since=from_epoch(row[3]))

    def seq(self, source: str = "store") -> int:
        """The last change of `source` folded in (0: none yet)."""
        row = self._db.execute("SELECT seq FROM feed WHERE source = ?", (source,)).fetchone()
        return int(row[0]) if row else 0

    def has_synced(self, source: str = "store") -> bool:
        """Whether a sync of `source` ever completed: before that, "not found" would only mean "not known yet"."""
        return self._db.execute("SELECT 1 FROM feed WHERE source = ?", (source,)).fetchone() is not None

    def sync(self, store: ChangeFeed, *, source: str = "store", batch: int = 10000) -> int:
        """Fold every change of `store` since its last sync in; the number of changes applied.

        `source` names the store when a host follows several (with `store: sqlite` each bounce host keeps
        its own file, e.g. source="tx-a" and source="tx-b"): each has its own cursor."""
        applied = 0
        while True:
            changes = store.changes_since(self.seq(source), batch)
            if not changes:
                # A sync that completed, even of an empty feed: the replica now knows every entry of that
                # store up to this moment (has_synced), kept across restarts with the replica file.
                self._db.execute("INSERT OR IGNORE INTO feed (source, seq) VALUES (?, 0)", (source,))
                return applied
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for change in changes:
                    entry = change.entry
                    if entry is None:
                        self._db.execute("DELETE FROM suppressed WHERE address = ?", (change.address,))
                    else:
                        self._db.execute(
                            "INSERT OR REPLACE INTO suppressed VALUES (?, ?, ?, ?, ?)",
                            (entry.address, kinds_to_bits(entry.scope),
                             to_epoch(entry.expires) if entry.expires else None, label_of(entry),
                             to_epoch(entry.first_seen)))
                self._db.execute("INSERT OR REPLACE INTO feed (source, seq) VALUES (?, ?)", (source, changes[-1].seq))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            applied += len(changes)

    def load(self, rows: list[tuple[str, int, float | None, str, float]]) -> None:
        """Bulk load (address, kind bits, expires, reason, since) rows: the benchmark and a first sync."""
        self._db.execute("BEGIN")
        self._db.executemany("INSERT OR REPLACE INTO suppressed VALUES (?, ?, ?, ?, ?)", rows)
        self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()


def label_of(entry: Entry) -> str:
    """What the reply says: "hard bounce", "soft bounce", "complaint", "unsubscribe", "manual". Never the
    remote reply's text: it is not ours to echo into an SMTP reply (CR/LF, length)."""
    if entry.source is Source.BOUNCE:
        return "soft bounce" if entry.expires is not None else "hard bounce"
    return str(entry.source)
