"""Rules that relate one part of a topology to another (the schema checks each part alone).

Each rule returns Problems instead of raising so one load reports every problem at once.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from mailinfra.errors import Described
from mailinfra.model.limits import PRIVATE_IPV4_PER_ENI, max_ips_per_host
from mailinfra.model.places import check_places
from mailinfra.model.problem import Problem
from mailinfra.model.schema import (
    Algorithm,
    HostsRoute,
    RelayRoute,
    SelectorState,
    StackConfig,
    Stream,
    StreamKind,
)

# Built-in warmup schedules (mailinfra.warmup holds their tables); custom ones come from config.
BUILTIN_SCHEDULES = ("conservative", "standard", "aggressive", "transactional")


def check_topology(config: StackConfig, *, plain_keys: frozenset[str] = frozenset(),
                   region: str | None = None) -> list[Problem]:
    """Every cross-reference rule, in a stable order. `region`: the stack's AWS region, when known."""

    checks = (
        _check_stream_references,
        _check_pool_hosts,
        _check_pool_ownership,
        _check_subdomains,
        _check_return_paths,
        _check_ips_unique,
        _check_injection_ports,
        _check_previous_names,
        _check_legacy_ip_names,
        _check_host_capacity,
        _check_warmup,
        _check_routes,
        _check_bounces,
        _check_injectors,
        _check_dkim,
        _check_zones,
        _check_isolations,
        _check_seeds,
    )
    problems = [p for check in checks for p in check(config)]
    problems.extend(check_places(config, region))
    problems.extend(_check_secrets(config, plain_keys))
    return problems


def stream_pools(stream: Stream) -> dict[str, str]:
    """tier -> pool ("default" for transactional and bulk streams)."""
    if stream.tiers is not None:
        return {tier: pool for tier, pool in stream.tiers.model_dump().items() if pool is not None}
    assert stream.pool is not None  # the schema guarantees pool or tiers
    return {"default": stream.pool}


def _one_of(names: Any) -> str:
    listed = sorted(names)
    return f"one of {', '.join(listed)}" if listed else "a declared name (none are declared)"


def _check_stream_references(config: StackConfig) -> Iterator[Problem]:
    for name, stream in config.streams.items():
        if stream.domain not in config.domains:
            yield Problem(("streams", name, "domain"), stream.domain,
                          f"a domain under domains: {_one_of(config.domains)}")
        for tier, pool in stream_pools(stream).items():
            if pool not in config.pools:
                yield Problem(_pool_path(name, tier), pool, f"a pool under pools: {_one_of(config.pools)}")
        if stream.route is not None and stream.route not in config.routes:
            yield Problem(("streams", name, "route"), stream.route, f"a route under routes: {_one_of(config.routes)}")


def _check_pool_hosts(config: StackConfig) -> Iterator[Problem]:
    for pool_name, pool in config.pools.items():
        for i, host in enumerate(pool.hosts):
            if host not in config.hosts:
                yield Problem(("pools", pool_name, "hosts", i), host, f"a host under hosts: {_one_of(config.hosts)}")
        for ip_name, ip in pool.ips.items():
            if ip.host is None and len(pool.hosts) > 1:
                yield Problem(("pools", pool_name, "ips", ip_name, "host"), Described("nothing"),
                              f"the host this IP lives on ({_one_of(pool.hosts)}): the pool spans several hosts")
            elif ip.host is not None and ip.host not in pool.hosts:
                yield Problem(("pools", pool_name, "ips", ip_name, "host"), ip.host,
                              f"one of the pool's hosts ({', '.join(pool.hosts)})")


