"""The values of bounce and complaint processing: reports in, entries and decisions out (pure).

A `Report` is what one DSN, ARF report, SES event, PowerMTA accounting record or unsubscribe says about
one recipient. `decide` (policy.py) turns it into a `Decision`; a store applies the decision and keeps
`Entry` rows, one per address.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from enum import StrEnum

from mailinfra.model.kinds import StreamKind

ALL_KINDS: frozenset[StreamKind] = frozenset(StreamKind)


class ReportKind(StrEnum):
    BOUNCE = "bounce"  # a DSN (RFC 3464), a non-RFC bounce, an SES bounce event or a PowerMTA b/rb record
    COMPLAINT = "complaint"  # an ARF report (RFC 5965), an SES complaint event or a PowerMTA f record
    UNSUBSCRIBE = "unsubscribe"  # RFC 8058 one-click or any list-unsubscribe the sender records
    MANUAL = "manual"  # added by a person or the sender's own sources (CLI, import)


class Source(StrEnum):
    """Where an entry came from (kept on the entry and in the audit log)."""

    BOUNCE = "bounce"
    COMPLAINT = "complaint"
    UNSUBSCRIBE = "unsubscribe"
    MANUAL = "manual"


class BounceClass(StrEnum):
    """Bounce classes, named after KumoMTA's bounce classifier and PowerMTA's bounceCat."""

    BAD_MAILBOX = "bad-mailbox"  # X.1.1, X.1.2 (no such user) ... address-level: suppress
    BAD_DOMAIN = "bad-domain"  # X.1.2 / X.1.10 null MX (RFC 7505): the domain takes no mail
    INACTIVE_MAILBOX = "inactive-mailbox"  # X.2.1 disabled mailbox
    QUOTA = "quota"  # X.2.2 mailbox full: soft, suppress after N in a window
    POLICY = "policy"  # X.7.x policy blocks: about us (IP, content, auth), never the recipient
    SPAM_RELATED = "spam-related"  # content judged spam: about us
    REPUTATION = "reputation"  # IP/domain reputation, blocklists: about the pool
    NO_ANSWER = "no-answer"  # timeouts, DNS failures at our side, connection refused: transient
    ROUTING = "routing"  # X.4.x routing/relay errors (loops, relaying denied): not about the mailbox
    MESSAGE = "message"  # X.3.x/X.6.x message too large, bad content format: about this message
    OTHER = "other"  # nothing matched: never suppress on it


class FeedbackType(StrEnum):
    """RFC 5965 §7.3 Feedback-Type values (IANA registry)."""

    ABUSE = "abuse"
    FRAUD = "fraud"
    VIRUS = "virus"
    OTHER = "other"
    NOT_SPAM = "not-spam"
    AUTH_FAILURE = "auth-failure"  # RFC 6591


@dataclass(frozen=True)
class Report:
    """What one report says about one recipient.

    `verp_verified` is True only when the recipient and stream come from one of our own signed tokens
    (a VERP return path or our X-Mailinfra-Id header) or from an authenticated channel (SES events
    through our own SQS queue, our own PowerMTA's accounting file, the CLI). A report with
    `verp_verified=False` never suppresses anyone: anybody can send us a DSN or ARF naming anybody.
    """

    kind: ReportKind
    recipient: str  # normalised (normalise_address): the suppression key
    stream: str | None = None  # the stack's stream key, from the token
    stream_kind: StreamKind | None = None
    pool: str | None = None
    ip: str | None = None
    action: str | None = None  # RFC 3464 Action: failed | delayed | delivered | relayed | expanded
    status: str | None = None  # RFC 3463 enhanced status code, e.g. "5.1.1"
    diagnostic: str = ""  # the remote MTA's reply text (Diagnostic-Code), or the bounce's text
    feedback_type: FeedbackType | None = None
    reporter: str = ""  # the reporting MTA or feedback provider (Reporting-MTA, User-Agent, SES, ...)
    message_ref: str = ""  # Message-ID (or queue id) of the report; the idempotency key with recipient
    verp_verified: bool = False
    remote_mta: str = ""  # RFC 3464 Remote-MTA
    arrival: str = ""  # Arrival-Date of the original as the report gives it (RFC 5322 date), if given

    @property
    def dedupe_key(self) -> str:
        """The same report processed twice (a processor restart, an SQS redelivery) counts once."""
        return f"{self.kind}:{self.message_ref}:{self.recipient}"


@dataclass(frozen=True)
class Entry:
    """One suppressed address. `expires` None = until removed; `scope` = the stream kinds it stops."""

    address: str
    scope: frozenset[StreamKind]
    reason: str  # human text: "5.1.1 user unknown (gmail.com)", "abuse complaint (Yahoo)", ...
    cls: BounceClass | None
    source: Source
    first_seen: dt.datetime
    last_seen: dt.datetime
    expires: dt.datetime | None = None
    added_by: str = ""  # "processor@tx-a", "cli:alice", "import:crm.csv", "ses"
    stream: str | None = None  # the stream whose report made it (informational)

    def covers(self, kind: StreamKind, now: dt.datetime) -> bool:
        """Does this entry refuse mail of `kind` at `now`?"""
        return kind in self.scope and (self.expires is None or now < self.expires)

    def merged(self, newer: Entry) -> Entry:
        """An address seen again: scopes add up, the first sighting stays, the later expiry wins
        (a permanent entry is never shortened by a later soft one)."""
        permanent = self.expires is None or newer.expires is None
        expires = None if permanent else max(self.expires, newer.expires)  # type: ignore[type-var]
        return replace(
            newer,
            scope=self.scope | newer.scope,
            first_seen=min(self.first_seen, newer.first_seen),
            last_seen=max(self.last_seen, newer.last_seen),
            expires=expires,
        )


class Action(StrEnum):
    SUPPRESS = "suppress"  # add (or extend) the entry
    COUNT_SOFT = "count-soft"  # a soft failure under the threshold: counted for this address
    COUNT_POOL = "count-pool"  # about us (policy/reputation): counted per pool for monitoring only
    IGNORE = "ignore"  # unverified, not a failure, not-spam, ...


@dataclass(frozen=True)
class Decision:
    action: Action
    why: str  # one line for logs and the lab report
    address: str = ""  # the report's recipient (normalised)
    entry: Entry | None = None  # set for SUPPRESS
    cls: BounceClass | None = None
    pool: str | None = None


@dataclass(frozen=True)
class Policy:
    """`bounces.suppression` of the stack, as the pure core needs it (see schema.Suppression)."""

    soft_threshold: int = 3
    soft_window: dt.timedelta = dt.timedelta(days=7)
    soft_expiry: dt.timedelta = dt.timedelta(days=30)
    complaint_kinds: frozenset[StreamKind] = frozenset({StreamKind.MARKETING, StreamKind.BULK})
    unsubscribe_kinds: frozenset[StreamKind] | None = None  # None: the kind of the stream it came from
    token_max_age: dt.timedelta = dt.timedelta(days=60)
