"""Whole-zone answers: one AXFR per zone (RFC 5936) instead of one query per planned record.

Against a server that allows transfers to us, one TCP exchange carries every record of the zone, so the
check costs one read of the zone instead of a message build and parse per record (on loopback the
per-query Python work, not the network, is what costs). A server that refuses (REFUSED/NOTAUTH, the
usual default for strangers), times out or sends garbage gives `None`, and the caller asks record by
record. A transferred zone answers exactly as the server would for data it holds; it cannot
synthesize wildcard answers (RFC 4592), so a planned name covered only by a wildcard reads as
missing here, as it would in the zone file (we plan no wildcards).

The transfer runs on the event loop (no thread) and is read with `mailinfra.drift.wire` as raw records
(owner and rdata bytes, names decompressed and lower-cased): no text is made while reading, values are
rendered only for the RRsets that are asked for and differ from the plan's bytes. The checks are
dnspython's (`dns.query.xfr`, `dns.xfr.Inbound`, `dns.zone.from_xfr`): answers to our id and question,
NOERROR, the first record the zone's SOA, the transfer ends at the same SOA again with nothing after it,
no SOA elsewhere, one class, names outside the zone ignored, and an SOA and NS at the apex.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from mailinfra.drift import wire
from mailinfra.drift.resolve import Answer, Server


@dataclass(frozen=True)
class TransferredZone:
    """The zone's data as drift reads it: owner names, and rdatas per (name, type) for class IN, all as
    `wire.RawRecord` holds them (lower-cased wire)."""

    origin: str
    names: frozenset[bytes]
    rrsets: dict[tuple[bytes, int], tuple[bytes, ...]]  # identical rdatas once, first-seen order

    def __repr__(self) -> str:
        # Short on purpose: asyncio.run formats its main task's result on the way out (CPython 3.11),
        # and the full field repr of a large zone cost more than reading it.
        return f"TransferredZone({self.origin!r}, {len(self.names)} names, {len(self.rrsets)} RRsets)"

    def answer(self, name: bytes, rdtype: int) -> Answer:
        """What the server answers for `name`/`rdtype` (`name` as `wire.name_wire` renders it)."""
        found = self.rrsets.get((name, rdtype))
        if found is not None:
            return Answer("answer", tuple(str(wire.rdata_value(rdtype, rdata)) for rdata in found))
        # An empty non-terminal (a name with only children) is NODATA on the wire, absent here:
        # both read as "no such record", which is all the comparison needs.
        return Answer("nodata") if name in self.names else Answer("nxdomain")


class _RefusedError(Exception):
    """The transfer cannot be used (dnspython would raise TransferError, FormError or BadResponse)."""


def transfer_zone(server: Server, zone: str, timeout: float) -> TransferredZone | None:
    """The zone by AXFR, or None when the server will not (or cannot) give it to us (blocking)."""
    return asyncio.run(fetch_zone(server, zone, timeout))


async def transfer_zones(servers: dict[str, Server], timeout: float) -> dict[str, TransferredZone | None]:
    """Every zone at once: one TCP connection per server carrying all of its zones' transfers."""
    by_server: dict[Server, list[str]] = {}
    for name in sorted(servers):
        by_server.setdefault(servers[name], []).append(name)
    found: dict[str, TransferredZone | None] = {}
    for zones in await asyncio.gather(*(_transfer_all(server, names, timeout) for server, names in by_server.items())):
        found.update(zones)
    return {name: found[name] for name in sorted(servers)}


async def fetch_zone(server: Server, zone: str, timeout: float) -> TransferredZone | None:
    """One AXFR on its own connection: `timeout` per read (as dns.query.xfr), four times that in all."""
    return (await _transfer_over_one_connection(server, [zone], timeout)).get(zone)


async def _transfer_all(server: Server, zones: list[str], timeout: float) -> dict[str, TransferredZone | None]:
    """All of one server's zones, their queries pipelined on one connection (RFC 5936 §4.1.1 allows
    several on a connection; answers, possibly interleaved, are told apart by message id). Setting up
    one connection per zone cost as much as the transfers themselves on loopback. Zones left over when
    that connection fails (a server that closes after one transfer, or answers only the first query)
    are asked again, one connection each, as a single zone always was."""
    found = await _transfer_over_one_connection(server, zones, timeout) if len(zones) > 1 else {}
    rest = [zone for zone in zones if zone not in found]
    for zone, transferred in zip(rest, await asyncio.gather(*(fetch_zone(server, z, timeout) for z in rest)),
                                 strict=True):
        found[zone] = transferred
    return found


