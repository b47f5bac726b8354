"""Rules on who may inject, where things run and what names are: what AWS would refuse late, or what
would make a host unsafe, found at load time.

- Injection: a host accepts mail from `injection_cidrs` without authentication (the security group and
  Postfix's mynetworks both come from it), so an internet range would make it an open relay.
- Places: an availability zone belongs to one region, a subnet to one availability zone, and SES exists
  in a listed set of regions.
- Names: an organizational domain is a registrable domain (RFC 7489 §3.2 via the Public Suffix List).
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from mailinfra.model.limits import SES_REGIONS
from mailinfra.model.problem import Problem
from mailinfra.model.schema import SesRoute, StackConfig

if TYPE_CHECKING:
    from publicsuffixlist import PublicSuffixList

# Where injected mail may come from: networks that are not routed on the internet. RFC 1918 §3 (private
# address space) and RFC 6598 §7 (shared address space, carrier-grade NAT) — a VPC may use either
# (VPC User Guide, "VPC CIDR blocks"). Injection CIDRs are IPv4 (the schema), so IPv6 ULA does not arise.
INJECTION_NETWORKS = (
    ipaddress.IPv4Network("10.0.0.0/8"),
    ipaddress.IPv4Network("172.16.0.0/12"),
    ipaddress.IPv4Network("192.168.0.0/16"),
    ipaddress.IPv4Network("100.64.0.0/10"),
)
_INJECTION_EXPECTED = ("a private network inside 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16 (RFC 1918) or "
                       "100.64.0.0/10 (RFC 6598): injected mail needs no login, so a public range is an open relay")


def check_places(config: StackConfig, region: str | None) -> Iterator[Problem]:
    """Every rule of this module, in a stable order. `region`: the stack's aws:region when known."""
    yield from _check_injection(config)
    yield from _check_zones_in_region(config, region)
    yield from _check_subnet_zones(config)
    yield from _check_ses_regions(config)
    yield from _check_registrable_domains(config)


def _problem(path: tuple[str | int, ...], received: object, expected: str) -> Problem:
    return Problem(path, received, expected)


def _check_injection(config: StackConfig) -> Iterator[Problem]:
    for host_name, host in config.hosts.items():
        for i, text in enumerate(host.injection_cidrs):
            network = ipaddress.IPv4Network(text)
            if not any(network.subnet_of(allowed) for allowed in INJECTION_NETWORKS):
                yield _problem(("hosts", host_name, "injection_cidrs", i), text, _INJECTION_EXPECTED)


def availability_zone_in(zone: str, region: str) -> bool:
    """`us-east-1a` (a zone), `us-east-1-bos-1a` (a Local Zone) and Wavelength zones all start with their
    parent region's name followed by a letter or a hyphen (EC2 User Guide, "Regions and Zones")."""
    return re.fullmatch(rf"{re.escape(region)}(?:[a-z]|-[a-z0-9]+(?:-[a-z0-9]+)*)", zone) is not None


def _check_zones_in_region(config: StackConfig, region: str | None) -> Iterator[Problem]:
    if not region:
        return  # the region comes from the environment: the program checks with the provider's region
    for host_name, host in config.hosts.items():
        zone = host.availability_zone
        if zone is not None and not availability_zone_in(zone, region):
            yield _problem(("hosts", host_name, "availability_zone"), zone,
                           f"an availability zone of the stack's region {region} (aws:region), such as {region}a")


def _check_subnet_zones(config: StackConfig) -> Iterator[Problem]:
    """A subnet lies in exactly one availability zone (VPC User Guide, "Subnets for your VPC"): two hosts
    naming one subnet with different zones cannot both be right."""
    first: dict[str, tuple[str, str]] = {}
    for host_name, host in config.hosts.items():
        if host.subnet_id is None or host.availability_zone is None:
            continue
        other = first.setdefault(host.subnet_id, (host_name, host.availability_zone))
        if other[1] != host.availability_zone:
            yield _problem(("hosts", host_name, "availability_zone"), host.availability_zone,
                           f"{other[1]}, the zone of subnet {host.subnet_id} (host {other[0]}): "
                           "a subnet lies in one availability zone")


def _check_ses_regions(config: StackConfig) -> Iterator[Problem]:
    for route_name, route in config.routes.items():
        if isinstance(route, SesRoute) and route.region not in SES_REGIONS:
            yield _problem(("routes", route_name, "region"), route.region,
                           "a region where Amazon SES has an endpoint, such as us-east-1 or eu-west-1 "
                           "(AWS General Reference, SES endpoints)")


def _check_registrable_domains(config: StackConfig) -> Iterator[Problem]:
    for domain in config.domains:
        expected = _registrable_problem(domain)
        if expected:
            yield _problem(("domains", domain), domain, expected)
    for zone in config.dns.zones:
        if _public_suffix_list(_tld(zone)).is_public(zone):
            yield _problem(("dns", "zones", zone), zone,
                           f"a zone you can own: {zone} is a public suffix (Public Suffix List)")


def _registrable_problem(domain: str) -> str | None:
    """None when `domain` is a registrable domain (one label under a public suffix), else what to write."""
    psl = _public_suffix_list(_tld(domain))
    if psl.is_public(domain):
        return (f"a registrable domain such as example.{domain}: {domain} is a public suffix "
                "(Public Suffix List), nobody's organizational domain")
    registrable = psl.privatesuffix(domain)
    if registrable is not None and registrable != domain:
        label = domain.removesuffix("." + registrable)
        return (f"its organizational domain {registrable} (the registrable domain under the Public Suffix List; "
                f"RFC 7489 §3.2: relaxed alignment and the _dmarc fallback use it), "
                f"with {label} as a stream's subdomain")
    return None


def _tld(name: str) -> str:
    return name.rstrip(".").rsplit(".", 1)[-1]


@functools.cache
def _public_suffix_list(tld: str) -> PublicSuffixList:
    """The Public Suffix List as the `publicsuffixlist` package ships it (never fetched at run time), cut
    to the rules of one top-level label: a rule can only match names that end in its last label, and
    parsing the whole list (~0.5 s) would dominate `mailinfra preview`."""
    from publicsuffixlist import PSLFILE, PublicSuffixList

    labels = {tld, _unicode_label(tld)}
    with Path(PSLFILE).open(encoding="utf-8") as source:
        # Keep the section markers: they tell ICANN rules from private ones.
        lines = [line for line in source
                 if line.startswith("// ===") or line.strip().lstrip("*!.").rsplit(".", 1)[-1] in labels]
    return PublicSuffixList(lines)


def _unicode_label(label: str) -> str:
    try:
        return label.encode("ascii").decode("idna") if label.startswith("xn--") else label
    except UnicodeError:
        return label