def _check_pool_ownership(config: StackConfig) -> Iterator[Problem]:
    """A pool carries exactly one stream tier: reputation must never be shared across traffic."""
    users: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for name, stream in config.streams.items():
        for tier, pool in stream_pools(stream).items():
            users[pool].append((name, tier))
    # A misspelt or re-pointed reference leaves its intended pool unused; the reference itself is
    # already reported, so the unused pool would be the same mistake twice.
    misdirected = any(pool not in config.pools or len(owners) > 1 for pool, owners in users.items())
    for pool_name in config.pools:
        owners = users.get(pool_name, [])
        if not owners and not misdirected:
            yield Problem(("pools", pool_name), Described("a pool no stream uses"),
                          "every pool to carry one stream tier (remove it or name it in a stream)")
        first, first_tier = owners[0] if owners else ("", "")
        for second, second_tier in owners[1:]:
            path = _pool_path(second, second_tier)
            kinds = {config.streams[first].kind, config.streams[second].kind}
            if StreamKind.TRANSACTIONAL in kinds and len(kinds) > 1:
                other = next(iter(kinds - {StreamKind.TRANSACTIONAL}))
                yield Problem(path, pool_name,
                              f"a pool of its own: {pool_name} already carries {config.streams[first].kind} "
                              f"stream {first}, and transactional mail never shares IPs with {other} mail "
                              "(traffic separation)")
            else:
                yield Problem(path, pool_name,
                              f"a pool of its own: {pool_name} already carries {first}/{first_tier} "
                              "(one pool per stream and engagement tier)")


def _pool_path(stream: str, tier: str) -> tuple[str, ...]:
    return ("streams", stream, "pool") if tier == "default" else ("streams", stream, "tiers", tier)


def _sending_domain(stream: Stream) -> str:
    return f"{stream.subdomain}.{stream.domain}"


def return_path_domain(stream: Stream) -> str:
    """The envelope MAIL FROM domain; a trailing dot in config marks an absolute name."""
    if stream.return_path.endswith("."):
        return stream.return_path.rstrip(".")
    return f"{stream.return_path}.{stream.domain}"


def _check_subdomains(config: StackConfig) -> Iterator[Problem]:
    owner: dict[str, str] = {}
    for name, stream in config.streams.items():
        for key, fqdn in (("subdomain", _sending_domain(stream)), ("return_path", return_path_domain(stream))):
            other = owner.get(fqdn)
            if other is not None and other != name:
                kinds = {stream.kind, config.streams[other].kind}
                if StreamKind.TRANSACTIONAL in kinds and len(kinds) > 1:
                    mixed = next(iter(kinds - {StreamKind.TRANSACTIONAL}))
                    expected = (f"a subdomain of its own: {fqdn} is already used by {config.streams[other].kind} "
                                f"stream {other}, and transactional mail never shares a domain with {mixed} mail")
                else:
                    expected = f"a subdomain of its own: {fqdn} is already used by stream {other}"
                yield Problem(("streams", name, key), getattr(stream, key), expected)
            owner.setdefault(fqdn, name)


def _check_return_paths(config: StackConfig) -> Iterator[Problem]:
    for name, stream in config.streams.items():
        domain = return_path_domain(stream)
        if domain != stream.domain and not domain.endswith("." + stream.domain):
            # RFC 7489 §3.1.2: SPF aligns only when MAIL FROM shares the From's organizational domain.
            yield Problem(("streams", name, "return_path"), stream.return_path,
                          f"a name under {stream.domain} (SPF must align with the From domain for DMARC)")


def _check_injection_ports(config: StackConfig) -> Iterator[Problem]:
    """A declared injection port is one pool's: the apps connect by port (mailinfra/plan/injection_ports.py).
    The schema keeps it at 1024 and above, clear of the primary instance's 25, 465 and 587."""
    seen: dict[int, str] = {}
    for name, pool in config.pools.items():
        port = pool.injection_port
        if port is not None and port in seen:
            yield Problem(("pools", name, "injection_port"), port,
                          f"a port no other pool uses (pool {seen[port]} has it)")
        elif port is not None:
            seen[port] = name


