"""Render a BIND master file (RFC 1035 §5) from planned records, and name reverse zones."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from mailinfra.dns.records import DnsRecord, RecordType
from mailinfra.dns.txt import quote_txt

# SOA timers, RFC 1912 §2.2 ranges. The negative-caching TTL (RFC 2308 §4) is short on purpose: a
# receiver that looked up a DKIM selector before it was published should not cache the NXDOMAIN long.
SOA_REFRESH = 7200
SOA_RETRY = 3600
SOA_EXPIRE = 1209600
SOA_NEGATIVE_TTL = 300
MAX_SERIAL = 2**32 - 1  # RFC 1035 §3.3.13: SERIAL is an unsigned 32-bit number.


def render_zone(
    zone: str,
    records: Sequence[DnsRecord],
    *,
    serial: int,
    ttl: int,
    primary_ns: str,
    hostmaster: str,
    nameservers: Sequence[str],
    header_comment: str = "",
) -> str:
    """Render `zone` as a master file: $ORIGIN, $TTL, SOA, NS, then every record sorted by name and type.

    Owner names are relative to the zone; targets are absolute with the trailing dot. Each RRset is
    preceded by a `; purpose (rule)` comment, and `; PLACEHOLDER` when its value is a preview stand-in.
    Raises ValueError when the input would not load in a DNS server (a record outside the zone, a
    duplicated RRset, a CNAME beside other data): those are bugs in the caller, not in the user's config.
    """
    origin = _normalize(zone)
    if not origin:
        raise ValueError("zone must be a non-empty domain name")
    if not 0 <= serial <= MAX_SERIAL:
        raise ValueError(f"serial must fit in 32 bits, got {serial}")
    if not nameservers:
        raise ValueError(f"zone {origin} needs at least one NS record")
    _check_rrsets(origin, records)

    lines = [f"; {line}".rstrip() for line in header_comment.splitlines()]
    lines += [
        f"$ORIGIN {origin}.",
        f"$TTL {ttl}",
        f"@ IN SOA {_absolute(primary_ns)} {_mailbox_name(hostmaster)} "
        f"( {serial} {SOA_REFRESH} {SOA_RETRY} {SOA_EXPIRE} {SOA_NEGATIVE_TTL} )",
    ]
    lines += [f"@ IN NS {_absolute(ns)}" for ns in dict.fromkeys(_normalize(n) for n in nameservers)]
    for record in sorted(records, key=lambda r: (_canonical_name(_normalize(r.name)), str(r.type))):
        owner = _relative(_normalize(record.name), origin)
        lines.append("")
        lines.append(_comment(f"{record.purpose} ({record.rule})"))
        if record.placeholder:
            lines.append("; PLACEHOLDER")
        lines += [f"{owner} {record.ttl} IN {record.type} {_rdata(record, v)}" for v in record.values]
    return "\n".join(lines) + "\n"


def reverse_zone_name(ipv4: str) -> str:
    """The /24 reverse zone holding the PTR for `ipv4`: `c.b.a.in-addr.arpa` (RFC 1035 §3.5)."""
    octets = str(ipaddress.IPv4Address(ipv4.strip())).split(".")
    return ".".join(reversed(octets[:3])) + ".in-addr.arpa"


def ptr_name(ipv4: str) -> str:
    """The PTR owner name for `ipv4`: `d.c.b.a.in-addr.arpa` (RFC 1035 §3.5)."""
    address = ipaddress.IPv4Address(ipv4.strip())
    return address.reverse_pointer


def _check_rrsets(origin: str, records: Sequence[DnsRecord]) -> None:
    types_by_name: dict[str, set[str]] = {}
    for record in records:
        name = _normalize(record.name)
        _relative(name, origin)
        if not record.values:
            raise ValueError(f"{record.type} {name} has no values")
        seen = types_by_name.setdefault(name, set())
        if str(record.type) in seen:
            # Two RRsets with one key would load as one with mixed TTLs; the plan must merge them.
            raise ValueError(f"{record.type} {name} appears twice in zone {origin}")
        seen.add(str(record.type))
    for name, types in types_by_name.items():
        # RFC 1034 §3.6.2 / RFC 2181 §10.1: a CNAME owner has no other data, and the apex has SOA and NS.
        if RecordType.CNAME in types and (len(types) > 1 or name == origin):
            raise ValueError(f"CNAME at {name} cannot share its name with other records")


def _rdata(record: DnsRecord, value: str) -> str:
    match record.type:
        case RecordType.TXT:
            return quote_txt(value)
        case RecordType.MX:
            # RFC 1035 §3.3.9: PREFERENCE (16 bits) then EXCHANGE.
            preference, _, target = value.strip().partition(" ")
            if not preference.isdigit() or int(preference) > 65535 or not target.strip():
                raise ValueError(f"MX value must be '<preference> <target>', got {value!r}")
            return f"{int(preference)} {_absolute(target)}"
        case RecordType.A:
            return str(ipaddress.IPv4Address(value.strip()))
        case RecordType.PTR | RecordType.CNAME | RecordType.NS:
            return _absolute(value)
    raise ValueError(f"no rendering for record type {record.type}")


def _relative(name: str, origin: str) -> str:
    if name == origin:
        return "@"
    if name.endswith("." + origin):
        return name.removesuffix("." + origin)
    raise ValueError(f"record {name} is not inside zone {origin}")


def _mailbox_name(hostmaster: str) -> str:
    # RFC 1035 §8: the RNAME mailbox `local@domain` is written `local.domain.`; a dot inside the local
    # part must be escaped so it is not read as a label separator (RFC 1912 §2.2).
    text = hostmaster.strip()
    if "@" not in text:
        return _absolute(text)
    local, _, domain = text.rpartition("@")
    return f"{local.replace('.', chr(92) + '.')}.{_absolute(domain)}"


def _absolute(name: str) -> str:
    normalized = _normalize(name)
    if not normalized:
        raise ValueError(f"empty domain name {name!r}")
    return normalized + "."


def _canonical_name(name: str) -> tuple[str, ...]:
    # RFC 4034 §6.1 canonical order: compare labels from the right, so the apex comes first and each
    # name is followed by the names below it.
    return tuple(reversed(name.split(".")))


def _comment(text: str) -> str:
    # A newline in a purpose would end the comment and turn the rest into a record.
    return "; " + " ".join(text.split())


def _normalize(name: str) -> str:
    return name.strip().lower().rstrip(".")
