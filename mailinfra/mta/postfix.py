"""Postfix for one host: a primary instance (inbound bounces) and one postmulti instance per stream pool.

Why one instance per pool (docs/architecture.md, "Postfix: one instance per stream"): Postfix picks a
transport either by recipient (`transport_maps`) or by sender (`sender_dependent_default_transport_maps`),
and the recipient choice wins. Per-stream source IPs and per-provider limits at once therefore need the
sender to be fixed before the transport lookup: each instance carries exactly one pool's mail (the app
injects on the pool's port), its `transport_maps` choose the provider, and every transport it can pick
binds to one of that pool's addresses.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from mailinfra.errors import PlanError
from mailinfra.mta import enforcement, intake
from mailinfra.mta.files import RenderedFile, render_template, rendered, secret_placeholder
from mailinfra.mta.opendkim import plan_milters
from mailinfra.mta.replies import render_reply_filter, render_status_filter
from mailinfra.mta.resolver import render_resolver
from mailinfra.placement.render import render_placement
from mailinfra.plan.model import (
    HostPlan,
    IpLimits,
    IsolationPlan,
    Plan,
    PoolPlan,
    ProviderLimit,
    RoutePlan,
    StreamPlan,
)
from mailinfra.warmup import PROVIDER_DOMAINS, PROVIDERS

# The app injects a pool's mail on its own port, the same on every host: the pool's injection_port
# (mailinfra/plan/injection_ports.py; it was INJECTION_PORT_BASE + the pool's position in the stack file).
INJECTION_PORT_BASE = 10025

# Timeouts follow what receivers do, not the benchmark (docs/BENCHMARKS.md, "Failover time"):
# - connect: a SYN that gets no answer is retransmitted after 1 s, then 2 s, then 4 s (RFC 6298 §2.1, §5.5:
#   initial RTO 1 s, doubled each time); 10 s lets a connection survive two lost SYNs before the host counts
#   as down (Postfix's default is 30 s).
# - greeting: postscreen(8) holds every new client for postscreen_greet_wait = 6 s before the real
#   server greets (postconf(5)), and other receivers delay the banner on purpose; RFC 5321 §4.5.3.2.1 allows
#   5 minutes. 15 s is 2.5x postscreen's wait: a receiver running postscreen is slow, not down, while a
#   silent host still moves mail to the route in seconds.
SMTP_CONNECT_TIMEOUT = "10s"
SMTP_HELO_TIMEOUT = "15s"
REPLY_FILTER_FILE = "reply_filter"
STATUS_FILTER_FILE = "delivery_status_filter"

# Weighted rotation: a randmap picks each of its entries with equal probability (postconf(5), "randmap"),
# so a transport listed n times gets n shares. Postfix never moves rate-delayed mail to another transport,
# so the split must match the IPs' caps at assignment time. At most this many entries per provider: an IP
# whose share of the pool's provider rate is below about 1/ROTATION_SLOTS gets no entry that day (its
# transport is deferred for that provider rather than handed more than its cap; its backlog would stall
# the instance's active queue).
ROTATION_SLOTS = 40

# Incident isolation (mailinfra.plan.isolation): the master.cf service that carries an isolated share to the
# stream's secondary route. No `_` so it never collides with a `<ip>_<provider>` transport.
ROUTE_TRANSPORT = "route"

# Verified TLS towards a relay or SES (credentials cross it): Postfix reads no trust store unless told
# (tls_append_default_CA = no since 2.8); Debian's ca-certificates bundle is the system's.
CA_FILE = "/etc/ssl/certs/ca-certificates.crt"

# How long an idle SMTP connection to a receiver is kept for the next message (smtp(8) and scache(8) both
# cap it: smtp_connection_cache_time_limit, connection_cache_ttl_limit, 2 s by default). A warmed IP's
# rate delay is 3-8 s, so at 2 s every paced message paid a new TCP + TLS handshake; above the delay the
# connection is still there. RFC 5321 §4.5.3.2.7 gives the server 5 minutes before it may drop an idle
# client, so 10 s idle is well inside what receivers accept.
CONNECTION_CACHE_SECONDS = 10

# With a rate delay, postconf(5) advises a failed-cohort limit of 10 so one handshake error does not
# defer the whole destination.
FAILED_COHORT_LIMIT = 10

# The bounce MX's STARTTLS certificate (key and chain in one file, smtpd_tls_chain_files). Generated on the
# host at first boot by mailinfra-apply-config (manifest `certificates`): the private key never leaves the
# host (no secret in the plan, the bundle or SSM), and the senders that deliver bounces and complaints use
# opportunistic TLS (RFC 7435; Postfix `may`, Gmail, Microsoft), which encrypts without verifying. A
# CA-signed certificate is what MTA-STS `enforce` would need (mailinfra.model.schema.MtaSts).
INBOUND_CERTIFICATE = "/etc/mailinfra/tls/inbound.pem"
INBOUND_CERTIFICATE_DAYS = 3650  # nobody verifies it (see above); regenerated only when the file is gone

# Bounce MX limits (anvil(8), per client address and minute; loopback, where the instances hand over
# their DSNs, is exempt: smtpd_client_event_limit_exceptions = $mynetworks). A receiver returns a few
# DSNs per connection; these stop one client from flooding the maildir, not a provider's bounce wave.
INBOUND_CONNECTION_RATE_LIMIT = 60
INBOUND_MESSAGE_RATE_LIMIT = 120
INBOUND_CONNECTION_COUNT_LIMIT = 20
# A DSN or an ARF complaint carries at most the original message (ours are well under 1 MB).
INBOUND_MESSAGE_SIZE_LIMIT = 5 * 1024 * 1024
# A DSN or complaint is addressed to one return path (RFC 3464, RFC 5965): more recipients are spam.
INBOUND_RECIPIENT_LIMIT = 5

# Where pool instances hand DSNs for this host's return-path domains to the primary instance.
PRIMARY_LOOPBACK = "127.0.0.1"
DEFAULT_PROVIDER = "default"  # the provider of every domain no list names
MAIL_UID = 8  # Debian's `mail` user


@dataclass(frozen=True, slots=True)
class Transport:
    """One master.cf smtp service: one IP towards one provider."""

    name: str
    ip: str
    address: str
    helo: str
    limit: ProviderLimit


@dataclass(frozen=True, slots=True)
class RouteTransport:
    """The master.cf smtp service an isolated share leaves by, towards the stream's secondary route.

    It binds to one of the pool's addresses (the host's own address may have no public mapping; every pool
    address reaches the route), and the route delivers from its own addresses: the provider never sees the
    pool's IP. No fallback of its own: the route is already the alternative, and the same destination as
    fallback made the connection cache drop it (an address and its own fallback share one cache entry)."""

    name: str
    address: str
    helo: str
    destinations: tuple[str, ...]  # [host]:port as in smtp_fallback_relay (SASL and TLS policies key on it)

    def hops(self) -> tuple[str, ...]:
        """The transport_maps values, one per destination (transport(5): `transport:nexthop`)."""
        return tuple(f"{self.name}:{d}" for d in self.destinations)


@dataclass(frozen=True, slots=True)
class SaslEntry:
    destination: str  # [host]:port exactly as in smtp_fallback_relay
    username: str
    password: str  # a secret placeholder, never the secret


@dataclass(frozen=True, slots=True)
class HostCertificate:
    """A certificate mailinfra-apply-config generates on the host when the file is missing."""

    path: str
    names: tuple[str, ...]
    days: int


@dataclass(frozen=True, slots=True)
class TlsPolicy:
    """One smtp_tls_policy_maps entry: the destination exactly as smtp(8) looks it up (the `[host]:port`
    of smtp_fallback_relay or a transport nexthop, smtp_connect.c iterates with that literal) and the
    certificate name it must present."""

    destination: str
    match: str

    def entry(self) -> str:
        # secure: STARTTLS required, chain verified against CA_FILE, name matched; never plaintext
        # (postconf(5) smtp_tls_security_level; TLS_README "Mandatory server certificate verification").
        return f"{{ {self.destination} = secure match={self.match} }}"


@dataclass(frozen=True, slots=True)
class Instance:
    """One postmulti instance: one pool's IPs on this host."""

    name: str  # postfix-<pool>
    pool: str
    hostname: str  # myhostname: <pool>.<host fqdn>, never the primary's (see plan_instances)
    stream: StreamPlan
    config_dir: str
    port: int
    transports: tuple[Transport, ...]
    # provider -> transports mail to it rotates across (randmap), each repeated by its weight
    rotation: dict[str, tuple[str, ...]]
    sender_domains: tuple[str, ...]
    sending: bool  # False: every IP is gated or not started; injection is deferred
    sending_ips: frozenset[str]  # the IPs whose warmup lets them send today
    fallback: tuple[str, ...]
    sasl: tuple[SaslEntry, ...]
    bounce_routes: dict[str, str]  # return-path domain -> transport:[nexthop] of the primary instance
    tls_policies: tuple[TlsPolicy, ...] = ()  # route destinations that must verify (relay, SES)
    injectors: tuple[str, ...] = ()  # who may inject (mynetworks besides loopback)
    # transports taken out of rotation by mailinfra:isolations -> their alternative (route | siblings)
    isolated: dict[str, str] = field(default_factory=dict)
    route_transport: RouteTransport | None = None  # the stream's route, when this host can reach it


