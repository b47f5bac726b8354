"""The reader's Gmail path, against Gmail's IMAP behaviour as Google documents it (Gmail cannot be reached from
here, so this is a recorded-shape stand-in, not a server): `[Gmail]/Spam` carries the RFC 6154 `\\Junk` attribute
in LIST, the server announces X-GM-EXT-1, and `SEARCH X-GM-RAW "category:promotions"` takes Gmail's web search
syntax (developers.google.com/gmail/imap/imap-extensions, "X-GM-RAW"). The same reader code runs against the real
Dovecot in test_reader_dovecot.py."""

from __future__ import annotations

import datetime as dt
from typing import Any

from mailinfra.placement.probes import PROBE_HEADER, ProbeId
from mailinfra.placement.reader import find_probes

UTC = dt.UTC


class RecordedGmail:
    def __init__(self) -> None:
        self.selected = ""
        sent = "Sun, 20 Dec 2026 10:00:02 +0000"
        self.folders = {
            "INBOX": {1: ("tx.gmail-1.1797760800", sent, 14), 2: ("bulk.gmail-1.1797760800", sent, 40)},
            "[Gmail]/Spam": {7: ("mkt-cold.gmail-1.1797760800", sent, 9), 8: ("tx.other-seed.1797760800", sent, 3)},
        }
        self.categories = {"primary": [1], "promotions": [2]}

    def has_capability(self, capability: str) -> bool:
        return capability == "X-GM-EXT-1"

    def list_folders(self, directory: str = "", pattern: str = "*") -> list[tuple[Any, Any, str]]:
        return [((b"\\HasNoChildren",), b"/", "INBOX"), ((b"\\HasChildren", b"\\Noselect"), b"/", "[Gmail]"),
                ((b"\\HasNoChildren", b"\\All"), b"/", "[Gmail]/All Mail"),
                ((b"\\HasNoChildren", b"\\Junk"), b"/", "[Gmail]/Spam")]

    def select_folder(self, folder: str, readonly: bool = False) -> dict[bytes, Any]:
        assert readonly, "the reader must never change a seed's mailbox state"
        self.selected = folder
        return {}

    def search(self, criteria: Any = "ALL", charset: str | None = None) -> list[int]:
        if criteria[:1] == ["X-GM-RAW"]:
            return self.categories.get(criteria[1].removeprefix("category:"), []) if self.selected == "INBOX" else []
        assert criteria == ["HEADER", PROBE_HEADER, ""]
        return sorted(self.folders[self.selected])

    def fetch(self, messages: Any, data: Any, modifiers: Any = None) -> dict[int, dict[bytes, Any]]:
        out = {}
        for uid in messages:
            probe, date, delay = self.folders[self.selected][uid]
            header = f"{PROBE_HEADER}: {probe}\r\nDate: {date}\r\n\r\n".encode()
            arrived = dt.datetime(2026, 12, 20, 10, 0, 2, tzinfo=UTC) + dt.timedelta(seconds=delay)
            out[uid] = {b"INTERNALDATE": arrived, f"BODY[HEADER.FIELDS ({PROBE_HEADER.upper()} DATE)]".encode(): header}
        return out


def test_gmail_spam_folder_tabs_and_delay() -> None:
    found = {str(f.probe_id): f for f in find_probes(RecordedGmail(), seed="gmail-1", fallback_junk="Junk")}
    assert set(found) == {"tx.gmail-1.1797760800", "bulk.gmail-1.1797760800", "mkt-cold.gmail-1.1797760800"}
    assert (found["tx.gmail-1.1797760800"].folder, found["tx.gmail-1.1797760800"].tab) == ("inbox", "primary")
    assert (found["bulk.gmail-1.1797760800"].folder, found["bulk.gmail-1.1797760800"].tab) == ("inbox", "promotions")
    assert found["mkt-cold.gmail-1.1797760800"].folder == "spam"  # found by \Junk, not by its name
    assert found["bulk.gmail-1.1797760800"].delay_seconds == 40.0
    assert found["tx.gmail-1.1797760800"].probe_id == ProbeId("tx", "gmail-1", 1797760800)
