"""Stand-in addresses for Elastic IPs that only exist after `pulumi up`.

A placeholder is a real, routable-looking IPv4 address from the documentation ranges
(RFC 5737), so every planned record stays syntactically valid and every zone loads in a real
DNS server. It is derived from the IP's name (hash, then linear probing) so adding one IP does
not move the placeholders of the others in a review diff.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable

# 192.0.2.0/24 (TEST-NET-1) stays free for lab infrastructure (providers, relays).
_PLACEHOLDER_NETS = (ipaddress.IPv4Network("203.0.113.0/24"), ipaddress.IPv4Network("198.51.100.0/24"))
# Past 508 new IPs (benchmark topologies), continue in 240.0.0.0/4 (RFC 1112 "reserved"): still
# never routed, still a syntactically valid A record.
_OVERFLOW_NET = ipaddress.IPv4Network("240.0.0.0/16")


def _candidates() -> list[str]:
    return [str(a) for net in _PLACEHOLDER_NETS for a in net.hosts() if int(a) & 0xFF not in (0, 255)]


_CANDIDATES = _candidates()


def assign_placeholders(names: Iterable[str], taken: Iterable[str]) -> dict[str, str]:
    """name -> placeholder address, unique and distinct from every real address in `taken`."""
    used = set(taken)
    result: dict[str, str] = {}
    ordered = sorted(names)
    if len(ordered) + len(used) <= len(_CANDIDATES):
        for name in ordered:
            index = int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big") % len(_CANDIDATES)
            while _CANDIDATES[index] in used:
                index = (index + 1) % len(_CANDIDATES)
            result[name] = _CANDIDATES[index]
            used.add(_CANDIDATES[index])
        return result
    overflow = (str(a) for a in _OVERFLOW_NET.hosts())
    for name in ordered:
        address = next(overflow)
        while address in used:
            address = next(overflow)
        result[name] = address
        used.add(address)
    return result
