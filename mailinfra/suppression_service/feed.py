"""The change feed: what the bounce host's processor serves and every host's lookup service polls.

    GET /v1/changes?after=<seq>&limit=<n>      Authorization: Bearer <feed key>
    200 {"last": <seq>, "changes": [{"seq": n, "address": "...", "entry": {...} | null}, ...]}

`seq` grows with every change of the store (an add, an extension, a removal); `entry` is the address's
entry as the store has it now (null: removed), so replaying a change twice is harmless. The feed key is
derived from the stack secret (HMAC-SHA256 over a fixed label): only hosts that hold the secret read the
list, and no second secret needs distributing. The bounce host's security group admits the port from the
stack's own hosts only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from mailinfra.model.kinds import StreamKind
from mailinfra.suppression.model import BounceClass, Entry, Source
from mailinfra.suppression.store import Change

FEED_LABEL = b"mailinfra suppression feed v1"
PAGE = 5000


class FeedError(RuntimeError):
    """The feed could not be read (the poller retries; the replica keeps answering from what it has)."""


def feed_key(secret: bytes) -> str:
    return hmac.new(secret, FEED_LABEL, hashlib.sha256).hexdigest()


def authorized(header: str | None, secret: bytes) -> bool:
    expected = f"Bearer {feed_key(secret)}"
    return header is not None and hmac.compare_digest(header.encode(), expected.encode())


def encode_page(last: int, changes: list[Change]) -> bytes:
    return json.dumps({"last": last, "changes": [
        {"seq": c.seq, "address": c.address, "entry": entry_json(c.entry)} for c in changes]}).encode()


def decode_page(body: bytes) -> tuple[int, list[Change]]:
    data = json.loads(body)
    changes = [Change(int(c["seq"]), str(c["address"]), json_entry(c["address"], c.get("entry")))
               for c in data["changes"]]
    return int(data["last"]), changes


class RemoteFeed:
    """A bounce host's store as the lookup's replica sees it (`changes_since`, over HTTP)."""

    def __init__(self, url: str, secret: bytes, source_address: str | None = None) -> None:
        self.url = url
        self.secret = secret
        self.source_address = source_address

    def changes_since(self, seq: int, limit: int = PAGE) -> list[Change]:
        return fetch_page(self.url, seq, self.secret, source_address=self.source_address)[1][:limit]


def fetch_page(url: str, after: int, secret: bytes, *, timeout: float = 5.0,
               source_address: str | None = None) -> tuple[int, list[Change]]:
    """One page of changes after `after` (stdlib HTTP: the host's Debian python3 has no third-party client).
    `source_address`: the local address the poll leaves from (the one the bounce host's group admits)."""
    if not url.startswith(("http://", "https://")):
        raise FeedError(f"feed {url!r}: expected an http(s) URL")
    if source_address is not None and url.startswith("http://"):
        return _fetch_from(url, after, secret, timeout, source_address)
    request = urllib.request.Request(f"{url}?after={after}&limit={PAGE}",  # noqa: S310 - scheme checked above
                                     headers={"Authorization": f"Bearer {feed_key(secret)}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - http(s) URL from config
            return decode_page(response.read())
    except (OSError, urllib.error.URLError, ValueError, KeyError) as error:
        raise FeedError(f"{url}: {error}") from None


def _fetch_from(url: str, after: int, secret: bytes, timeout: float, source: str) -> tuple[int, list[Change]]:
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port or 80, timeout=timeout,
                                            source_address=(source, 0))
    try:
        connection.request("GET", f"{parts.path}?after={after}&limit={PAGE}",
                           headers={"Authorization": f"Bearer {feed_key(secret)}"})
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise FeedError(f"{url}: HTTP {response.status} {response.reason}")
        return decode_page(body)
    except (OSError, http.client.HTTPException, ValueError, KeyError) as error:
        raise FeedError(f"{url}: {error}") from None
    finally:
        connection.close()


def entry_json(entry: Entry | None) -> dict[str, Any] | None:
    """An entry as the feed carries it (ISO 8601 times; null: the address was removed)."""
    if entry is None:
        return None
    return {"scope": sorted(str(k) for k in entry.scope), "reason": entry.reason,
            "cls": str(entry.cls) if entry.cls is not None else None, "source": str(entry.source),
            "first_seen": entry.first_seen.isoformat(), "last_seen": entry.last_seen.isoformat(),
            "expires": entry.expires.isoformat() if entry.expires is not None else None,
            "added_by": entry.added_by, "stream": entry.stream}


def json_entry(address: str, data: dict[str, Any] | None) -> Entry | None:
    if data is None:
        return None
    return Entry(address=address, scope=frozenset(StreamKind(k) for k in data["scope"]), reason=str(data["reason"]),
                 cls=BounceClass(data["cls"]) if data.get("cls") else None, source=Source(data["source"]),
                 first_seen=dt.datetime.fromisoformat(data["first_seen"]),
                 last_seen=dt.datetime.fromisoformat(data["last_seen"]),
                 expires=dt.datetime.fromisoformat(data["expires"]) if data.get("expires") else None,
                 added_by=str(data.get("added_by") or ""), stream=data.get("stream"))
