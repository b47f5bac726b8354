"""Whole-zone answers: one AXFR per zone (RFC 5936) instead of one query per planned record.

Against a server that allows transfers to us, one TCP exchange carries every record of the zone, so the
check costs one read of the zone instead of a message build and parse per record (on loopback the
per-query Python work, not the network, is what costs). A server that refuses (REFUSED/NOTAUTH, the
usual default for strangers), times out or sends garbage gives `None`, and the caller asks record by
record. A transferred zone answers exactly as the server would for data it holds; it cannot
synthesize wildcard answers (RFC 4592), so a planned name covered only by a wildcard reads as
missing here, as it would in the zone file (we plan no wildcards).

The transfer runs on the event loop (no thread) and is read with `mailinfra.drift.wire`, which keeps
only owner names and the values drift compares; the checks are dnspython's (`dns.query.xfr`,
`dns.xfr.Inbound`, `dns.zone.from_xfr`): answers to our id and question, NOERROR, the first record the
zone's SOA, the transfer ends at the same SOA again with nothing after it, no SOA elsewhere, one class,
names outside the zone ignored, and an SOA and NS at the apex.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Sequence
from dataclasses import dataclass

import dns.name
import dns.rdatatype

from mailinfra.drift import wire
from mailinfra.drift.resolve import Answer, Server


@dataclass(frozen=True)
class TransferredZone:
    """The zone's data as drift reads it: owner names, and values per (name, type) for class IN."""

    origin: str
    names: frozenset[str]
    rrsets: dict[tuple[str, int], tuple[str, ...]]

    def answer(self, name: str, rdtype: int) -> Answer:
        """What the server answers for `name`/`rdtype` (`name` as `wire.name_key` renders it)."""
        values = self.rrsets.get((name, rdtype))
        if values is not None:
            return Answer("answer", values)
        # An empty non-terminal (a name with only children) is NODATA on the wire, absent here:
        # both read as "no such record", which is all the comparison needs.
        return Answer("nodata") if name in self.names else Answer("nxdomain")


class _RefusedError(Exception):
    """The transfer cannot be used (dnspython would raise TransferError, FormError or BadResponse)."""


def transfer_zone(server: Server, zone: str, timeout: float) -> TransferredZone | None:
    """The zone by AXFR, or None when the server will not (or cannot) give it to us (blocking)."""
    return asyncio.run(fetch_zone(server, zone, timeout))


async def transfer_zones(servers: dict[str, Server], timeout: float) -> dict[str, TransferredZone | None]:
    """Every zone at once, each on its own TCP connection."""
    names = sorted(servers)
    zones = await asyncio.gather(*(fetch_zone(servers[n], n, timeout) for n in names))
    return dict(zip(names, zones, strict=True))


async def fetch_zone(server: Server, zone: str, timeout: float) -> TransferredZone | None:
    """One AXFR: `timeout` per read (as dns.query.xfr), four times that for the whole transfer."""
    try:
        async with asyncio.timeout(timeout * 4):
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(server.address, server.port)
            try:
                query_id = wire.random_id()
                query = wire.with_id(wire.query_wire(zone, wire.AXFR), query_id)
                writer.write(struct.pack("!H", len(query)) + query)
                return await _read_transfer(reader, query_id, wire.name_key(zone), timeout)
            finally:
                writer.close()
    except (TimeoutError, OSError, EOFError, asyncio.IncompleteReadError, wire.WireError, _RefusedError):
        return None


async def _read_transfer(reader: asyncio.StreamReader, query_id: int, origin: str,
                         timeout: float) -> TransferredZone:
    zone: _ZoneBuilder | None = None
    while zone is None or not zone.done:
        async with asyncio.timeout(timeout):
            (size,) = struct.unpack("!H", await reader.readexactly(2))
            message = wire.parse_message(await reader.readexactly(size))
        _check_response(message, query_id, origin, first=zone is None)
        records = message.answer
        if zone is None:
            if not records or records[0].name != origin or records[0].rdtype != wire.SOA:
                raise _RefusedError("the transfer does not start with the zone's SOA")
            zone = _ZoneBuilder(records[0])
            records = records[1:]
        for record in records:
            zone.add(record)
    return zone.build()


class _ZoneBuilder:
    """dns.xfr.Inbound + dns.zone.from_xfr over wire records: from the opening SOA to the closing one."""

    def __init__(self, opening: wire.Record) -> None:
        self.origin = opening.name
        self.opening = opening
        self.done = False
        self.names = {opening.name}
        self.seen: dict[tuple[str, int], set[object]] = {}
        self.rrsets: dict[tuple[str, int], list[str]] = {}

    def add(self, record: wire.Record) -> None:
        if self.done:
            raise _RefusedError("answers after the final SOA")
        if record.rdtype == wire.SOA and record.name == self.origin:
            if (record.identity, record.rdclass) != (self.opening.identity, self.opening.rdclass):
                raise _RefusedError("a second, different SOA at the apex")
            self.done = True  # the closing SOA (RFC 5936 §2.2)
            return
        if not _in_zone(record.name, self.origin):
            return  # glue outside the zone: dns.zone.from_xfr ignores it
        if record.rdtype == wire.SOA:
            raise _RefusedError("an SOA below the apex")
        if record.rdclass != self.opening.rdclass:
            raise _RefusedError("a record of another class")
        self.names.add(record.name)
        if isinstance(record.value, str):
            key = (record.name, record.rdtype)
            identities = self.seen.setdefault(key, set())
            if record.identity not in identities:  # an RRset holds identical rdatas once
                identities.add(record.identity)
                self.rrsets.setdefault(key, []).append(record.value)

    def build(self) -> TransferredZone:
        if (self.origin, wire.NS) not in self.rrsets:
            raise _RefusedError("no NS at the apex")  # dns.zone.Zone.check_origin
        return TransferredZone(self.origin, frozenset(self.names),
                               {key: tuple(values) for key, values in self.rrsets.items()})


def _check_response(message: wire.Message, query_id: int, origin: str, *, first: bool) -> None:
    """dns.message.Message.is_response (xfr continuation) and dns.xfr.Inbound's rcode/question checks."""
    if not message.flags & wire.QR or message.id != query_id or (message.flags >> 11) & 0xF != 0:
        raise _RefusedError("not an answer to our query")
    if message.rcode != wire.NOERROR:
        raise _RefusedError(f"rcode {message.rcode}")
    if message.question:
        if message.question != ((origin, wire.AXFR, wire.IN),):
            raise _RefusedError("answer to another question")
    elif first:
        raise _RefusedError("first message without the question")


def _in_zone(name: str, origin: str) -> bool:
    if "\\" in name or "\\" in origin:
        # An escaped dot is not a label boundary: compare label by label (dns.name.Name.is_subdomain).
        return dns.name.from_text(name or ".").is_subdomain(dns.name.from_text(origin or "."))
    return not origin or name == origin or name.endswith("." + origin)


def answers_from_zone(zone: TransferredZone, questions: Sequence[tuple[str, dns.rdatatype.RdataType]]) -> list[Answer]:
    """What the server would answer for each question, read from its transferred zone."""
    return [zone.answer(wire.name_key(name), int(rdtype)) for name, rdtype in questions]