def injection_ports(plan: Plan) -> dict[str, int]:
    """pool -> the port its Postfix instance accepts injection on (same on every host)."""
    return {pool.name: pool.injection_port for pool in plan.pools}  # mailinfra.plan.injection_ports


def instance_name(pool: str) -> str:
    # postmulti(1): instance names start with "postfix-".
    return f"postfix-{pool}"


def transport_name(ip: str, provider: str) -> str:
    # Hyphens would make `<transport>_destination_rate_delay` an invalid parameter name.
    return f"{ip}_{provider}".replace("-", "_")


def render_postfix(plan: Plan, host: HostPlan) -> tuple[RenderedFile, ...]:
    """Every Postfix file of one host: the primary instance and one instance per pool on the host."""
    instances = plan_instances(plan, host)
    files = [
        rendered("etc/postfix/main.cf", render_template(
            "postfix/primary-main.cf.j2", plan=plan, host=host, instances=instances,
            bounce_domains=intake.intake_domains(plan, host), lmtp_socket=intake.LMTP_SOCKET,
            certificate=INBOUND_CERTIFICATE, connection_rate_limit=INBOUND_CONNECTION_RATE_LIMIT,
            message_rate_limit=INBOUND_MESSAGE_RATE_LIMIT, connection_count_limit=INBOUND_CONNECTION_COUNT_LIMIT,
            message_size_limit=INBOUND_MESSAGE_SIZE_LIMIT, recipient_limit=INBOUND_RECIPIENT_LIMIT)),
        rendered("etc/postfix/master.cf", render_template(
            "postfix/master.cf.j2", plan=plan, host=host, smtpd="smtp", transports=(), route_transport=None,
            dsn_without_fallback=False, dsn_transports=())),
    ]
    # Bounce hosts: the accepted recipients and the processor; every host: the suppression lookup.
    files.extend(intake.render_intake(plan, host))
    files.extend(enforcement.render_enforcement(plan, host))
    files.extend(render_placement(plan, host))  # inbox-placement probes and the seed reader
    for instance in instances:
        files.append(rendered(f"{instance.config_dir.lstrip('/')}/main.cf", render_template(
            "postfix/instance-main.cf.j2", plan=plan, host=host, instance=instance,
            limits=plan_limit_parameters(instance), maillog_file=instance_log(instance),
            connect_timeout=SMTP_CONNECT_TIMEOUT,
            helo_timeout=SMTP_HELO_TIMEOUT, milters=plan_milters(plan, host), ca_file=CA_FILE,
            connection_cache_seconds=CONNECTION_CACHE_SECONDS,
            recipient_check=enforcement.recipient_check(instance.stream.kind))))
        files.append(rendered(f"{instance.config_dir.lstrip('/')}/header_checks", render_template(
            "postfix/header_checks.j2", plan=plan, instance=instance,
            from_pattern=from_domain_pattern(instance.stream.sending_domain))))
        files.append(rendered(f"{instance.config_dir.lstrip('/')}/master.cf", render_template(
            "postfix/master.cf.j2", plan=plan, host=host, smtpd=str(instance.port),
            dsn_without_fallback=bool(instance.fallback), dsn_transports=dsn_transports(instance),
            transports=instance.transports, route_transport=instance.route_transport)))
        if instance.fallback:
            # Which replies may reach smtp_fallback_relay (mailinfra.mta.replies): reputation and policy
            # deferrals back off on this IP; only throttling and outages move to the route.
            files.append(rendered(f"{instance.config_dir.lstrip('/')}/{REPLY_FILTER_FILE}", render_reply_filter(
                throttle_reroutes="throttle" in instance.stream.fallback_on)))
            files.append(rendered(f"{instance.config_dir.lstrip('/')}/{STATUS_FILTER_FILE}",
                                  render_status_filter()))
        if instance.sasl:
            # 0600: smtp(8) reads it as root before dropping privileges; nobody else may.
            files.append(rendered(f"{instance.config_dir.lstrip('/')}/sasl_passwd", render_template(
                "postfix/sasl_passwd.j2", plan=plan, entries=instance.sasl), mode=0o600))
    # tls: dane is DANE only with a validating resolver on the host (mailinfra.mta.resolver).
    files.extend(render_resolver(host))
    return tuple(files)


