"""Every DNS record the topology needs, each with the reason it exists.

Pure: config and the already-derived plan parts in, typed records out.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from mailinfra.dns.dkim import build_dkim_ed25519, build_dkim_rsa, dkim_record_name
from mailinfra.dns.dmarc import build_dmarc
from mailinfra.dns.records import DnsRecord, RecordType, Requirement
from mailinfra.dns.spf import MAX_LOOKUPS, build_spf, count_lookup_terms
from mailinfra.dns.zonefile import ptr_name, reverse_zone_name
from mailinfra.errors import PlanError
from mailinfra.model.schema import Dmarc, StackConfig
from mailinfra.plan.model import DkimKeyPlan, HostPlan, IpPlan, RoutePlan, StreamPlan, ZonePlan

# SES custom MAIL FROM (SES Developer Guide, "Using a custom MAIL FROM domain") needs its own MX
# to SES's feedback endpoint; our return-path MX points at our bounce hosts, and one name cannot
# have both, so SES gets a dedicated child name of the return path.
SES_MAIL_FROM_LABEL = "ses"


def ses_mail_from(stream: StreamPlan) -> str:
    return f"{SES_MAIL_FROM_LABEL}.{stream.return_path}"


def plan_records(
    config: StackConfig,
    *,
    streams: tuple[StreamPlan, ...],
    ips: tuple[IpPlan, ...],
    hosts: tuple[HostPlan, ...],
    routes: tuple[RoutePlan, ...],
    keys: tuple[DkimKeyPlan, ...],
    zones: tuple[ZonePlan, ...],
) -> tuple[DnsRecord, ...]:
    """All records, sorted by zone, name and type, with zone membership resolved."""
    ttl = config.dns.ttl_seconds
    forward = [z.name for z in zones if not z.reverse]
    drafts = [
        *_plan_dmarc(config),
        *_plan_streams(config, streams=streams, ips=ips, hosts=hosts, routes=routes, keys=keys),
        *_plan_ips(ips),
        *_plan_hosts(hosts, routes),
    ]
    records = []
    for name, rtype, values, purpose, rule, requirement, stream, placeholder in drafts:
        zone = reverse_zone_name(_ptr_address(name)) if rtype is RecordType.PTR else _zone_of(name, forward)
        records.append(DnsRecord(name=name, type=rtype, values=tuple(values), ttl=ttl, zone=zone,
                                 purpose=purpose, rule=rule, requirement=requirement, stream=stream,
                                 placeholder=placeholder))
    _check_unique(records)
    return tuple(sorted(records, key=lambda r: (r.zone, r.name, str(r.type))))


_Draft = tuple[str, RecordType, tuple[str, ...], str, str, Requirement, str | None, bool]
_REQ = Requirement.REQUIRED
_REC = Requirement.RECOMMENDED


def _plan_dmarc(config: StackConfig) -> Iterator[_Draft]:
    for domain_name, domain in config.domains.items():
        yield (f"_dmarc.{domain_name}", RecordType.TXT, (_dmarc_text(domain.dmarc),),
               f"DMARC policy for {domain_name} and (sp) its subdomains",
               "RFC 7489 §6.1; Gmail/Yahoo bulk sender rules",
               _REQ, None, False)


def _dmarc_text(dmarc: Dmarc) -> str:
    return build_dmarc(str(dmarc.policy), str(dmarc.subdomain_policy) if dmarc.subdomain_policy else None,
                       adkim=str(dmarc.adkim), aspf=str(dmarc.aspf), rua=dmarc.rua, ruf=dmarc.ruf, fo=dmarc.fo)


def _plan_streams(
    config: StackConfig,
    *,
    streams: tuple[StreamPlan, ...],
    ips: tuple[IpPlan, ...],
    hosts: tuple[HostPlan, ...],
    routes: tuple[RoutePlan, ...],
    keys: tuple[DkimKeyPlan, ...],
) -> Iterator[_Draft]:
    routes_by_name = {r.name: r for r in routes}
    bounce_hosts = [h for h in hosts if h.accepts_bounces]
    for stream in streams:
        own = [ip for ip in ips if ip.stream == stream.name]
        route = routes_by_name.get(stream.route) if stream.route else None
        includes = [route.spf_include] if route and route.spf_include else []
        # Only what sends for this domain: a `hosts` route's overflow leaves from the stream's own pools
        # on the route host (mailinfra.mta.powermta.plan_route_peer_pools), so it adds no address; the
        # route hosts' other IPs send for other streams and must not be authorized here.
        spf = build_spf([ip.address for ip in own], includes)
        if count_lookup_terms(spf) > MAX_LOOKUPS:
            raise PlanError(f"stream {stream.name}: SPF for {stream.return_path} needs "
                            f"{count_lookup_terms(spf)} DNS lookups, RFC 7208 §4.6.4 allows {MAX_LOOKUPS}")
        placeholder = any(ip.placeholder for ip in own)
        yield (stream.return_path, RecordType.TXT, (spf,),
               f"SPF for the {stream.name} return-path: exactly the stream's pool IPs"
               + (f" and its secondary route {route.name}" if route and includes else ""),
               "RFC 7208 §2.4 (MAIL FROM identity)", _REQ, stream.name, placeholder)
        yield (stream.return_path, RecordType.MX,
               tuple(f"{config.bounces.mx_preference} {h.fqdn}" for h in bounce_hosts),
               f"bounces and complaints for {stream.name} reach the bounce-processing hosts",
               "RFC 5321 §4.5.5 (non-delivery reports go to MAIL FROM)", _REQ, stream.name, False)
        if route is not None and route.kind == "ses":
            mail_from = ses_mail_from(stream)
            yield (mail_from, RecordType.MX, (f"10 feedback-smtp.{route.region}.amazonses.com",),
                   f"SES custom MAIL FROM for {stream.name} via route {route.name}: SES bounce feedback",
                   "SES custom MAIL FROM setup", _REQ, stream.name, False)
            yield (mail_from, RecordType.TXT, (build_spf([], [route.spf_include or "amazonses.com"]),),
                   f"SPF for the SES MAIL FROM of {stream.name}", "RFC 7208; SES custom MAIL FROM setup",
                   _REQ, stream.name, False)
        if config.domains[stream.org_domain].dmarc.per_sending_domain:
            yield (f"_dmarc.{stream.sending_domain}", RecordType.TXT,
                   (_dmarc_text(config.domains[stream.org_domain].dmarc),),
                   f"DMARC policy published at the {stream.name} sending domain", "RFC 7489 §6.6.3",
                   _REC, stream.name, False)
        for key in keys:
            if key.domain != stream.org_domain or not key.published:
                continue
            text = build_dkim_ed25519(key.public_key) if key.algorithm == "ed25519" else build_dkim_rsa(key.public_key)
            yield (dkim_record_name(key.selector, stream.sending_domain), RecordType.TXT, (text,),
                   f"DKIM {key.algorithm} key {key.selector} ({key.state}) for {stream.sending_domain}",
                   "RFC 8463" if key.algorithm == "ed25519" else "RFC 6376 §3.6.2",
                   _REQ if key.signing else _REC, stream.name, key.placeholder)
        yield from _plan_reporting(config, stream)


def _plan_reporting(config: StackConfig, stream: StreamPlan) -> Iterator[_Draft]:
    """TLS reporting and MTA-STS for the return-path domains, which receive bounces."""
    bounces = config.bounces
    if bounces.tls_rpt_rua:
        yield (f"_smtp._tls.{stream.return_path}", RecordType.TXT,
               (f"v=TLSRPTv1; rua={','.join(bounces.tls_rpt_rua)}",),
               f"TLS reporting for mail to {stream.return_path}", "RFC 8460 §3", _REC, stream.name, False)
    if bounces.mta_sts is not None:
        yield (f"_mta-sts.{stream.return_path}", RecordType.TXT, (f"v=STSv1; id={bounces.mta_sts.id}",),
               f"MTA-STS policy id for {stream.return_path} (policy served at https://mta-sts.{stream.return_path})",
               "RFC 8461 §3.1", _REC, stream.name, False)


def _plan_ips(ips: tuple[IpPlan, ...]) -> Iterator[_Draft]:
    for ip in ips:
        yield (ip.helo, RecordType.A, (ip.address,),
               f"forward DNS of {ip.name} ({ip.stream}/{ip.tier}), its HELO name",
               "FCrDNS: Gmail/Yahoo sender rules; RFC 5321 §4.1.1.1", _REQ, ip.stream, ip.placeholder)
        yield (ip.helo, RecordType.TXT, ("v=spf1 a -all",),
               f"SPF for the HELO identity of {ip.name}", "RFC 7208 §2.3 (HELO identity)", _REC, ip.stream, False)
        yield (ptr_name(ip.address), RecordType.PTR, (ip.helo,),
               f"reverse DNS of {ip.name}, forward-confirmed by its A record",
               "FCrDNS: Gmail/Yahoo sender rules; set on the Elastic IP", _REQ, ip.stream, ip.placeholder)


def _plan_hosts(hosts: tuple[HostPlan, ...], routes: tuple[RoutePlan, ...]) -> Iterator[_Draft]:
    targets = {name: route.name for route in reversed(routes) if route.kind == "hosts" for name in route.hosts}
    for host in hosts:
        if not host.inbound_address or not (host.accepts_bounces or host.name in targets):
            continue
        placeholder = host.inbound_address.startswith(("203.0.113.", "198.51.100.", "240."))
        if host.accepts_bounces:
            yield (host.fqdn, RecordType.A, (host.inbound_address,),
                   f"address of bounce host {host.name}, the return-path MX target",
                   "RFC 5321 §5.1 (MX targets need an address record, not a CNAME)", _REQ, None, placeholder)
        else:
            # A `hosts` route names its targets `[fqdn]:port` (mailinfra.mta.postfix/powermta _fallback):
            # brackets skip the MX lookup, so the sender looks up the name's A record and connects to it.
            yield (host.fqdn, RecordType.A, (host.inbound_address,),
                   f"address of {host.name}, the target of host route {targets[host.name]}",
                   "RFC 5321 §5.1 (an explicit [host] next hop needs an address record)", _REQ, None, placeholder)


def _ptr_address(name: str) -> str:
    octets = name.removesuffix(".in-addr.arpa").split(".")
    return ".".join(reversed(octets))


def _zone_of(name: str, zones: list[str]) -> str:
    matches = [z for z in zones if name == z or name.endswith("." + z)]
    if not matches:
        raise PlanError(f"{name}: no zone under dns.zones contains it (zones: {', '.join(zones)})")
    return max(matches, key=len)


def _check_unique(records: list[DnsRecord]) -> None:
    seen: dict[str, DnsRecord] = {}
    for record in records:
        if record.key in seen:
            raise PlanError(f"{record.key} is planned twice: {seen[record.key].purpose!r} and {record.purpose!r}")
        seen[record.key] = record


def check_imports(zones: Sequence[ZonePlan], records: Sequence[DnsRecord]) -> None:
    """Every dns.zones.<zone>.import_ids key names a record the plan creates in that zone (an import id
    for a record the program does not declare would never be used, and the live record never adopted)."""
    for zone in zones:
        planned = {r.key: r for r in records if r.zone == zone.name}
        for key, _ in zone.import_ids:
            record_key, _, value = key.partition(" ")
            record = planned.get(record_key)
            if record is None or (value and value not in record.values):
                known = ", ".join(sorted(planned)) or "(none)"
                raise PlanError(f"dns.zones.{zone.name}.import_ids: received {key!r}, expected a record key the "
                                f"plan creates in {zone.name} ({known}), a value after a space for one of its values")
