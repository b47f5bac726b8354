"""The suppression store's contract: what the processor, the enforcement service and the CLI call.

Two implementations: `SqliteStore` (sqlite_store.py, the embedded default on the bounce host and in the
lab) and `DynamoStore` (dynamodb_store.py, the table the components provision). Both keep one entry per
address, soft-failure counters with their window, per-pool counters, the keys of reports already applied
(so a processor restart or an SQS redelivery never counts a report twice) and an audit log.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from mailinfra.model.kinds import StreamKind
from mailinfra.suppression.model import Decision, Entry


@dataclass(frozen=True)
class AuditEvent:
    """One change of the store: who (actor) did what (add/update/remove/expire) to which address, why."""

    at: dt.datetime
    actor: str
    action: str  # "add" | "update" | "remove"
    address: str
    detail: str


@dataclass(frozen=True)
class Change:
    """One row of the change feed the enforcement hosts poll: the entry now, or None when removed."""

    seq: int
    address: str
    entry: Entry | None


@dataclass(frozen=True)
class Applied:
    """What `apply` did: `duplicate` when the report's key had been applied before (nothing changed)."""

    decision: Decision
    duplicate: bool
    soft_count: int = 0  # soft failures of this address inside the window, this one included


class ChangeFeed(Protocol):
    """All a replica reads: a store, or a bounce host's store served over the network."""

    def changes_since(self, seq: int, limit: int = 10000) -> list[Change]: ...


class SuppressionStore(Protocol):
    def get(self, address: str) -> Entry | None:
        """The entry of a (normalised) address, expired or not."""

    def check(self, address: str, kind: StreamKind, now: dt.datetime) -> Entry | None:
        """The entry that refuses mail of `kind` to `address` at `now`, or None (expired entries don't)."""

    def put(self, entry: Entry, *, actor: str, detail: str = "") -> None:
        """Add or merge (Entry.merged) one entry; audited under `actor`."""

    def remove(self, address: str, *, actor: str, detail: str = "") -> bool:
        """Remove an address; True if it was there. Audited; the change feed carries a tombstone."""

    def entries(self) -> Iterator[Entry]:
        """Every entry, ordered by address."""

    def soft_count(self, address: str, since: dt.datetime) -> int:
        """Soft failures recorded for `address` at or after `since`."""

    def apply(self, key: str, decision: Decision, *, now: dt.datetime, actor: str,
              window: dt.timedelta) -> Applied:
        """Apply one decision once: atomically mark `key` (Report.dedupe_key) applied and do what the
        decision says (put its entry, record a soft failure, count for the pool). A key seen before
        changes nothing and returns duplicate=True."""

    def changes_since(self, seq: int, limit: int = 10000) -> list[Change]:
        """Changes with a sequence number above `seq`, oldest first (the enforcement hosts' delta feed)."""

    def pool_counts(self, since: dt.datetime) -> dict[tuple[str, str], int]:
        """(pool, class) -> failures counted for monitoring since `since` (policy/reputation blocks)."""

    def audit_log(self, address: str | None = None) -> list[AuditEvent]:
        """The audit events, oldest first; only those of `address` when given."""

    def batch(self) -> AbstractContextManager[None]:
        """Group commit: the applies inside are committed together (SQLite) or one by one (DynamoDB)."""

    def close(self) -> None: ...
