"""The IMAP reader: where did each probe land in a seed mailbox — INBOX, Junk, or nowhere (yet)?

Folders: INBOX is INBOX everywhere (RFC 3501 §5.1); the spam folder is the one carrying the RFC 6154 `\\Junk`
special-use attribute (Gmail's `[Gmail]/Spam`, Outlook.com's `Junk`, Dovecot's with `special_use = \\Junk`),
else the seed's `junk_folder` name. Probes are found with `SEARCH HEADER X-Mailinfra-Probe ""` — RFC 3501
§6.4.4: an empty string matches every message that has the header. On Gmail (capability X-GM-EXT-1) the
inbox tab is asked with `X-GM-RAW "category:<tab>"` (Gmail IMAP extensions): a probe in Promotions is in
INBOX to IMAP but not where a person looks first.

The arrival delay is INTERNALDATE (when the seed's server accepted the message, RFC 3501 §2.3.3) minus the
probe's Date header (when the sender built it).
"""

from __future__ import annotations

import datetime as dt
import email.utils
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from mailinfra.placement.probes import PROBE_HEADER, ProbeId, ProbeIdError, parse_probe_id

INBOX, SPAM, MISSING = "inbox", "spam", "missing"
FOLDERS = (INBOX, SPAM, MISSING)
GMAIL_TABS = ("primary", "promotions", "social", "updates", "forums")
GMAIL_CAPABILITY = b"X-GM-EXT-1"
JUNK_FLAG = b"\\Junk"  # RFC 6154 §2


@dataclass(frozen=True, slots=True)
class Found:
    """One probe found in a seed mailbox."""

    probe_id: ProbeId
    folder: str  # inbox | spam
    delay_seconds: float | None  # None: no usable Date header
    tab: str | None = None  # Gmail inbox tab, when the server has them


class ImapMailbox(Protocol):
    """The part of imapclient.IMAPClient the reader uses (a real client in production and tests)."""

    def list_folders(self, directory: str = "", pattern: str = "*") -> list[tuple[Any, Any, str]]: ...
    def select_folder(self, folder: str, readonly: bool = False) -> dict[bytes, Any]: ...
    def search(self, criteria: Any = "ALL", charset: str | None = None) -> list[int]: ...
    def fetch(self, messages: Any, data: Any, modifiers: Any = None) -> dict[int, dict[bytes, Any]]: ...
    def has_capability(self, capability: str) -> bool: ...


def junk_folder(client: ImapMailbox, fallback: str) -> str | None:
    """The folder with the `\\Junk` attribute, else `fallback` when it exists, else None."""
    folders = client.list_folders()
    for flags, _delimiter, name in folders:
        if JUNK_FLAG in tuple(flags or ()):
            return str(name)
    names = {str(name) for _flags, _delimiter, name in folders}
    return fallback if fallback in names else None


def find_probes(client: ImapMailbox, *, seed: str, fallback_junk: str) -> list[Found]:
    """Every probe addressed to this seed in INBOX and Junk (a probe in both counts as inbox)."""
    found: dict[ProbeId, Found] = {}
    gmail = client.has_capability(GMAIL_CAPABILITY.decode())
    junk = junk_folder(client, fallback_junk)
    for folder_kind, folder in ((SPAM, junk), (INBOX, "INBOX")):
        if folder is None:
            continue
        client.select_folder(folder, readonly=True)
        uids = client.search(["HEADER", PROBE_HEADER, ""])
        if not uids:
            continue
        tabs = _gmail_tabs(client, uids) if gmail and folder_kind == INBOX else {}
        for uid, data in client.fetch(uids, ["INTERNALDATE", f"BODY.PEEK[HEADER.FIELDS ({PROBE_HEADER} DATE)]"]
                                      ).items():
            probe = _probe_of(data)
            if probe is None or probe[0].seed != seed:
                continue
            probe_id, delay = probe
            found[probe_id] = Found(probe_id, folder_kind, delay, tabs.get(uid))
    return list(found.values())


def _gmail_tabs(client: ImapMailbox, uids: Iterable[int]) -> dict[int, str]:
    wanted = set(uids)
    tabs: dict[int, str] = {}
    for tab in GMAIL_TABS:
        for uid in client.search(["X-GM-RAW", f"category:{tab}"]):
            if uid in wanted:
                tabs.setdefault(uid, tab)
    return tabs


def _probe_of(data: dict[bytes, Any]) -> tuple[ProbeId, float | None] | None:
    header_key = next((k for k in data if k.startswith(b"BODY[HEADER.FIELDS")), None)
    if header_key is None:
        return None
    message = email.message_from_bytes(bytes(data[header_key]))
    try:
        probe_id = parse_probe_id(str(message.get(PROBE_HEADER, "")))
    except ProbeIdError:
        return None  # someone else's header, or a forged one: not a probe of ours
    return probe_id, _delay(data.get(b"INTERNALDATE"), message.get("Date"))


def _delay(internal: Any, date_header: Any) -> float | None:
    if not isinstance(internal, dt.datetime) or not date_header:
        return None
    try:
        sent = email.utils.parsedate_to_datetime(str(date_header))
    except (TypeError, ValueError):
        return None
    if internal.tzinfo is None or sent.tzinfo is None:
        return None
    return max(0.0, (internal - sent).total_seconds())


@dataclass(frozen=True, slots=True)
class Placement:
    """The verdict on one expected probe."""

    probe_id: ProbeId
    folder: str  # inbox | spam | missing
    delay_seconds: float | None
    tab: str | None = None


def judge(expected: Iterable[ProbeId], found: Iterable[Found], *, now: float,
          missing_after_seconds: int) -> list[Placement]:
    """Found probes with their folder; unseen ones `missing` once `missing_after_seconds` have passed since their
    slot, otherwise not judged yet (left out)."""
    by_id = {f.probe_id: f for f in found}
    verdicts = []
    for probe_id in expected:
        hit = by_id.get(probe_id)
        if hit is not None:
            verdicts.append(Placement(probe_id, hit.folder, hit.delay_seconds, hit.tab))
        elif now - probe_id.slot >= missing_after_seconds:
            verdicts.append(Placement(probe_id, MISSING, None))
    return verdicts