def _check_ips_unique(config: StackConfig) -> Iterator[Problem]:
    seen_names: dict[str, str] = {}
    seen_addresses: dict[str, tuple[str, str]] = {}
    for pool_name, pool in config.pools.items():
        for ip_name, ip in pool.ips.items():
            if ip_name in seen_names:
                yield Problem(("pools", pool_name, "ips", ip_name), ip_name,
                              f"an IP name used once: it is already in pool {seen_names[ip_name]}")
            seen_names.setdefault(ip_name, pool_name)
            if ip.address is not None:
                if ip.address in seen_addresses:
                    other_pool, other_ip = seen_addresses[ip.address]
                    yield Problem(("pools", pool_name, "ips", ip_name, "address"), ip.address,
                                  f"an address in one pool only: it is already {other_pool}/{other_ip}")
                seen_addresses.setdefault(ip.address, (pool_name, ip_name))


def _check_previous_names(config: StackConfig) -> Iterator[Problem]:
    """A former pool or IP name is an alias of exactly one current pool or IP: one that is still in use,
    or that two of them claim, would let Pulumi hand one's EIP to another (components/ip_pool.py)."""
    pools = {name: list(pool.previous_names) for name, pool in config.pools.items()}
    ips = {name: (pool_name, list(ip.previous_names))
           for pool_name, pool in config.pools.items() for name, ip in pool.ips.items()}
    claimed: dict[str, str] = {}
    for name, previous in pools.items():
        for old in previous:
            path: tuple[str, ...] = ("pools", name, "previous_names")
            if old in pools:
                yield Problem(path, old, f"a name no pool has now: pool {old} exists")
            elif old in claimed:
                yield Problem(path, old, f"a former name of one pool only: pool {claimed[old]} lists it too")
            claimed.setdefault(old, name)
    claimed = {}
    for name, (pool_name, previous) in ips.items():
        for old in previous:
            path = ("pools", pool_name, "ips", name, "previous_names")
            if old in ips:
                yield Problem(path, old, f"a name no IP has now: IP {old} exists in pool {ips[old][0]}")
            elif old in claimed:
                yield Problem(path, old, f"a former name of one IP only: IP {claimed[old]} lists it too")
            claimed.setdefault(old, name)


def _check_legacy_ip_names(config: StackConfig) -> Iterator[Problem]:
    """Every IP's resources alias their legacy names `pool-<pool>-<ip>` under every pool name of the stack,
    current or previous (components/ip_pool.former_prefixes). Names with hyphens can spell one legacy name
    twice (pool `a` + IP `b-c`, pool `a-b` + IP `c`): two resources aliased to one URN, which the engine
    refuses, or one IP's EIP state handed to another. Judged only once the previous names are sound."""
    if any(True for _ in _check_previous_names(config)):
        return
    pool_names = sorted({n for name, pool in config.pools.items() for n in (name, *pool.previous_names)})
    spelled: dict[str, tuple[str, str]] = {}
    for pool_name, pool in config.pools.items():
        for ip_name, ip in pool.ips.items():
            for old_pool in pool_names:
                for old_ip in (ip_name, *ip.previous_names):
                    legacy = f"pool-{old_pool}-{old_ip}"
                    other = spelled.setdefault(legacy, (ip_name, f"pool {old_pool} and IP {old_ip}"))
                    if other[0] != ip_name:
                        yield Problem(("pools", pool_name, "ips", ip_name), ip_name,
                                      f"an IP name whose legacy resource name {legacy} no other IP spells: "
                                      f"IP {other[0]} does ({other[1]})")
                        return


def ips_by_host(config: StackConfig) -> dict[str, list[tuple[str, str]]]:
    """host -> [(pool, ip)] for every sending IP."""
    result: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for pool_name, pool in config.pools.items():
        for ip_name, ip in pool.ips.items():
            host = ip.host or pool.hosts[0]
            result[host].append((pool_name, ip_name))
    return result


def _check_host_capacity(config: StackConfig) -> Iterator[Problem]:
    carried = ips_by_host(config)
    for host_name, host in config.hosts.items():
        limit = max_ips_per_host(host.instance_type)
        if limit is None:
            yield Problem(("hosts", host_name, "instance_type"), host.instance_type,
                          f"a supported instance type ({len(PRIVATE_IPV4_PER_ENI)} known, e.g. c6i.large, m6i.xlarge)")
            continue
        ips = carried.get(host_name, [])
        if len(ips) > limit:
            pools = sorted({p for p, _ in ips})
            yield Problem(("hosts", host_name, "instance_type"), host.instance_type,
                          f"a type that carries {len(ips)} IPs (pools {', '.join(pools)}): "
                          f"{host.instance_type} allows {limit} private IPv4 addresses per ENI")


