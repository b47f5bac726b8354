"""How entries are written down: stream-kind bitmasks, epoch seconds, CSV/JSON rows (pure)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from mailinfra.model.kinds import StreamKind
from mailinfra.suppression.model import BounceClass, Entry, Source

# Fixed bits (never reorder: stores and replicas keep them): transactional 1, marketing 2, bulk 4.
KIND_BITS = {StreamKind.TRANSACTIONAL: 1, StreamKind.MARKETING: 2, StreamKind.BULK: 4}
FIELDS = ("address", "scope", "reason", "class", "source", "first_seen", "last_seen", "expires", "added_by",
          "stream")


def kinds_to_bits(kinds: Iterable[StreamKind]) -> int:
    return sum(KIND_BITS[kind] for kind in set(kinds))


def bits_to_kinds(bits: int) -> frozenset[StreamKind]:
    return frozenset(kind for kind, bit in KIND_BITS.items() if bits & bit)


def to_epoch(moment: dt.datetime) -> float:
    return moment.timestamp() if moment.tzinfo else moment.replace(tzinfo=dt.UTC).timestamp()


def from_epoch(value: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(value, tz=dt.UTC)


def entry_to_row(entry: Entry) -> dict[str, str]:
    """One CSV/JSON row: scope as `marketing|bulk`, times in ISO 8601 UTC, empty for none."""
    return {
        "address": entry.address,
        "scope": "|".join(sorted(entry.scope)),
        "reason": entry.reason,
        "class": str(entry.cls) if entry.cls else "",
        "source": str(entry.source),
        "first_seen": _iso(entry.first_seen),
        "last_seen": _iso(entry.last_seen),
        "expires": _iso(entry.expires) if entry.expires else "",
        "added_by": entry.added_by,
        "stream": entry.stream or "",
    }


def row_to_entry(row: Mapping[str, Any], *, now: dt.datetime, added_by: str) -> Entry:
    """An entry from an imported row: only `address` is required (the scope defaults to every kind, the
    source to manual). Raises ValueError naming the column and what it expected."""
    from mailinfra.suppression.address import normalise_address

    address = normalise_address(str(row.get("address") or ""))
    scope_text = str(row.get("scope") or "").strip()
    try:
        scope = frozenset(StreamKind(k.strip()) for k in scope_text.replace(",", "|").split("|") if k.strip())
    except ValueError:
        raise ValueError(f"scope: received {scope_text!r}, expected stream kinds such as marketing|bulk") from None
    source_text = str(row.get("source") or "manual").strip()
    cls_text = str(row.get("class") or "").strip()
    try:
        source = Source(source_text)
    except ValueError:
        raise ValueError(f"source: received {source_text!r}, expected one of "
                         f"{', '.join(s.value for s in Source)}") from None
    try:
        cls = BounceClass(cls_text) if cls_text else None
    except ValueError:
        raise ValueError(f"class: received {cls_text!r}, expected a bounce class such as bad-mailbox") from None
    first = _parse_time(row.get("first_seen"), "first_seen") or now
    last = _parse_time(row.get("last_seen"), "last_seen") or now
    return Entry(address=address, scope=scope or frozenset(StreamKind), reason=str(row.get("reason") or "imported"),
                 cls=cls, source=source, first_seen=first, last_seen=last,
                 expires=_parse_time(row.get("expires"), "expires"),
                 added_by=str(row.get("added_by") or added_by), stream=str(row.get("stream") or "") or None)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _parse_time(value: object, column: str) -> dt.datetime | None:
    text = str(value or "").strip()
    if not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{column}: received {text!r}, expected an ISO 8601 time such as "
                         "2026-12-01T10:00:00Z") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
