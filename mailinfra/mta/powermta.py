"""PowerMTA for one host: a virtual-mta per IP, a pool per stream tier, provider limits from the warmup plan.

PowerMTA cannot be installed here, so only directives of the PowerMTA 5.0 User's Guide listed in
/work/shared/notes/mta.md are used, and `mailinfra.mta.pmta_check` validates every rendered file.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from mailinfra.mta.files import RenderedFile, render_template, rendered, secret_placeholder
from mailinfra.mta.intake import fbl_addresses
from mailinfra.plan.model import HostPlan, IpLimits, IpPlan, IsolationPlan, Plan, RoutePlan, StreamPlan
from mailinfra.warmup import PROVIDERS

CONFIG_PATH = "etc/pmta/config"
LIMITS_FILE = "etc/pmta/limits.json"  # the warmup calendar (powermta_calendar), applied daily on the host
KEY_DIR = "/etc/pmta/dkim"  # 0700 root, filled by the host at boot; keys never in the repository
THROTTLE_PATTERNS = "throttle"
# The one SMTP listener (`smtp-listener 0/0:25`, all of the host's addresses): the app injects here, the
# <source> blocks decide who may relay, peers of a `hosts` route arrive here. The security group opens it.
SMTP_LISTENER_PORT = 25


def dkim_key_file(org_domain: str, selector: str) -> str:
    """Where PowerMTA reads the private key (PEM) of `selector` of an org domain."""
    return f"{KEY_DIR}/{org_domain}/{selector}.pem"

# Messages per connection before PowerMTA reconnects: Microsoft and Yahoo count per connection when they
# throttle new IPs, Gmail tolerates long sessions.
MSGS_PER_CONNECTION = {"gmail": 50, "microsoft": 20, "yahoo": 20, "apple": 20, "default": 50}
# In backoff a queue sends at a tenth of its rate and returns to normal after an hour without throttling.
BACKOFF_RATE_DIVISOR = 10
RETRY_AFTER = "10m"
BACKOFF_RETRY_AFTER = "20m"
BACKOFF_TO_NORMAL_AFTER = "1h"

# Replies that mean "busy, slow down" and nothing about us: they put the queue into backoff, and backoff
# reroutes to the stream's route (backoff-reroute-to-virtual-mta). Only capacity replies belong here:
# a reputation or policy deferral (Gmail 4.7.28 "temporarily rate limited", Yahoo [TSS04] "user
# complaints", Microsoft 4.7.650 / RP-00x "related to IP reputation", any 4.7.x policy code;
# mailinfra.mta.replies) matches none of them, so it is retried from the same IP after retry-after and
# never rerouted. tests/mta/test_powermta.py checks both directions.
THROTTLE_REPLIES = (
    r"/^421 4\.7\.0 Try again later, closing connection/",  # Gmail: load shedding at the greeting
    r"/^4\d\d 4\.7\.500 Server busy/",  # Microsoft: server busy
    r"/^421 4\.3\.2 /",  # RFC 3463 §3.4 X.3.2: system not accepting network messages
    r"/^4\d\d 4\.4\.5 /",  # RFC 3463 §3.5 X.4.5: mail system congestion
    r"/^421 .*too many (connections|concurrent)/i",  # connection-count limits
)


@dataclass(frozen=True, slots=True)
class DomainLimit:
    domain: str
    max_msg_rate: int  # per hour
    max_smtp_out: int
    max_msg_per_connection: int
    backoff_max_msg_rate: int
    # Incident isolation (mailinfra:isolations) of this IP x provider: "route" sends this block's mail to
    # the stream's route (smtp-hosts of `route`), "siblings" holds it (max-smtp-out 0; the IP has left the
    # pool, so only mail it already held waits here until the isolation is lifted).
    isolated: str | None = None
    route: Fallback | None = None

    def warmup_directives(self) -> dict[str, str]:
        """The directives of this <domain> block that follow the warmup, as the config spells them: the
        template renders them and the limits calendar carries them (one formatter for both)."""
        return {
            "max-msg-rate": f"{self.max_msg_rate}/h",
            "max-smtp-out": str(self.max_smtp_out),
            "backoff-max-msg-rate": f"{self.backoff_max_msg_rate}/h",
        }


@dataclass(frozen=True, slots=True)
class VirtualMta:
    name: str
    ip: IpPlan
    limits: IpLimits
    domains: tuple[DomainLimit, ...]
    fallback: str | None
    out_of_pool: bool = False  # isolated to its siblings: not a member of its pool


@dataclass(frozen=True, slots=True)
class WarmupState:
    """Everything in a host's config that changes with the date: per virtual-mta and domain the warmup
    directives, per pool its members. The rest of the config is the same on every date."""

    directives: dict[str, dict[str, dict[str, str]]]  # virtual-mta -> domain -> directive -> value
    pools: dict[str, tuple[str, ...]]  # virtual-mta-pool -> member virtual-mtas


@dataclass(frozen=True, slots=True)
class Fallback:
    name: str
    stream: str
    smtp_hosts: tuple[str, ...]
    username: str | None
    password: str | None
    # A `hosts` route leaves from an IP of the same pool (stream and tier): the route host admits that
    # address into that pool only (plan_route_peer_pools), so overflow never lands in another pool.
    source: IpPlan | None = None
    require_tls: bool = False  # relay and SES routes: use-starttls + require-starttls


def vmta_name(ip: str) -> str:
    return f"ip-{ip}"


def pool_name(pool: str) -> str:
    return f"pool-{pool}"


def render_powermta(plan: Plan, host: HostPlan) -> tuple[RenderedFile, ...]:
    """The PowerMTA `config` of one host."""
    streams = [plan.stream(name) for name in host.streams]
    fallbacks = plan_fallbacks(plan, host)
    vmtas = plan_vmtas(plan, host, fallbacks)
    pools = [(name, members) for name, members in plan_pool_members(plan, vmtas).items()]
    keys = [(s, s.dkim_selector, dkim_key_file(s.org_domain, s.dkim_selector)) for s in streams]
    peers = plan_route_peer_pools(plan, host)
    bounce_domains = tuple(dict.fromkeys(s.return_path for s in plan.streams)) if host.accepts_bounces else ()
    content = render_template(
        "powermta/config.j2", plan=plan, host=host, vmtas=vmtas, pools=pools,
        fallbacks=list(dict.fromkeys(fallbacks.values())),
        keys=keys, patterns=THROTTLE_PATTERNS, replies=THROTTLE_REPLIES,
        bounce_domains=bounce_domains, fbl_pattern=_fbl_pattern(fbl_addresses(plan, host)), peers=peers,
        limits_file=f"/{LIMITS_FILE}", listener_port=SMTP_LISTENER_PORT,
        postmaster=postmaster_address(plan, host),
        retry_after=RETRY_AFTER, backoff_retry_after=BACKOFF_RETRY_AFTER,
        backoff_to_normal_after=BACKOFF_TO_NORMAL_AFTER)
    file = rendered(CONFIG_PATH, content)
    # The host writes relay passwords into this file at boot: then it must be root-only.
    return (rendered(CONFIG_PATH, content, mode=0o600) if file.secret_placeholders else file,)


def plan_vmtas(plan: Plan, host: HostPlan, fallbacks: dict[str, Fallback] | None = None) -> list[VirtualMta]:
    """A virtual-mta per IP of the host, with its domain limits as of the plan's date.

    Every IP has the same <domain> blocks on every date (an IP that may not send yet has them at zero
    connections and rate): only values change with the warmup, never the config's structure, so the host
    can apply a day's limits to its config (`plan_warmup_state`, mailinfra-apply-pmta-config).
    """
    limits = {limit.ip: limit for limit in plan.warmup}
    fallbacks = fallbacks or {}
    vmtas = []
    for name in host.ips:
        ip = plan.ip(name)
        covering = [iso for iso in plan.isolations if iso.pool == ip.pool and (iso.kind == "pool" or iso.ip == name)]
        route = _route_vmta(plan, plan.stream(ip.stream), host, _pool_source(plan, host, ip.pool)) if any(
            iso.to == "route" for iso in covering) else None
        vmtas.append(_vmta(ip, limits[name], fallbacks.get(ip.pool), covering, route))
    return vmtas


def _pool_source(plan: Plan, host: HostPlan, pool: str) -> IpPlan:
    return next(plan.ip(n) for n in plan.pool(pool).ips if plan.ip(n).host == host.name)


def plan_fallbacks(plan: Plan, host: HostPlan) -> dict[str, Fallback]:
    """pool -> the virtual-mta its throttled (backoff) queues reroute to, for the pools on this host."""
    result: dict[str, Fallback] = {}
    for pool in plan.pools:
        on_host = [plan.ip(n) for n in pool.ips if plan.ip(n).host == host.name]
        if on_host and (fallback := _fallback(plan, plan.stream(pool.stream), host, on_host[0])) is not None:
            result[pool.name] = fallback
    return result


def plan_pool_members(plan: Plan, vmtas: list[VirtualMta]) -> dict[str, tuple[str, ...]]:
    """pool-<name> -> its member virtual-mtas: those sending on the plan's date, so PowerMTA never picks an
    IP that may not send yet (its queue would only age). A pool with no IP sending yet lists them all, each
    held at zero connections: mail named to it waits instead of being refused."""
    pools: dict[str, tuple[str, ...]] = {}
    for pool in plan.pools:
        # An IP isolated to its siblings leaves the pool (rules keep at least one IP of it in rotation):
        # PowerMTA picks a member per message, not per domain, so even an IP x provider isolation to the
        # siblings takes the IP out for every provider; its other providers' share goes to the siblings too.
        members = [v for v in vmtas if v.ip.pool == pool.name and not v.out_of_pool]
        if members:
            sending = [v for v in members if v.limits.sending]
            pools[pool_name(pool.name)] = tuple(v.name for v in sending or members)
    return pools


def plan_warmup_state(plan: Plan, host: HostPlan) -> WarmupState:
    """What of the host's config follows the warmup, as of the plan's date (what render_powermta renders)."""
    vmtas = plan_vmtas(plan, host)
    return WarmupState(
        directives={v.name: {d.domain: d.warmup_directives() for d in v.domains} for v in vmtas},
        pools=plan_pool_members(plan, vmtas),
    )


def plan_route_peers(plan: Plan, host: HostPlan) -> tuple[str, ...]:
    """Addresses of hosts whose streams name this host in a `hosts` route: they may relay their overflow here."""
    return tuple(address for address, _pool in plan_route_peer_pools(plan, host))


def plan_route_peer_pools(plan: Plan, host: HostPlan) -> tuple[tuple[str, str], ...]:
    """(peer address, pool-<name>) for every IP of another host that may send its overflow here.

    Each address is admitted into its own IP's pool and nothing else: overflow stays in the same stream
    and tier (a cold tier never borrows an active pool's reputation, a brand never another brand's).
    A peer IP whose pool this host does not carry is not admitted (rules require a route host to carry
    the pools of the streams that use it).
    """
    carried = {plan.ip(n).pool for n in host.ips}
    peers = (plan.ip(name) for ips in plan_route_peer_ips(plan, host).values() for name in ips)
    return tuple(dict.fromkeys((ip.address, pool_name(ip.pool)) for ip in peers if ip.pool in carried))


def plan_route_peer_ips(plan: Plan, host: HostPlan) -> dict[str, tuple[str, ...]]:
    """`hosts` route naming this host -> the IP names of the other hosts whose streams use it."""
    result: dict[str, tuple[str, ...]] = {}
    for route in plan.routes:
        if route.kind != "hosts" or host.name not in route.hosts:
            continue
        peers = [name for other in plan.hosts if other.name != host.name and set(other.streams) & set(route.streams)
                 for name in other.ips]
        if peers:
            result[route.name] = tuple(dict.fromkeys(peers))
    return result


def _vmta(ip: IpPlan, limits: IpLimits, fallback: Fallback | None, isolations: Sequence[IsolationPlan] = (),
          route: Fallback | None = None) -> VirtualMta:
    """`isolations`: those covering this IP (mailinfra.plan.isolation); `route`: where an isolation to the
    route sends its mail. The warmup values stay the plan's (an isolation resets no cap)."""
    domains = []
    for provider in PROVIDERS:
        limit = limits.provider(provider)
        names = limit.domains or ("*",)
        # PowerMTA queues per domain: the provider's rate is shared across its domains, rounded down.
        rate = math.floor(limit.msgs_per_hour / len(names))
        covering = {iso.to for iso in isolations if iso.provider in (None, provider)}
        # `route` wins: with the whole pool on the route, the siblings are on it too.
        isolated = "route" if "route" in covering else ("siblings" if covering else None)
        # Isolated to a route this host cannot use (it is one of the route's hosts): held, never sent from here.
        held = isolated == "siblings" or (isolated == "route" and route is None)
        for domain in names:
            domains.append(DomainLimit(
                domain=domain, max_msg_rate=rate, max_smtp_out=limit.concurrency if rate and not held else 0,
                max_msg_per_connection=MSGS_PER_CONNECTION[provider],
                backoff_max_msg_rate=max(1, rate // BACKOFF_RATE_DIVISOR) if rate else 0,
                isolated=isolated, route=route if isolated == "route" else None))
    out_of_pool = any(d.isolated == "siblings" for d in domains)
    return VirtualMta(vmta_name(ip.name), ip, limits, tuple(domains), fallback.name if fallback else None,
                      out_of_pool)


def _fallback(plan: Plan, stream: StreamPlan, host: HostPlan, source: IpPlan) -> Fallback | None:
    """Where a pool's backoff queues reroute, or None.

    None unless the stream declared `throttle` in fallback_on (PowerMTA reroutes from backoff mode, which
    only THROTTLE_REPLIES start), and None on a host that is itself one of the route's hosts: it takes
    other hosts' overflow and never sends it back (no A -> B -> A).
    """
    if "throttle" not in stream.fallback_on:
        return None
    return _route_vmta(plan, stream, host, source)


def _route_vmta(plan: Plan, stream: StreamPlan, host: HostPlan, source: IpPlan) -> Fallback | None:
    """The virtual-mta that delivers to a stream's route (backoff reroutes and isolations), or None."""
    if stream.route is None:
        return None
    route: RoutePlan = plan.route(stream.route)
    if route.kind == "hosts":
        if host.name in route.hosts:
            return None
        hosts = tuple(f"[{plan.host(h).fqdn}]:{route.port or 25}" for h in route.hosts)
        return Fallback(f"fallback-{source.pool}", stream.name, hosts, None, None, source)
    name = f"fallback-{stream.name}"
    destination = f"[{route.smtp_host}]:{route.port}"
    if route.kind == "ses":
        return Fallback(name, stream.name, (destination,),
                        secret_placeholder(f"routes.{route.name}.smtp_username"),
                        secret_placeholder(f"routes.{route.name}.smtp_password"), require_tls=True)
    if route.username and route.password_secret:
        return Fallback(name, stream.name, (destination,), route.username,
                        secret_placeholder(f"mailinfra:{route.password_secret}"), require_tls=True)
    return Fallback(name, stream.name, (destination,), None, None, require_tls=True)


def postmaster_address(plan: Plan, host: HostPlan) -> str:
    """postmaster@ the first return-path domain the host sends for: a domain whose MX (the bounce hosts)
    accepts mail; the host's own name has no MX."""
    streams = [plan.stream(name) for name in host.streams] or list(plan.streams)
    return f"postmaster@{streams[0].return_path}"


def _fbl_pattern(addresses: tuple[str, ...]) -> str:
    """Complaint reports arrive at the addresses registered with the feedback loops: the stack's
    `bounces.fbl_addresses`, the same ones the Postfix bounce hosts accept (mailinfra.mta.intake), not an
    address of our own making. None declared: a pattern no address matches (audit: no FBL address)."""
    if not addresses:
        return "/^$/"
    return "/^(" + "|".join(re.escape(a) for a in addresses) + ")$/"
