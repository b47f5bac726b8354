"""Stack -> Plan: the single place where names, addresses and records are derived."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections.abc import Callable

from mailinfra.dns.dkim import PLACEHOLDER_ED25519, PLACEHOLDER_RSA_SPKI
from mailinfra.dns.plan import check_imports, plan_records
from mailinfra.dns.zonefile import reverse_zone_name
from mailinfra.model.limits import max_ips_per_host
from mailinfra.model.load import Stack
from mailinfra.model.rules import ips_by_host, return_path_domain, stream_pools
from mailinfra.model.schema import Algorithm, HostsRoute, RelayRoute, SelectorState, SesRoute, StackConfig
from mailinfra.placement.seeds import plan_placement_schedule, plan_seeds
from mailinfra.plan.addresses import assign_placeholders
from mailinfra.plan.injection_ports import plan_injection_ports
from mailinfra.plan.isolation import plan_isolations
from mailinfra.plan.model import (
    DkimKeyPlan,
    HostPlan,
    IntakePlan,
    IpPlan,
    Plan,
    PoolPlan,
    RoutePlan,
    StreamPlan,
    WarmupSpec,
    ZonePlan,
)
from mailinfra.plan.monitoring import plan_monitoring
from mailinfra.warmup import plan_warmup

# SES sends from its own fleet; receivers authorize it through Amazon's published SPF record.
SES_SPF_INCLUDE = "amazonses.com"
_TIER_ORDER = {"default": 0, "active": 0, "winback": 1, "cold": 2}


def build_plan(stack: Stack, as_of: dt.date | None = None) -> Plan:
    """Derive every stream, pool, IP, host, route, key and DNS record of one stack."""
    config = stack.config
    day = as_of or dt.date.today()
    streams = _plan_streams(config)
    pools = _plan_pools(config)
    ips = _plan_ips(config, {s.name: s for s in streams}, {p.name: p for p in pools})
    hosts = _plan_hosts(config, ips, streams)
    routes = _plan_routes(config)
    keys = _plan_dkim_keys(config, streams)
    zones = _plan_zones(config, ips)
    records = plan_records(config, streams=streams, ips=ips, hosts=hosts, routes=routes, keys=keys, zones=zones)
    check_imports(zones, records)
    placeholders = _describe_placeholders(ips, keys, routes)
    return Plan(
        stack=stack.name,
        environment=stack.environment,
        source=stack.source,
        as_of=day,
        dns_provider=str(config.dns.provider),
        ttl_seconds=config.dns.ttl_seconds,
        streams=streams,
        pools=pools,
        ips=ips,
        hosts=hosts,
        routes=routes,
        dkim_keys=keys,
        zones=zones,
        records=records,
        placeholders=placeholders,
        warmup=plan_warmup(ips, streams, config.warmup_schedules, day),
        isolations=plan_isolations(config.isolations, streams, ips),
        intake=plan_intake(config),
        monitoring=plan_monitoring(config.monitoring),
        seeds=plan_seeds(config),
        placement=plan_placement_schedule(config),
    )


def plan_dates(stack: Stack) -> Callable[[dt.date], Plan]:
    """`build_plan(stack, day)` for many days (warmup calendars): only the warmup, the one part of the plan
    that depends on the day, is recomputed; records, names and addresses are derived once."""
    base = build_plan(stack)

    @functools.cache
    def plan_at(day: dt.date) -> Plan:
        warmup = plan_warmup(base.ips, base.streams, stack.config.warmup_schedules, day)
        return dataclasses.replace(base, as_of=day, warmup=warmup)

    return plan_at


def plan_intake(config: StackConfig) -> IntakePlan:
    """The stack's intake settings. `bounces.fbl_addresses` (and the older single `fbl_mailbox`) are
    where FBL reports arrive; `bounces.suppression` the policy and the store (defaults: sqlite)."""
    bounces = config.bounces
    policy = bounces.suppression.model_dump(mode="json")
    return IntakePlan(fbl_addresses=tuple(bounces.feedback_addresses), store=str(bounces.suppression.store),
                      policy=tuple(sorted(policy.items())))


def _plan_streams(config: StackConfig) -> tuple[StreamPlan, ...]:
    result = []
    for name, stream in config.streams.items():
        selectors = config.domains[stream.domain].dkim.selectors
        active = {sel.algorithm is Algorithm.ED25519: key for key, sel in selectors.items()
                  if sel.state is SelectorState.ACTIVE}
        tiers = sorted(stream_pools(stream).items(), key=lambda item: _TIER_ORDER[item[0]])
        result.append(StreamPlan(
            name=name,
            kind=str(stream.kind),
            org_domain=stream.domain,
            sending_domain=f"{stream.subdomain}.{stream.domain}",
            return_path=return_path_domain(stream),
            pools=tuple(tiers),
            route=stream.route,
            dkim_selector=active[False],
            ed25519_selector=active.get(True),
            one_click_unsubscribe=stream.one_click_unsubscribe,
            previous_names=tuple(stream.previous_names),
            fallback_on=stream.fallback_conditions(),
            queue_lifetime_seconds=stream.queue_lifetime_seconds,
            injectors=tuple(stream.injectors),
        ))
    return tuple(result)


def _plan_pools(config: StackConfig) -> tuple[PoolPlan, ...]:
    owner = {pool: (name, tier) for name, stream in config.streams.items()
             for tier, pool in stream_pools(stream).items()}
    ports = plan_injection_ports({name: (pool.previous_names[0] if pool.previous_names else name,
                                         pool.injection_port) for name, pool in config.pools.items()})
    return tuple(
        PoolPlan(name=name, stream=owner[name][0], tier=owner[name][1],
                 kind=str(config.streams[owner[name][0]].kind), hosts=tuple(pool.hosts),
                 ips=tuple(sorted(pool.ips)), previous_names=tuple(pool.previous_names),
                 injection_port=ports[name])
        for name, pool in config.pools.items()
    )


def _plan_ips(config: StackConfig, streams: dict[str, StreamPlan],
              pools: dict[str, PoolPlan]) -> tuple[IpPlan, ...]:
    real = [ip.address for pool in config.pools.values() for ip in pool.ips.values() if ip.address]
    new = [name for pool in config.pools.values() for name, ip in pool.ips.items() if ip.address is None]
    stand_ins = assign_placeholders(new, real)
    result = []
    for pool_name, pool in config.pools.items():
        owner = pools[pool_name]
        stream = streams[owner.stream]
        for ip_name, ip in sorted(pool.ips.items()):
            warmup = ip.warmup or pool.warmup
            assert warmup is not None  # rules guarantee a warmup on the IP or its pool
            result.append(IpPlan(
                name=ip_name,
                pool=pool_name,
                stream=owner.stream,
                tier=owner.tier,
                host=ip.host or pool.hosts[0],
                address=ip.address or stand_ins[ip_name],
                placeholder=ip.address is None,
                adopted=ip.adopted,
                allocation_id=ip.allocation_id,
                # The HELO name sits under the stream's own sending domain so the IP's forward and
                # reverse DNS carry that stream's identity (and nothing of another stream's).
                helo=ip.helo or f"{ip_name}.{stream.sending_domain}",
                warmup=WarmupSpec(warmed=warmup.warmed, start=warmup.start,
                                  schedule=None if warmup.warmed else warmup.schedule),
                previous_names=tuple(ip.previous_names),
            ))
    return tuple(result)


def _plan_hosts(config: StackConfig, ips: tuple[IpPlan, ...],
                streams: tuple[StreamPlan, ...]) -> tuple[HostPlan, ...]:
    infra = config.dns.infra_domain or sorted(config.domains)[0]
    carried = ips_by_host(config)
    by_name = {ip.name: ip for ip in ips}
    result = []
    for name, host in config.hosts.items():
        names = sorted(ip for _, ip in carried.get(name, []))
        on_host = {by_name[n].stream for n in names}
        limit = max_ips_per_host(host.instance_type)
        assert limit is not None  # rules reject unknown instance types
        result.append(HostPlan(
            name=name,
            mta=str(host.mta),
            instance_type=host.instance_type,
            availability_zone=host.availability_zone,
            subnet_id=host.subnet_id,
            injection_cidrs=tuple(host.injection_cidrs),
            fqdn=host.fqdn or f"{name}.{infra}",
            inbound_address=by_name[names[0]].address if names else "",
            ips=tuple(names),
            streams=tuple(s.name for s in streams if s.name in on_host),
            accepts_bounces=name in config.bounces.hosts,
            tls=host.tls,
            address_salt=host.address_salt,
            bootstrap=host.bootstrap,
            max_ips=limit,
        ))
    return tuple(result)


def _plan_routes(config: StackConfig) -> tuple[RoutePlan, ...]:
    result = []
    for name, route in config.routes.items():
        users = tuple(s for s, stream in config.streams.items() if stream.route == name)
        if isinstance(route, RelayRoute):
            result.append(RoutePlan(name, "relay", route.host, route.port, route.username,
                                    route.password_secret, None, (), route.spf_include, users))
        elif isinstance(route, SesRoute):
            # SES SMTP endpoint (SES Developer Guide, "Connecting to an Amazon SES SMTP endpoint").
            result.append(RoutePlan(name, "ses", f"email-smtp.{route.region}.amazonaws.com", route.port,
                                    None, None, route.region, (), SES_SPF_INCLUDE, users))
        elif isinstance(route, HostsRoute):
            result.append(RoutePlan(name, "hosts", None, 25, None, None, None, tuple(route.hosts), None, users))
    return tuple(result)


def _plan_dkim_keys(config: StackConfig, streams: tuple[StreamPlan, ...]) -> tuple[DkimKeyPlan, ...]:
    result = []
    for domain_name, domain in config.domains.items():
        signing = tuple(s.sending_domain for s in streams if s.org_domain == domain_name)
        for selector, sel in domain.dkim.selectors.items():
            ed = sel.algorithm is Algorithm.ED25519
            placeholder = sel.public_key is None
            key = "".join(sel.public_key.split()) if sel.public_key else (
                PLACEHOLDER_ED25519 if ed else PLACEHOLDER_RSA_SPKI)
            result.append(DkimKeyPlan(domain_name, selector, str(sel.algorithm), str(sel.state), key,
                                      placeholder, signing))
    return tuple(result)


def _plan_zones(config: StackConfig, ips: tuple[IpPlan, ...]) -> tuple[ZonePlan, ...]:
    provider = str(config.dns.provider)
    if config.dns.zones:
        forward = [ZonePlan(name, provider, zone.zone_id, False, str(zone.adopt),
                            tuple(sorted(zone.import_ids.items()))) for name, zone in config.dns.zones.items()]
    else:
        forward = [ZonePlan(name, provider, None, False) for name in config.domains]
    # PTRs live in AWS's reverse zones, set per EIP (EipDomainName); the preview still writes them
    # as zone files so they can be checked and served in the lab.
    reverse = sorted({reverse_zone_name(ip.address) for ip in ips})
    return tuple(sorted(forward, key=lambda z: z.name)) + tuple(
        ZonePlan(name, "aws-eip-ptr", None, True) for name in reverse)


def _describe_placeholders(ips: tuple[IpPlan, ...], keys: tuple[DkimKeyPlan, ...],
                           routes: tuple[RoutePlan, ...]) -> tuple[str, ...]:
    notes = []
    new = [ip.name for ip in ips if ip.placeholder]
    if new:
        notes.append(f"{len(new)} new Elastic IPs use documentation-range stand-in addresses "
                     "(RFC 5737) until `pulumi up` allocates them")
    for key in keys:
        if key.placeholder and key.published:
            notes.append(f"DKIM {key.selector}._domainkey ({key.domain}) uses the preview placeholder key: "
                         "run `mailinfra dkim keygen` and put its public key in the stack")
    notes.extend(f"route {r.name}: password is the Pulumi secret mailinfra:{r.password_secret}, "
                 "shown as a placeholder" for r in routes if r.password_secret)
    return tuple(notes)