def _check_warmup(config: StackConfig) -> Iterator[Problem]:
    known = set(BUILTIN_SCHEDULES) | set(config.warmup_schedules)
    for pool_name, pool in config.pools.items():
        if pool.warmup is not None and not pool.warmup.warmed and pool.warmup.schedule not in known:
            yield Problem(("pools", pool_name, "warmup", "schedule"), pool.warmup.schedule,
                          f"a warmup schedule: {_one_of(known)}")
        unplanned = [ip_name for ip_name, ip in pool.ips.items() if ip.warmup is None and pool.warmup is None]
        if unplanned:
            which = "any of its IPs" if len(unplanned) == len(pool.ips) else f"IPs {', '.join(unplanned)}"
            yield Problem(("pools", pool_name, "warmup"), Described(f"no warmup for {which}"),
                          "warmup on the pool or on each IP: {start: YYYY-MM-DD, schedule: NAME} or {warmed: true}")
        for ip_name, ip in pool.ips.items():
            if ip.warmup is not None and not ip.warmup.warmed and ip.warmup.schedule not in known:
                yield Problem(("pools", pool_name, "ips", ip_name, "warmup", "schedule"), ip.warmup.schedule,
                              f"a warmup schedule: {_one_of(known)}")


def _check_routes(config: StackConfig) -> Iterator[Problem]:
    carried = ips_by_host(config)
    for route_name, route in config.routes.items():
        if isinstance(route, HostsRoute):
            for i, host in enumerate(route.hosts):
                if host not in config.hosts:
                    yield Problem(("routes", route_name, "hosts", i), host,
                                  f"a host under hosts: {_one_of(config.hosts)}")
                elif not carried.get(host):
                    yield Problem(("routes", route_name, "hosts", i), host,
                                  "a host that carries at least one sending IP (a route host needs an address)")
    owners = {pool: s for s, st in config.streams.items() for pool in stream_pools(st).values()}
    for name, stream in config.streams.items():
        fallback = config.routes.get(stream.route) if stream.route else None
        if not isinstance(fallback, HostsRoute):
            continue
        pools = [pool for pool in stream_pools(stream).values() if pool in config.pools]
        primary = {host for pool in pools for host in config.pools[pool].hosts}
        carried_pools = {h: {pool for pool, _ in carried.get(h, [])} for h in fallback.hosts}
        missing = sorted(f"{h} ({', '.join(p for p in pools if p not in carried_pools[h])})"
                         for h in fallback.hosts if any(p not in carried_pools[h] for p in pools))
        if missing:
            # Overflow leaves from the same stream and tier (mailinfra.mta.powermta.plan_route_peer_pools):
            # a route host without the pool would put a cold tier or another brand on foreign reputation.
            yield Problem(("streams", name, "route"), stream.route,
                          f"route hosts that carry an IP of each of the stream's pools "
                          f"({', '.join(missing)} lack one): overflow stays in its stream and tier")
        elif primary and primary <= set(fallback.hosts):
            # Route hosts take overflow and never reroute it (no A -> B -> A): one of the stream's hosts
            # must be outside the route, or nothing ever overflows.
            yield Problem(("streams", name, "route"), stream.route,
                          "a route that leaves out at least one of the stream's hosts (route hosts never reroute)")
        transactional = stream.kind is StreamKind.TRANSACTIONAL
        mixed = sorted({h for h in fallback.hosts for pool, _ in carried.get(h, [])
                        if pool in owners and (config.streams[owners[pool]].kind is StreamKind.TRANSACTIONAL)
                        != transactional})
        if mixed:
            # Fallback mail leaves from the route hosts' IPs: transactional and bulk reputation must never mix.
            yield Problem(("streams", name, "route"), stream.route,
                          f"a route whose hosts carry no {'marketing or bulk' if transactional else 'transactional'} "
                          f"IPs ({', '.join(mixed)} do): traffic separation holds on the fallback path too")


