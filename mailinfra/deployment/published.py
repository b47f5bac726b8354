"""What a DNS provider would publish for the deployment's record resources: typed RRsets in master-file form.

The provider translations (route53.py, cloudflare.py, eip_ptr.py) each turn their resources into
`PublishedRRset`s by the provider's documented rules; a value the provider would refuse raises
`PublishError` naming the resource, as `pulumi up` would stop on it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from mailinfra.errors import MailinfraError

# RFC 1035 §3.3: a <character-string> is at most 255 octets (one length octet).
MAX_STRING_BYTES = 255


class PublishError(MailinfraError):
    """The provider would refuse this resource: `pulumi up` fails on it."""

    def __init__(self, resource_type: str, resource_name: str, reason: str) -> None:
        super().__init__(f"{resource_type} {resource_name}: {reason}")
        self.resource_type = resource_type
        self.resource_name = resource_name
        self.reason = reason


@dataclass(frozen=True, slots=True)
class PublishedRRset:
    """One RRset as the provider's name servers would answer it.

    `name`: absolute, lower case, no trailing dot. `rdatas`: presentation form (RFC 1035 §5.1) as a
    zone file holds it: TXT as its quoted character-strings exactly as published (`"a" "b"`), names
    absolute with the trailing dot. `sources`: the resources that publish it (names).
    `action`: how the provider writes it: CREATE (fails if the RRset exists) or UPSERT (replaces it).
    """

    name: str
    type: str
    ttl: int
    rdatas: tuple[str, ...]
    sources: tuple[str, ...]
    provider: str
    action: str = "CREATE"


def txt_presentation(strings: Sequence[bytes]) -> str:
    """Character-strings as master-file TXT rdata: each quoted, `"` and `\\` escaped, other octets
    outside printable ASCII as `\\DDD` in decimal (RFC 1035 §5.1)."""
    return " ".join('"' + "".join(_escape_octet(o) for o in s) + '"' for s in strings)


def txt_strings(rdata: str) -> tuple[bytes, ...]:
    """The character-strings of master-file TXT rdata written by `txt_presentation` (tests, drift)."""
    strings, index = [], 0
    while index < len(rdata):
        if rdata[index] == " ":
            index += 1
            continue
        index += 1  # the opening quote
        out = bytearray()
        while rdata[index] != '"':
            if rdata[index] == "\\" and rdata[index + 1:index + 4].isdigit():
                out.append(int(rdata[index + 1:index + 4]))
                index += 4
            elif rdata[index] == "\\":
                out += rdata[index + 1].encode()
                index += 2
            else:
                out += rdata[index].encode()
                index += 1
        strings.append(bytes(out))
        index += 1
    return tuple(strings)


def absolute_name(name: str) -> str:
    """A domain name with its trailing dot, lower case (DNS names compare case-insensitively)."""
    return name.strip().rstrip(".").lower() + "."


def check_ipv4(value: str) -> str:
    return str(ipaddress.IPv4Address(value.strip()))


def merge_rrsets(rrsets: Iterable[PublishedRRset]) -> list[PublishedRRset]:
    """One RRset per (name, type): Cloudflare keeps one record per value, DNS answers them as one RRset
    (RFC 2181 §5); values keep their first order, duplicates go (an RRset is a set, RFC 2181 §5)."""
    merged: dict[tuple[str, str], PublishedRRset] = {}
    for rrset in rrsets:
        key = (rrset.name, rrset.type)
        if key not in merged:
            merged[key] = rrset
            continue
        old = merged[key]
        merged[key] = PublishedRRset(
            old.name, old.type, min(old.ttl, rrset.ttl), tuple(dict.fromkeys(old.rdatas + rrset.rdatas)),
            old.sources + rrset.sources, old.provider, old.action)
    return list(merged.values())


def _escape_octet(octet: int) -> str:
    if octet in (0x22, 0x5C):
        return "\\" + chr(octet)
    if 0x20 <= octet < 0x7F:
        return chr(octet)
    return f"\\{octet:03d}"

