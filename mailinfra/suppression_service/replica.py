"""The host's local copy of the suppression entries, and the answer Postfix gets for a suppressed recipient.

One SQLite file (WAL: the poller writes while the server reads), one row per (address, feed): with two
bounce hosts each serving its own store, an address is suppressed when either says so. A lookup is one
primary-key read.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# RFC 3463 §3.8, X.7.1 "Delivery not authorized, message refused": "the sender is not authorized to send to
# the destination. This can be the result of per-host or per-recipient filtering" — exactly a per-recipient
# refusal decided on our side. Not X.1.1 (the mailbox may well exist: an app that treats 5.1.1 as "address
# invalid" would lose a complained-about but valid address for good) nor X.2.x (says the mailbox is
# unavailable at the receiver, which nobody asked). Permanent (5): retrying cannot change the answer until
# someone removes the entry.
SUPPRESSED_REPLY = "550 5.7.1 recipient suppressed"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    address TEXT NOT NULL, feed TEXT NOT NULL, scope TEXT NOT NULL, answer TEXT NOT NULL, expires TEXT,
    PRIMARY KEY (address, feed)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS feeds (feed TEXT PRIMARY KEY, last INTEGER NOT NULL) WITHOUT ROWID;
"""


@dataclass(frozen=True, slots=True)
class Change:
    """One address as a feed now has it: its entry, or None when it was removed."""

    seq: int
    address: str
    entry: Mapping[str, Any] | None


def answer_text(entry: Mapping[str, Any]) -> str:
    """`550 5.7.1 recipient suppressed (hard bounce 2026-12-01)`: why and since when, for the app's logs."""
    source = str(entry.get("source") or "manual")
    cls = str(entry.get("cls") or "")
    why = {"bounce": "soft bounces" if cls == "quota" else "hard bounce", "complaint": "complaint",
           "unsubscribe": "unsubscribed", "manual": "listed"}.get(source, source)
    since = str(entry.get("first_seen") or "")[:10]
    return f"{SUPPRESSED_REPLY} ({why} {since})".replace("  ", " ").replace(" )", ")")


def _utc(value: object) -> str | None:
    """ISO 8601 in UTC, so stored expiries compare as strings."""
    if not value:
        return None
    moment = dt.datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).isoformat()


class Replica:
    def __init__(self, path: Path | str) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)

    def last(self, feed: str) -> int:
        row = self.db.execute("SELECT last FROM feeds WHERE feed = ?", (feed,)).fetchone()
        return int(row[0]) if row else 0

    def apply(self, feed: str, changes: Iterable[Change], last: int) -> int:
        """Apply a batch of one feed's changes and remember where it ended, in one transaction."""
        count = 0
        with self.db:
            self.db.execute("BEGIN")
            for change in changes:
                count += 1
                if change.entry is None:
                    self.db.execute("DELETE FROM entries WHERE address = ? AND feed = ?",
                                    (change.address.lower(), feed))
                    continue
                scope = ",".join(sorted(str(k) for k in change.entry.get("scope") or ()))
                self.db.execute(
                    "INSERT OR REPLACE INTO entries (address, feed, scope, answer, expires) VALUES (?, ?, ?, ?, ?)",
                    (change.address.lower(), feed, scope, answer_text(change.entry),
                     _utc(change.entry.get("expires"))))
            self.db.execute("INSERT OR REPLACE INTO feeds (feed, last) VALUES (?, ?)", (feed, last))
        return count

    def lookup(self, address: str, kind: str, now: dt.datetime | None = None) -> str | None:
        """The access(5) action refusing `address` for a stream of `kind`, or None when it may be mailed."""
        moment = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).isoformat()
        for scope, answer, expires in self.db.execute(
                "SELECT scope, answer, expires FROM entries WHERE address = ?", (address.lower(),)):
            if kind in scope.split(",") and (expires is None or expires > moment):
                return str(answer)
        return None

    def count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM entries").fetchone()[0])