def _check_bounces(config: StackConfig) -> Iterator[Problem]:
    carried = ips_by_host(config)
    for i, host in enumerate(config.bounces.hosts):
        if host not in config.hosts:
            yield Problem(("bounces", "hosts", i), host, f"a host under hosts: {_one_of(config.hosts)}")
        elif not carried.get(host):
            yield Problem(("bounces", "hosts", i), host,
                          "a host that carries at least one IP (the MX needs an address)")


def _check_injectors(config: StackConfig) -> Iterator[Problem]:
    """A stream's injectors lie inside the injection networks of every host its pools run on: those are the
    host's outer bound (and a VPC route to the host); an injector outside them could never reach it."""
    for name, stream in config.streams.items():
        hosts = sorted({h for pool in stream_pools(stream).values() if pool in config.pools
                        for h in config.pools[pool].hosts if h in config.hosts})
        for i, cidr in enumerate(stream.injectors):
            network = ipaddress.IPv4Network(cidr)
            outside = [h for h in hosts if not any(network.subnet_of(ipaddress.IPv4Network(c))
                                                   for c in config.hosts[h].injection_cidrs)]
            if outside:
                allowed = ", ".join(sorted({c for h in outside for c in config.hosts[h].injection_cidrs}))
                yield Problem(("streams", name, "injectors", i), cidr,
                              f"a network inside the injection_cidrs of host {', '.join(outside)} ({allowed})")


def _check_dkim(config: StackConfig) -> Iterator[Problem]:
    for domain_name, domain in config.domains.items():
        rsa_active = [s for s, sel in domain.dkim.selectors.items()
                      if sel.state is SelectorState.ACTIVE and sel.algorithm is not Algorithm.ED25519]
        ed_active = [s for s, sel in domain.dkim.selectors.items()
                     if sel.state is SelectorState.ACTIVE and sel.algorithm is Algorithm.ED25519]
        if len(rsa_active) != 1:
            yield Problem(("domains", domain_name, "dkim", "selectors"),
                          Described(f"{len(rsa_active)} active RSA selectors ({', '.join(rsa_active) or 'none'})"),
                          "exactly one active RSA selector (others pending, retiring or retired)")
        if len(ed_active) > 1:
            yield Problem(("domains", domain_name, "dkim", "selectors"),
                          Described(f"{len(ed_active)} active Ed25519 selectors ({', '.join(ed_active)})"),
                          "at most one active Ed25519 selector (others pending, retiring or retired)")
        for selector, sel in domain.dkim.selectors.items():
            if sel.public_key is not None:
                problem = _public_key_problem(sel.public_key, sel.algorithm)
                if problem:
                    yield Problem(("domains", domain_name, "dkim", "selectors", selector, "public_key"),
                                  sel.public_key, problem)


def _public_key_problem(text: str, algorithm: Algorithm) -> str | None:
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    try:
        der = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        return "base64 text of the public key"
    if algorithm is Algorithm.ED25519:
        if len(der) != 32:
            return "the raw 32-byte Ed25519 public key in base64 (RFC 8463 §4.2)"
        ed25519.Ed25519PublicKey.from_public_bytes(der)
        return None
    try:
        key = load_der_public_key(der)
    except ValueError:
        return "an RSA public key as base64 SubjectPublicKeyInfo (the p= value, RFC 6376 §3.6.1)"
    bits = int(algorithm.value.split("-")[1])
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size != bits:
        size = key.key_size if isinstance(key, rsa.RSAPublicKey) else "non-RSA"
        return f"an RSA key of {bits} bits for {algorithm.value} (this one is {size})"
    return None