def plan_limit_parameters(instance: Instance) -> dict[str, str]:
    """The main.cf parameters of a pool instance that follow the warmup plan's date, in main.cf order.

    The one source of these lines: the instance's main.cf renders them, and the host's limits calendar
    (mailinfra.mta.limits_calendar) applies the same values day by day with `postconf -e`. So every
    parameter is always present (a value a later day needs, e.g. `defer_transports =` once the pool sends
    or `_rate_delay = 0s` once it is unpaced) and each value fits on one line.
    """
    sender_domains = ", ".join(f"{d}=OK" for d in instance.sender_domains)
    streams = ", ".join(f"@{d}=stream" for d in instance.sender_domains)
    maps = [f"inline:{{ {', '.join(f'{d}={hop}' for d, hop in instance.bounce_routes.items())} }}"
            ] if instance.bounce_routes else []
    maps += [_rotation_map(PROVIDER_DOMAINS[p], p, instance.rotation[p]) for p in PROVIDERS if p != "default"]
    if not instance.bounce_routes:
        maps.append(_rotation_map((instance.stream.return_path,), "default", dsn_rotation(instance)))
    parameters = {
        # A pool with no IP allowed to send defers injection (4xx): the app keeps the mail or overflows it.
        "smtpd_sender_restrictions": (f"check_sender_access inline:{{ {sender_domains} }}, reject"
                                      if instance.sending else "defer"),
        "sender_dependent_default_transport_maps": (
            f"pipemap:{{inline:{{ {streams} }}, randmap:{{ {', '.join(instance.rotation['default'])} }}}}"),
        "transport_maps": ", ".join(maps),
        # Every transport that may not send today: the whole pool when no IP may, else the provider shares
        # that round to 0 (ProviderLimit.deferred) — deferred, never paced at 0s (unlimited, postconf(5)).
        "defer_transports": ", ".join(t.name for t in instance.transports if _deferred(instance, t)),
    }
    for transport in instance.transports:
        parameters.update(transport_limit_parameters(transport))
    return parameters


