"""DNS drift: every planned RRset asked of its zone's authoritative server, compared by meaning."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.rdatatype

from mailinfra.dns.records import DnsRecord, RecordType
from mailinfra.drift.compare import compare_record
from mailinfra.drift.dkim_check import HeldKey, check_dkim_keys
from mailinfra.drift.expected import Expected, expected_rrsets
from mailinfra.drift.model import DriftResult, Status
from mailinfra.drift.resolve import DEFAULT_CONCURRENCY, Answer, Resolver, Server
from mailinfra.drift.transfer import TransferredZone, transfer_zones
from mailinfra.plan.model import Plan


@dataclass(frozen=True)
class DnsOptions:
    nameserver: Server | None = None  # None: each zone's authoritative NS, found through the system resolver
    timeout: float = 1.5
    attempts: int = 3
    concurrency: int = DEFAULT_CONCURRENCY  # queries in flight per server
    transfer: bool = True  # try one AXFR per zone first; per-record queries where it is refused
    dkim_keys: tuple[HeldKey, ...] = ()  # private keys hosts hold: signed with, verified against DNS


_RDATATYPES = {t: dns.rdatatype.from_text(str(t)) for t in RecordType}


async def check_dns(plan: Plan, options: DnsOptions) -> tuple[list[DriftResult], list[str]]:
    """One result per planned RRset, plus a line for every server or zone that could not be asked."""
    failures: list[str] = []
    servers = await _servers_for(plan, options, failures)
    results: list[DriftResult] = []
    errors: dict[Server, list[Answer]] = defaultdict(list)
    async with Resolver(options.timeout, options.attempts, options.concurrency) as resolver:
        known = {zone: server for zone, server in servers.items() if server is not None}
        shown = {server: str(server) for server in known.values()}
        for record, found in zip(plan.records, await _answers(plan.records, known, resolver, options), strict=True):
            if isinstance(found, DriftResult):
                results.append(found)  # the transferred RRset is the plan's, byte for byte
                continue
            if found is None:
                continue  # no nameserver for its zone: reported below
            server = known[record.zone]
            if found.status == "error":
                errors[server].append(found)
            result = _judge(record, found, shown[server])
            if record.type is RecordType.PTR and result.status is Status.CHANGED:
                result = await _with_fcrdns(result, found, plan, servers, resolver=resolver, fallback=server)
            results.append(result)
        for record in plan.records:
            if servers.get(record.zone) is None:
                results.append(
                    DriftResult(
                        "dns",
                        record.key,
                        Status.UNKNOWN,
                        " | ".join(record.values),
                        "",
                        f"no nameserver for zone {record.zone}",
                        record.purpose,
                    )
                )
        results += await check_dkim_keys(plan, options.dkim_keys, servers, resolver)
    for server, server_errors in errors.items():
        asked = sum(1 for record in plan.records if known.get(record.zone) == server)
        if len(server_errors) == asked:
            failures.append(f"nameserver {server} answered none of {asked} queries: {server_errors[0].error}")
    return results, failures


async def _answers(records: Sequence[DnsRecord], servers: dict[str, Server], resolver: Resolver,
                   options: DnsOptions) -> list[Answer | DriftResult | None]:
    """Per record whose zone has a server: from the zone's AXFR where the server allows it (already the
    ok result when the transferred RRset has exactly the plan's bytes, see mailinfra.drift.expected),
    else asked one by one. None for records whose zone has no server."""
    zones = await transfer_zones(servers, options.timeout) if options.transfer else {}
    found: list[Answer | DriftResult | None] = [None] * len(records)
    queried: list[int] = []
    # Per zone (looked up by its name, hashed once per string): its transfer and the plan's bytes.
    by_zone: dict[str, tuple[TransferredZone, list[Expected]] | None] = {}
    for zone, server in servers.items():
        transferred = zones.get(zone)
        by_zone[zone] = None if transferred is None else (transferred, expected_rrsets(records, str(server)))
    for index, record in enumerate(records):
        zone = record.zone
        if zone not in by_zone:
            continue
        transfer = by_zone[zone]
        if transfer is None:
            queried.append(index)
            continue
        transferred, planned = transfer
        key = planned[index].key
        rdatas = transferred.rrsets.get(key)
        ok = None if rdatas is None else planned[index].ok.get(rdatas)
        found[index] = ok if ok is not None else transferred.answer(*key)
    asked = await resolver.query_many(
        [(servers[records[i].zone], records[i].name, _RDATATYPES[records[i].type]) for i in queried])
    for i, answer in zip(queried, asked, strict=True):
        found[i] = answer
    return found


def _judge(record: DnsRecord, answer: Answer, server: str) -> DriftResult:
    if answer.status == "error":
        return DriftResult(
            "dns", record.key, Status.UNKNOWN, " | ".join(record.values), "", answer.error, record.purpose
        )
    return compare_record(record, answer.values, server)


async def _with_fcrdns(
    result: DriftResult,
    answer: Answer,
    plan: Plan,
    servers: dict[str, Server | None],
    *,
    resolver: Resolver,
    fallback: Server,
) -> DriftResult:
    """A PTR pointing elsewhere: say whether the new name at least confirms forward (FCrDNS)."""
    address = ".".join(reversed(result.key.removeprefix("PTR:").removesuffix(".in-addr.arpa").split(".")))
    notes = []
    for name in answer.values:
        zone = max(
            (z.name for z in plan.zones if not z.reverse and (name == z.name or name.endswith("." + z.name))),
            key=len,
            default=None,
        )
        server = servers.get(zone) if zone else None
        forward = await resolver.query(server or fallback, name, dns.rdatatype.A)
        confirmed = "unknown" if forward.status == "error" else ("yes" if address in forward.values else "no")
        notes.append(f"{name} forward-confirmed: {confirmed}")
    return DriftResult(
        result.source,
        result.key,
        result.status,
        result.expected,
        result.actual,
        f"{result.detail}; {'; '.join(notes)}",
        result.purpose,
    )


async def _servers_for(plan: Plan, options: DnsOptions, failures: list[str]) -> dict[str, Server | None]:
    if options.nameserver is not None:
        return {zone.name: options.nameserver for zone in plan.zones}
    found = await asyncio.gather(*(_authoritative(zone.name, options.timeout) for zone in plan.zones))
    servers: dict[str, Server | None] = {}
    for zone, (server, problem) in zip(plan.zones, found, strict=True):
        servers[zone.name] = server
        if server is None:
            failures.append(f"zone {zone.name}: could not find its authoritative nameservers ({problem})")
    return servers


async def _authoritative(zone: str, timeout: float) -> tuple[Server | None, str]:
    resolver = dns.asyncresolver.Resolver()
    resolver.lifetime = timeout * 2
    try:
        ns = await resolver.resolve(zone, "NS")
        for target in sorted(str(r.target).rstrip(".") for r in ns):
            try:
                addresses = await resolver.resolve(target, "A")
            except dns.exception.DNSException:
                continue
            return Server(addresses[0].to_text(), 53, target), ""
    except dns.exception.DNSException as error:
        return None, f"{type(error).__name__}: {error}"
    return None, "no NS host has an address"