def _check_zones(config: StackConfig) -> Iterator[Problem]:
    if not config.dns.zones:
        return
    for domain in config.domains:
        if not any(domain == zone or domain.endswith("." + zone) for zone in config.dns.zones):
            yield Problem(("dns", "zones"), Described(f"no zone containing {domain}"),
                          f"a zone for every domain ({domain} or a parent of it)")


def _check_secrets(config: StackConfig, plain_keys: frozenset[str]) -> Iterator[Problem]:
    """A relay password written in plain text would land in git: it must be a Pulumi secret."""
    for route_name, route in config.routes.items():
        if isinstance(route, RelayRoute) and route.password_secret in plain_keys:
            # The problem is the plain value itself (never echoed), not the route that names it.
            yield Problem((route.password_secret,), Described("a plain-text password"),
                          f"a Pulumi secret that route {route_name} reads its password from: "
                          f"pulumi config set --secret mailinfra:{route.password_secret} ...")
    for seed_name, seed in config.monitoring.seeds.items():
        if seed.password_secret in plain_keys:
            yield Problem((seed.password_secret,), Described("a plain-text password"),
                          f"a Pulumi secret that seed {seed_name} reads its IMAP password from: "
                          f"pulumi config set --secret mailinfra:{seed.password_secret} ...")


def _check_seeds(config: StackConfig) -> Iterator[Problem]:
    """A seed belongs to a provider the plan knows (placement is reported per pool x provider), one mailbox
    is one seed, and its password is a Pulumi secret (checked with the other secrets)."""
    from mailinfra.warmup import PROVIDERS

    seen: dict[str, str] = {}
    for name, seed in config.monitoring.seeds.items():
        path: tuple[str, ...] = ("monitoring", "seeds", name)
        if seed.provider not in PROVIDERS:
            yield Problem((*path, "provider"), seed.provider, f"a receiving provider: {', '.join(PROVIDERS)}")
        address = seed.address.lower()
        if address in seen:
            yield Problem((*path, "address"), seed.address, f"a mailbox no other seed uses (seed {seen[address]} "
                          "has it: two seeds would read each other's probes)")
        seen.setdefault(address, name)


def _check_isolations(config: StackConfig) -> Iterator[Problem]:
    """Every isolation names a pool or IP that exists, a known provider, and an alternative that can carry the
    mail: a pool's goes to its stream's secondary route; an IP's to its pool's other IPs (or the route)."""
    from mailinfra.plan.isolation import parse_target
    from mailinfra.warmup import PROVIDERS

    ip_pool = {ip: pool for pool, spec in config.pools.items() for ip in spec.ips}
    owners = {pool: name for name, st in config.streams.items() for pool in stream_pools(st).values()}
    isolated_ips = {parse_target(t)[1] for t in config.isolations if t.startswith("ip:")}
    for target, spec in config.isolations.items():
        path: tuple[str, ...] = ("isolations", target)
        kind, name, provider = parse_target(target)
        known = config.pools if kind == "pool" else ip_pool
        if name not in known:
            yield Problem(path, target, f"a {kind} of this stack after `{kind}:` ({_one_of(known)})")
            continue
        if provider is not None and provider not in PROVIDERS:
            yield Problem(path, target, f"a provider after `@`: {', '.join(PROVIDERS)}")
        pool = name if kind == "pool" else ip_pool[name]
        stream_name = owners.get(pool)
        if stream_name is None:
            continue  # a pool no stream uses: reported by _check_pool_ownership
        to = spec.to.value if spec.to else ("route" if kind == "pool" else "siblings")
        if kind == "pool" and to == "siblings":
            yield Problem((*path, "to"), to, "route for a pool (siblings are the other IPs of a pool: use ip:<ip>)")
        elif to == "route" and not config.streams[stream_name].route:
            yield Problem((*path, "to"), to, f"a stream with a secondary route: stream {stream_name} has none "
                          "(declare streams.<s>.route, or isolate single IPs to their siblings)")
        elif to == "siblings" and not (set(config.pools[pool].ips) - isolated_ips):
            yield Problem((*path, "to"), to, f"a pool with an IP left in rotation: every IP of pool {pool} is "
                          "isolated (isolate the pool to its route instead)")