async def _transfer_over_one_connection(server: Server, zones: list[str],
                                        timeout: float) -> dict[str, TransferredZone | None]:
    """The zones this connection settled: transferred, or None when refused (REFUSED, not the zone's SOA,
    garbage in a message). Zones missing from the result were not settled before the connection failed."""
    transfers: dict[int, _Transfer] = {}
    for zone in zones:
        query_id = wire.random_id(transfers)
        transfers[query_id] = _Transfer(zone, query_id)
    settled: dict[str, TransferredZone | None] = {}
    try:
        async with asyncio.timeout(timeout * 4 * len(zones)):
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(server.address, server.port)
            try:
                writer.write(b"".join(transfer.query for transfer in transfers.values()))
                while len(settled) < len(zones):
                    async with asyncio.timeout(timeout):
                        (size,) = struct.unpack("!H", await reader.readexactly(2))
                        data = await reader.readexactly(size)
                    transfer = transfers.get(int.from_bytes(data[:2], "big")) if size >= 2 else None
                    if transfer is None:
                        return settled  # not an answer to any of our queries: the stream cannot be trusted
                    if transfer.zone in settled:
                        continue  # the rest of a transfer already refused
                    try:
                        transferred = transfer.receive(wire.parse_raw(data))
                    except (wire.WireError, _RefusedError):
                        settled[transfer.zone] = None
                        continue
                    if transferred is not None:
                        settled[transfer.zone] = transferred
            finally:
                writer.close()
    except (TimeoutError, OSError, EOFError, asyncio.IncompleteReadError):
        pass
    return settled


class _Transfer:
    """One zone's AXFR as its messages arrive: dnspython's checks (dns.message.Message.is_response with
    xfr continuation, dns.xfr.Inbound), then the records handed to a _ZoneBuilder."""

    def __init__(self, zone: str, query_id: int) -> None:
        self.zone = zone
        self.origin = wire.name_wire(zone)
        query = wire.with_id(wire.query_wire(zone, wire.AXFR), query_id)
        self.query = struct.pack("!H", len(query)) + query  # TCP framing (RFC 1035 §4.2.2)
        self.query_id = query_id
        self.builder: _ZoneBuilder | None = None

    def receive(self, message: wire.RawMessage) -> TransferredZone | None:
        """The zone once its closing SOA arrived, else None (more to come); _RefusedError if unusable."""
        _check_response(message, self.query_id, self.origin, first=self.builder is None)
        records = message.answer
        if self.builder is None:
            if not records or records[0].owner != self.origin or records[0].rdtype != wire.SOA:
                raise _RefusedError("the transfer does not start with the zone's SOA")
            self.builder = _ZoneBuilder(records[0])
            records = records[1:]
        self.builder.add(records)
        return self.builder.build() if self.builder.done else None


class _ZoneBuilder:
    """dns.xfr.Inbound + dns.zone.from_xfr over raw records: from the opening SOA to the closing one."""

    def __init__(self, opening: wire.RawRecord) -> None:
        self.origin = opening.owner
        self.opening = opening
        self.done = False
        self.names = {opening.owner}  # owners inside the zone (so membership needs no second check)
        # Per (name, type): rdatas in first-seen order (a dict as an ordered set: an RRset holds identical
        # rdatas once).
        self.rrsets: dict[tuple[bytes, int], dict[bytes, None]] = {}

    def add(self, records: Sequence[wire.RawRecord]) -> None:
        # Once per resource record of the zone: locals only, no call per record on the common path.
        origin, names, rrsets = self.origin, self.names, self.rrsets
        opening_rdclass = self.opening.rdclass
        for owner, rdtype, rdclass, _, rdata in records:
            if self.done:
                raise _RefusedError("answers after the final SOA")
            if rdtype == wire.SOA and owner == origin:
                if (rdata, rdclass) != (self.opening.rdata, opening_rdclass):
                    raise _RefusedError("a second, different SOA at the apex")
                self.done = True  # the closing SOA (RFC 5936 §2.2)
                continue
            if owner not in names:
                if not _in_zone(owner, origin):
                    continue  # glue outside the zone: dns.zone.from_xfr ignores it
                names.add(owner)
            if rdtype == wire.SOA:
                raise _RefusedError("an SOA below the apex")
            if rdclass != opening_rdclass:
                raise _RefusedError("a record of another class")
            if rdata is not None:
                rrset = rrsets.get((owner, rdtype))
                if rrset is None:
                    rrset = rrsets[owner, rdtype] = {}
                rrset[rdata] = None

    def build(self) -> TransferredZone:
        if (self.origin, wire.NS) not in self.rrsets:
            raise _RefusedError("no NS at the apex")  # dns.zone.Zone.check_origin
        return TransferredZone(wire.name_text(self.origin), frozenset(self.names),
                               {key: tuple(rdatas) for key, rdatas in self.rrsets.items()})


def _check_response(message: wire.RawMessage, query_id: int, origin: bytes, *, first: bool) -> None:
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


def _in_zone(name: bytes, origin: bytes) -> bool:
    """dns.name.Name.is_subdomain on wire names: the origin's labels end the name's, cut at a label."""
    cut = len(name) - len(origin)
    if cut < 0 or not name.endswith(origin):
        return False
    offset = 0
    while offset < cut:
        offset += 1 + name[offset]
    return offset == cut

