"""Whole-zone answers: one AXFR per zone (RFC 5936) instead of one query per planned record.

Against a server that allows transfers to us, one TCP exchange carries every record of the zone, so the
check costs one parse of the zone instead of a message build and parse per record (on loopback the
per-query Python work, not the network, is what costs). A server that refuses (REFUSED/NOTAUTH, the
usual default for strangers), times out or sends garbage gives `None`, and the caller asks record by
record. A transferred zone answers exactly as the server would for data it holds; it cannot
synthesize wildcard answers (RFC 4592), so a planned name covered only by a wildcard reads as
missing here, as it would in the zone file (we plan no wildcards).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import dns.exception
import dns.name
import dns.query
import dns.rdataclass
import dns.rdatatype
import dns.xfr
import dns.zone

from mailinfra.drift.resolve import Answer, Server, rdata_text


def transfer_zone(server: Server, zone: str, timeout: float) -> dns.zone.Zone | None:
    """The zone by AXFR, or None when the server will not (or cannot) give it to us."""
    try:
        return dns.zone.from_xfr(dns.query.xfr(server.address, zone, port=server.port, timeout=timeout,
                                               lifetime=timeout * 4, relativize=False), relativize=False)
    except (dns.exception.DNSException, dns.xfr.TransferError, OSError, EOFError):
        return None


async def transfer_zones(servers: dict[str, Server], timeout: float) -> dict[str, dns.zone.Zone | None]:
    """Every zone at once (each transfer is a blocking dnspython call: threads keep them concurrent)."""
    names = sorted(servers)
    zones = await asyncio.gather(*(asyncio.to_thread(transfer_zone, servers[n], n, timeout) for n in names))
    return dict(zip(names, zones, strict=True))


def answers_from_zone(zone: dns.zone.Zone, questions: Sequence[tuple[str, dns.rdatatype.RdataType]]) -> list[Answer]:
    """What the server would answer for each question, read from its transferred zone."""
    answers = []
    nodes = zone.nodes
    for name, rdtype in questions:
        node = nodes.get(dns.name.from_text(name))
        if node is None:
            # An empty non-terminal (a name with only children) is NODATA on the wire, absent here:
            # both read as "no such record", which is all the comparison needs.
            answers.append(Answer("nxdomain"))
            continue
        rdataset = node.get_rdataset(dns.rdataclass.IN, rdtype)
        if rdataset is None:
            answers.append(Answer("nodata"))
            continue
        answers.append(Answer("answer", tuple(rdata_text(rdtype, r) for r in rdataset)))
    return answers
