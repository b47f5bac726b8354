"""Each planned RRset as a zone transfer carries it, so an unchanged record is judged by comparing bytes.

Comparing by meaning (mailinfra.drift.compare) renders every live rdata as text and parses SPF and
DMARC; for a zone that matches the plan that is most of a drift run's own work. The result of that
comparison is a function of the planned record, the live rdatas (in the order the server gave them)
and the server's name, so it is computed ahead once per plan and server for the rdatas the plan itself
implies (`wire.RawRecord` form: TXT split by `mailinfra.dns.txt.split_txt`, names lower-cased wire),
in the plan's order and in sorted order (how Knot, among others, keeps an RRset). A live RRset with
exactly those bytes gets that result; anything else (other bytes, another order, missing, extra) goes
through the comparison by meaning as before, so the results are the same either way. Only results that
say "ok" are kept ahead: every finding is worked out from the live answer.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Sequence

import dns.exception

from mailinfra.dns.records import DnsRecord, RecordType
from mailinfra.dns.txt import split_txt
from mailinfra.drift import wire
from mailinfra.drift.compare import compare_record
from mailinfra.drift.model import DriftResult, Status

_TYPES = {RecordType.A: wire.A, RecordType.MX: wire.MX, RecordType.TXT: wire.TXT, RecordType.PTR: wire.PTR,
          RecordType.CNAME: wire.CNAME, RecordType.NS: wire.NS}
# Plans a process has seen (a drift run is one plan; the benchmark repeats one): kept by identity.
_MAX_CACHED = 8
_cache: dict[tuple[int, str], tuple[Sequence[DnsRecord], list[Expected]]] = {}


class Expected:
    """One planned RRset: where a transfer holds it, and the ok result for the rdatas the plan implies."""

    __slots__ = ("key", "ok")

    def __init__(self, record: DnsRecord, server: str) -> None:
        rdtype = _TYPES[record.type]
        self.key = (wire.name_wire(record.name), rdtype)
        self.ok: dict[tuple[bytes, ...], DriftResult] = {}
        rdatas = _planned_rdatas(record, rdtype)
        ordered = tuple(sorted(rdatas))
        for order in (rdatas,) if ordered == rdatas else (rdatas, ordered) if rdatas else ():
            values = tuple(str(wire.rdata_value(rdtype, rdata)) for rdata in order)
            result = compare_record(record, values, server)
            if result.status is Status.OK:
                self.ok[order] = result


def expected_rrsets(records: Sequence[DnsRecord], server: str) -> list[Expected]:
    """One Expected per record, computed once per records sequence (by identity) and server name."""
    key = (id(records), server)
    cached = _cache.get(key)
    if cached is not None and cached[0] is records:
        return cached[1]
    if len(_cache) >= _MAX_CACHED:
        _cache.clear()
    expected = [Expected(record, server) for record in records]
    _cache[key] = (records, expected)  # holding `records` keeps its id from being reused
    return expected


def _planned_rdatas(record: DnsRecord, rdtype: int) -> tuple[bytes, ...]:
    """The record's values as canonical rdatas (identical ones once, as an RRset holds them); () when a
    value has no single wire form here (left to the comparison by meaning)."""
    try:
        rdatas = [_rdata(rdtype, value) for value in record.values]
    except (ValueError, UnicodeError, struct.error, dns.exception.DNSException):
        return ()
    return tuple(dict.fromkeys(rdatas))


def _rdata(rdtype: int, value: str) -> bytes:
    if rdtype == wire.TXT:
        strings = [chunk.encode() for chunk in split_txt(value)]
        return b"".join(bytes((len(string),)) + string for string in strings)
    if rdtype == wire.A:
        return ipaddress.IPv4Address(value).packed
    if rdtype == wire.MX:
        preference, _, target = value.partition(" ")
        return struct.pack("!H", int(preference)) + _name(target)
    return _name(value)


def _name(text: str) -> bytes:
    if not text or text.strip() != text:
        raise ValueError(f"not a plain name: {text!r}")
    return b"\0" if text == "." else wire.name_wire(text.removesuffix("."))