def _deferred(instance: Instance, transport: Transport) -> bool:
    # An isolated transport is deferred too: mail it already holds goes back to the queue, and qmgr looks
    # its recipients up again at the next retry, in the rotation without it.
    return (not instance.sending or transport.limit.deferred or transport.ip not in instance.sending_ips
            or transport.name in instance.isolated)


def plan_rotation(transports: Sequence[Transport], sending_ips: frozenset[str],
                  isolated: dict[str, str] | None = None, route_hops: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The randmap entries of one provider: each transport that may send, repeated in proportion to its
    msgs/hour (so a day-1 IP gets its small share and a warmed IP the rest). When none may send, every
    transport of the provider (all deferred): the mail waits in the queue and is looked up again at its
    next retry (qmgr resolves a message's recipients each time it enters the active queue).

    Isolated transports (`isolated`: name -> alternative) never appear: a `siblings` one is left out, so its
    share falls to the pool's other IPs at their own rate delays (their caps do not grow); a `route` one's
    entries become the route's (`route_hops`), so the route carries exactly the isolated share."""
    isolated = {name: (to if route_hops else "siblings") for name, to in (isolated or {}).items()}
    rates = [(t.name, t.limit.msgs_per_hour) for t in transports
             if t.ip in sending_ips and not t.limit.deferred and t.limit.msgs_per_hour > 0
             and isolated.get(t.name) != "siblings"]
    if not rates:
        waiting = tuple(t.name for t in transports if t.name not in isolated)
        # Nothing of the pool may send to this provider: with the whole share isolated to the route, the
        # route takes it (warmup limits the pool's IPs, not the route); otherwise the mail waits.
        return waiting or route_hops or tuple(t.name for t in transports)
    weights = _apportion(rates, ROTATION_SLOTS)
    if all(name in isolated for name, _ in weights):
        return route_hops
    entries = [name for name, weight in weights for _ in range(weight)]
    hops = iter(route_hops * len(entries))
    return tuple(next(hops) if name in isolated else name for name in entries)


def _apportion(rates: list[tuple[str, int]], slots: int) -> list[tuple[str, int]]:
    """Small integer weights in the rates' proportion: exact when the reduced rates fit in `slots`,
    else the largest-remainder split of `slots` (a weight of 0 drops the transport)."""
    divisor = math.gcd(*(rate for _, rate in rates))
    exact = [(name, rate // divisor) for name, rate in rates]
    if sum(weight for _, weight in exact) <= slots:
        return exact
    total = sum(rate for _, rate in rates)
    quotas = [(name, rate * slots / total) for name, rate in rates]
    weights = {name: math.floor(quota) for name, quota in quotas}
    by_remainder = sorted(quotas, key=lambda item: (-(item[1] - math.floor(item[1])), item[0]))
    for name, _ in by_remainder[:slots - sum(weights.values())]:
        weights[name] += 1
    kept = [(name, rate) for name, rate in rates if weights[name] > 0]
    if len(kept) < len(rates):
        # Without the dropped shares the rest may be exact again (a warmed pool and one day-1 IP).
        return _apportion(kept, slots)
    divisor = math.gcd(*weights.values())
    return [(name, weights[name] // divisor) for name, _ in rates]


def plan_isolated(isolations: Sequence[IsolationPlan], transports: Sequence[Transport],
                  pool: str) -> dict[str, str]:
    """transport -> the alternative of the isolations that cover it (a pool x provider isolation covers
    only that provider's transports; an IP's only that IP's). `route` wins over `siblings`: when the whole
    pool goes to the route, an IP of it handing its share to its siblings would hand it to the route too."""
    result: dict[str, str] = {}
    for transport in transports:
        covering = {iso.to for iso in isolations if iso.covers(transport.ip, pool, transport.limit.provider)}
        if covering:
            result[transport.name] = "route" if "route" in covering else "siblings"
    return result


def plan_transport_caps(instance: Instance) -> dict[str, int]:
    """transport -> how many messages it may deliver on the plan's date (its provider share's daily cap;
    0 when it is deferred). Postfix has no daily limit of its own: rate delays bound an hour, and an hourly
    cap of daily/12 paced around the clock allows twice the day's cap. mailinfra-enforce-caps counts each
    transport's deliveries in the instance's log and defers the transport once it reaches this number."""
    return {t.name: 0 if _deferred(instance, t) else t.limit.msgs_per_day for t in instance.transports}


def instance_log(instance: Instance) -> str:
    """The instance's own log file (maillog_file, written by postlogd): the daily-cap counter reads each
    transport's deliveries there (Debian 12 has no syslog file by default, only the journal)."""
    return f"/var/log/{instance.name}.log"


def transport_limit_parameters(transport: Transport) -> dict[str, str]:
    """One transport's pacing (postconf(5)): Postfix paces per (transport, recipient domain) in whole
    seconds, so the delay is rounded up and the provider's hourly rate is never exceeded."""
    delay = transport.limit.postfix_rate_delay_seconds
    return {
        f"{transport.name}_destination_concurrency_limit": str(transport.limit.concurrency),
        f"{transport.name}_destination_rate_delay": f"{delay}s",
        # Unpaced: Postfix's default cohort limit (1); paced: postconf(5)'s advice for a rate delay.
        f"{transport.name}_destination_concurrency_failed_cohort_limit": str(FAILED_COHORT_LIMIT if delay else 1),
    }


def dsn_transports(instance: Instance) -> tuple[Transport, ...]:
    """The services an instance's DSNs leave by when its host is not their bounce MX: one per IP, a twin
    of the IP's `default` transport without smtp_fallback_relay (master.cf), so a bounce of our mail never
    goes out through SES or a relay. None without a route (the default transports already have none) or
    when the host is the bounce MX (the `smtp` service carries them, also without the route)."""
    if not instance.fallback or instance.bounce_routes:
        return ()
    return tuple(replace(t, name=_dsn_name(t.name)) for t in instance.transports
                 if t.name.endswith(f"_{DEFAULT_PROVIDER}"))


def dsn_rotation(instance: Instance) -> tuple[str, ...]:
    """The return path's rotation: the default provider's own transports, by the DSN twins where there are any.

    Never the route's hops an isolation puts in the default rotation (`route:[relay]:587`): a bounce of our
    mail does not leave by SES or a relay, and an isolated pool still returns its DSNs from its own IPs."""
    defaults = tuple(t.name for t in instance.transports if t.name.endswith(f"_{DEFAULT_PROVIDER}"))
    own = tuple(name for name in instance.rotation[DEFAULT_PROVIDER] if name in defaults) or defaults
    if not dsn_transports(instance):
        return own
    return tuple(_dsn_name(name) for name in own)


def _dsn_name(default_transport: str) -> str:
    return default_transport.removesuffix(f"_{DEFAULT_PROVIDER}") + "_dsn"


def _rotation_map(domains: tuple[str, ...], provider: str, rotation: tuple[str, ...]) -> str:
    """Mail to `domains` rotates across `rotation` (the provider's transports of the IPs that may send)."""
    return (f"pipemap:{{inline:{{ {', '.join(f'{d}={provider}' for d in domains)} }}, "
            f"randmap:{{ {', '.join(rotation)} }}}}")


def plan_instances(plan: Plan, host: HostPlan) -> tuple[Instance, ...]:
    """The postmulti instances of one host, in the pools' order."""
    ports = injection_ports(plan)
    limits = {limit.ip: limit for limit in plan.warmup}
    bounce_routes = plan_bounce_routes(plan, host)
    result = []
    for pool in plan.pools:
        on_host = [plan.ip(name) for name in pool.ips if plan.ip(name).host == host.name]
        if not on_host:
            continue
        stream = plan.stream(pool.stream)
        transports = tuple(
            Transport(transport_name(ip.name, provider), ip.name, ip.address, ip.helo,
                      _limit_of(limits, ip.name).provider(provider))
            for ip in on_host for provider in PROVIDERS)
        _check_unique_names(pool, transports)
        sending_ips = frozenset(ip.name for ip in on_host if _limit_of(limits, ip.name).sending)
        route = plan.route(stream.route) if stream.route else None
        destinations, route_sasl = _route_destinations(plan, route, host)
        isolated = plan_isolated(plan.isolations, transports, pool.name)
        # Standing whenever the route is reachable from here: an isolation and the host's automatic response
        # (mailinfra.shaping) move a share onto it by changing main.cf maps only.
        route_transport = (RouteTransport(ROUTE_TRANSPORT, on_host[0].address, on_host[0].helo, destinations)
                           if destinations else None)
        hops = route_transport.hops() if route_transport else ()
        rotation = {
            provider: plan_rotation([t for t in transports if t.limit.provider == provider], sending_ips,
                                    isolated, hops)
            for provider in PROVIDERS
        }
        fallback = destinations if stream.fallback_on else ()
        sasl = route_sasl if route_transport else ()
        tls_policies = plan_tls_policies(route)
        result.append(Instance(
            name=instance_name(pool.name), pool=pool.name, hostname=instance_hostname(pool.name, host),
            stream=stream,
            config_dir=f"/etc/{instance_name(pool.name)}", port=ports[pool.name], transports=transports,
            rotation=rotation, sender_domains=tuple(dict.fromkeys((stream.sending_domain, stream.return_path))),
            sending=bool(sending_ips), sending_ips=sending_ips, fallback=fallback, sasl=sasl,
            bounce_routes=bounce_routes, tls_policies=tls_policies, injectors=stream_injectors(stream, host),
            isolated=isolated, route_transport=route_transport))
    return tuple(result)


def instance_hostname(pool: str, host: HostPlan) -> str:
    """myhostname of a pool instance: a name of its own under the host's, because smtp(8) refuses a
    server that greets it with its own myhostname ("greeted me with my own hostname"), and instances
    hand DSNs to the primary, which greets with the host's fqdn."""
    return f"{pool.replace('_', '-')}.{host.fqdn}"


def plan_bounce_routes(plan: Plan, host: HostPlan) -> dict[str, str]:
    """Return-path domain -> where a pool instance sends mail for it (its DSNs): the primary instance
    of this host, when it accepts bounces.

    The return-path MX is this host itself, and smtp(8) refuses an MX that is one of its own
    addresses ("mail for ... loops back to myself", 5.4.6); an explicit [nexthop] skips the MX
    lookup and with it that check. Loopback, not the inbound address: the primary listens on all
    addresses of a bounce host, and the inbound address is a NAT-mapped EIP (a placeholder until
    `pulumi up`). A host that accepts no bounces leaves normal MX routing.
    """
    return dict.fromkeys(_bounce_domains(plan, host), f"smtp:[{PRIMARY_LOOPBACK}]:25")


def _limit_of(limits: dict[str, IpLimits], ip: str) -> IpLimits:
    if ip not in limits:
        raise PlanError(f"IP {ip}: the plan has no warmup limits for it (build the plan with build_plan)")
    return limits[ip]


def _check_unique_names(pool: PoolPlan, transports: tuple[Transport, ...]) -> None:
    names = [t.name for t in transports]
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        raise PlanError(f"pool {pool.name}: IP names {', '.join(clash)} collide once '-' becomes '_' "
                        "in Postfix transport names; rename one IP")


def _route_destinations(plan: Plan, route: RoutePlan | None,
                        host: HostPlan) -> tuple[tuple[str, ...], tuple[SaslEntry, ...]]:
    """A route's destinations (`[host]:port`, as smtp_fallback_relay and the isolation's route transport
    use them), and SASL credentials for those that authenticate.

    smtp_fallback_relay uses them only when the stream declared a condition (`fallback_on`); an isolation
    to the route uses them regardless. None on a host that is itself one of the route's hosts: it takes
    other hosts' overflow and must never send it back (A -> B -> A).
    """
    if route is None:
        return (), ()
    if route.kind == "hosts" and host.name in route.hosts:
        return (), ()
    if route.kind == "hosts":
        # Brackets: connect to the host itself, not its domain's MX. Never this host (rules reject a route
        # sharing the primary's hosts: the connection cache would drop the shared address).
        targets = tuple(f"[{plan.host(name).fqdn}]:{route.port or 25}" for name in route.hosts
                        if name != host.name)
        return targets, ()
    destination = f"[{route.smtp_host}]:{route.port}"
    if route.kind == "ses":
        # SES SMTP credentials are derived from an IAM access key at deploy time (SES Developer Guide,
        # "Obtaining Amazon SES SMTP credentials"); both halves are filled in on the host.
        entry = SaslEntry(destination, secret_placeholder(f"routes.{route.name}.smtp_username"),
                          secret_placeholder(f"routes.{route.name}.smtp_password"))
        return (destination,), (entry,)
    if route.username and route.password_secret:
        entry = SaslEntry(destination, route.username, secret_placeholder(f"mailinfra:{route.password_secret}"))
        return (destination,), (entry,)
    return (destination,), ()


def stream_injectors(stream: StreamPlan, host: HostPlan) -> tuple[str, ...]:
    """Who may inject a stream's mail on a host: its declared app networks, else all the host's."""
    return stream.injectors or host.injection_cidrs


def plan_host_certificates(host: HostPlan) -> tuple[HostCertificate, ...]:
    """What the host generates at first boot: the bounce MX's STARTTLS certificate (INBOUND_CERTIFICATE)."""
    if host.mta != "postfix" or not host.accepts_bounces:
        return ()
    return (HostCertificate(INBOUND_CERTIFICATE, (host.fqdn,), INBOUND_CERTIFICATE_DAYS),)


def plan_tls_policies(route: RoutePlan | None) -> tuple[TlsPolicy, ...]:
    """A relay or SES route is a fixed, named next hop that carries our credentials (SASL) and whole
    streams of mail: it must present a valid certificate for its name, or nothing is sent (and no
    password). `hosts` routes are our own MTAs on port 25 with the host's opportunistic level."""
    if route is None or route.kind not in ("relay", "ses") or not route.smtp_host:
        return ()
    return (TlsPolicy(f"[{route.smtp_host}]:{route.port}", route.smtp_host),)


def from_domain_pattern(domain: str) -> str:
    """A regexp_table(5) pattern matching a From header whose (last) address is @domain: the address may
    be bracketed and followed by white space only. Anything else (another domain, a subdomain, a display
    name that merely contains the domain) does not match."""
    escaped = domain.replace(".", r"\.")
    return f"/@{escaped}>?[[:space:]]*$/"


def _bounce_domains(plan: Plan, host: HostPlan) -> tuple[str, ...]:
    return intake.bounce_domains(plan, host)
