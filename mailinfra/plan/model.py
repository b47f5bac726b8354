"""Typed values of the plan. Everything here is derived once, in mailinfra.plan.build."""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass, field

from mailinfra.dns.records import DnsRecord
from mailinfra.plan.monitoring import MonitoringPlan


@dataclass(frozen=True, slots=True)
class ProviderLimit:
    """What one IP may send to one mailbox provider per hour, and how an MTA paces it."""

    provider: str
    domains: tuple[str, ...]
    msgs_per_hour: int
    concurrency: int
    # Whole seconds between deliveries per recipient domain (0 = unpaced: above 3,600/h per domain Postfix
    # cannot pace, concurrency limits it instead).
    postfix_rate_delay_seconds: int
    # The share rounds to 0 msgs/hour: nothing may go to this provider from this IP today. MTAs hold the
    # mail (Postfix: the transport is left out of the rotation and in defer_transports), never send unpaced.
    deferred: bool = False
    # The share's daily cap (the IP's daily cap x the provider's share, floored): the host stops this
    # provider's mail from this IP for the day once it has delivered this many (mailinfra-enforce-caps).
    msgs_per_day: int = 0


@dataclass(frozen=True, slots=True)
class IpLimits:
    """Today's limits of one sending IP (computed by mailinfra.warmup)."""

    ip: str
    pool: str
    stream: str
    tier: str
    schedule: str | None  # None: the IP is marked warmed
    start: dt.date | None  # the configured start date
    effective_start: dt.date | None  # start, moved later by the tier gate
    day: int | None  # 1-based day of the schedule on as_of; None when warmed or not started
    status: str  # warming | warmed | not-started | gated
    daily_cap: int
    hourly_cap: int
    overflow: str  # where demand above the pool's cap goes: "route:<name>" or "defer"
    providers: tuple[ProviderLimit, ...]

    @property
    def sending(self) -> bool:
        return self.daily_cap > 0

    def provider(self, name: str) -> ProviderLimit:
        return next(p for p in self.providers if p.provider == name)


@dataclass(frozen=True, slots=True)
class WarmupSpec:
    warmed: bool
    start: dt.date | None
    schedule: str | None


@dataclass(frozen=True, slots=True)
class IpPlan:
    """One sending IP: where it lives, what it sends, the name it says HELO with."""

    name: str
    pool: str
    stream: str
    tier: str
    host: str
    address: str
    placeholder: bool  # True: a documentation-range stand-in until `pulumi up` allocates the EIP
    adopted: bool
    allocation_id: str | None
    helo: str
    warmup: WarmupSpec
    previous_names: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PoolPlan:
    name: str
    stream: str
    tier: str
    kind: str
    hosts: tuple[str, ...]
    ips: tuple[str, ...]
    previous_names: tuple[str, ...] = ()
    injection_port: int = 0  # where its Postfix instance accepts injection (mailinfra.plan.injection_ports)


@dataclass(frozen=True, slots=True)
class StreamPlan:
    name: str
    kind: str
    org_domain: str
    sending_domain: str
    return_path: str
    pools: tuple[tuple[str, str], ...]  # (tier, pool), most engaged tier first
    route: str | None
    dkim_selector: str
    ed25519_selector: str | None
    one_click_unsubscribe: bool
    previous_names: tuple[str, ...] = ()
    fallback_on: tuple[str, ...] = ()  # "outage", "throttle": when mail may take the route
    # streams.<s>.queue_lifetime: how long its mail may wait before it bounces (schema QUEUE_LIFETIME_DEFAULTS).
    queue_lifetime_seconds: int = 86400
    # streams.<s>.injectors: who may inject its mail; () = the hosts' injection_cidrs.
    injectors: tuple[str, ...] = ()

    def pool_names(self) -> tuple[str, ...]:
        return tuple(pool for _, pool in self.pools)


@dataclass(frozen=True, slots=True)
class HostPlan:
    name: str
    mta: str
    instance_type: str
    availability_zone: str | None
    subnet_id: str | None
    injection_cidrs: tuple[str, ...]
    fqdn: str
    inbound_address: str  # what the host's fqdn A record points at (its first IP by name)
    ips: tuple[str, ...]
    streams: tuple[str, ...]
    accepts_bounces: bool
    tls: str
    max_ips: int
    address_salt: str | None = None  # None: "<project>/<stack>" (components/mta_host.address_salt)
    bootstrap: str = "launched"  # launched | current (docs/configuration.md, hosts)


@dataclass(frozen=True, slots=True)
class RoutePlan:
    """A secondary route: where a stream's mail goes when its primary path is throttled or down."""

    name: str
    kind: str  # relay | ses | hosts
    smtp_host: str | None  # relay/ses: the next hop's name
    port: int | None
    username: str | None
    password_secret: str | None  # Pulumi config key of the secret; the value is never in the plan
    region: str | None
    hosts: tuple[str, ...]
    spf_include: str | None  # what a stream using the route adds to its SPF (SES: amazonses.com)
    streams: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DkimKeyPlan:
    """One DKIM key: a selector of an org domain, published under each of its sending domains."""

    domain: str
    selector: str
    algorithm: str
    state: str
    public_key: str
    placeholder: bool
    signing_domains: tuple[str, ...]

    @property
    def published(self) -> bool:
        return self.state != "retired"

    @property
    def signing(self) -> bool:
        return self.state == "active"


@dataclass(frozen=True, slots=True)
class ZonePlan:
    name: str
    provider: str  # route53 | cloudflare | aws-eip-ptr (reverse DNS set on the EIP, not a zone we own)
    zone_id: str | None
    reverse: bool
    # dns.zones.<zone>.adopt: none | overwrite | import, and for import the live records to take over
    # (record key -> provider import id, in key order).
    adopt: str = "none"
    import_ids: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class IsolationPlan:
    """One line of `mailinfra:isolations` (what it does: mailinfra.plan.isolation)."""

    target: str  # the stack key: pool:<pool>[@provider] or ip:<ip>[@provider]
    kind: str  # pool | ip
    pool: str
    ip: str | None
    provider: str | None  # None: every provider
    stream: str
    to: str  # route | siblings
    route: str | None  # the route's name when to == route
    reason: str
    since: dt.date

    def age_days(self, as_of: dt.date) -> int:
        return (as_of - self.since).days

    def covers(self, ip: str, pool: str, provider: str) -> bool:
        """Whether mail of `ip` (in `pool`) to `provider` is taken out of rotation by this isolation."""
        if self.provider is not None and self.provider != provider:
            return False
        return self.pool == pool if self.kind == "pool" else self.ip == ip

    def describe(self) -> str:
        what = f"pool {self.pool}" if self.kind == "pool" else f"IP {self.ip} of pool {self.pool}"
        scope = f" to {self.provider}" if self.provider else ""
        where = f"route {self.route}" if self.to == "route" else f"the other IPs of pool {self.pool}"
        return f"{what}{scope} → {where} (since {self.since}: {self.reason})"


@dataclass(frozen=True, slots=True)
class IntakePlan:
    """Bounce and complaint intake and suppression (`bounces` of the stack): what the hosts' processor and
    lookup services are rendered from (mailinfra.mta.intake, mailinfra.mta.enforcement)."""

    fbl_addresses: tuple[str, ...] = ()  # where FBL (ARF) reports are sent, normalised lower case
    store: str = "sqlite"  # sqlite (on the bounce host) | dynamodb
    # `bounces.suppression` as validated (thresholds, window, expiry, complaint streams), JSON-ready: the
    # processor builds its policy from it with the core's own reader.
    policy: tuple[tuple[str, object], ...] = ()


@dataclass(frozen=True, slots=True)
class SeedPlan:
    """One seed mailbox (`monitoring.seeds.<name>`): every pool sends it a probe (mailinfra.placement)."""

    name: str
    provider: str
    address: str
    imap_host: str
    imap_port: int
    username: str
    password_secret: str  # Pulumi secret config key; the value is never in the plan
    junk_folder: str


@dataclass(frozen=True, slots=True)
class PlacementSchedule:
    """How often probes go out and when an unseen one counts as missing (`monitoring`)."""

    interval_seconds: int = 3600
    missing_after_seconds: int = 1800


@dataclass(frozen=True)
class Plan:
    stack: str
    environment: str
    source: str
    as_of: dt.date
    dns_provider: str
    ttl_seconds: int
    streams: tuple[StreamPlan, ...]
    pools: tuple[PoolPlan, ...]
    ips: tuple[IpPlan, ...]
    hosts: tuple[HostPlan, ...]
    routes: tuple[RoutePlan, ...]
    dkim_keys: tuple[DkimKeyPlan, ...]
    zones: tuple[ZonePlan, ...]
    records: tuple[DnsRecord, ...]
    placeholders: tuple[str, ...] = field(default=())
    warmup: tuple[IpLimits, ...] = field(default=())  # today's limits per IP (mailinfra.warmup)
    isolations: tuple[IsolationPlan, ...] = field(default=())  # out of rotation (mailinfra.plan.isolation)
    intake: IntakePlan = field(default=IntakePlan())  # bounce/complaint intake and suppression
    monitoring: MonitoringPlan = field(default=MonitoringPlan())  # metrics, alerts (mailinfra.plan.monitoring)
    seeds: tuple[SeedPlan, ...] = field(default=())  # inbox-placement seed mailboxes (mailinfra.placement)
    placement: PlacementSchedule = field(default=PlacementSchedule())

    # Lookups by name go through indexes built once per plan (a calendar asks for thousands of IPs per date;
    # a linear scan made a 16x prod topology quadratic). Names are unique per kind (mailinfra.model.rules).
    def stream(self, name: str) -> StreamPlan:
        return self._streams_by_name[name]

    def pool(self, name: str) -> PoolPlan:
        return self._pools_by_name[name]

    def ip(self, name: str) -> IpPlan:
        return self._ips_by_name[name]

    def host(self, name: str) -> HostPlan:
        return self._hosts_by_name[name]

    def route(self, name: str) -> RoutePlan:
        return self._routes_by_name[name]

    @functools.cached_property
    def _streams_by_name(self) -> dict[str, StreamPlan]:
        return {s.name: s for s in self.streams}

    @functools.cached_property
    def _pools_by_name(self) -> dict[str, PoolPlan]:
        return {p.name: p for p in self.pools}

    @functools.cached_property
    def _ips_by_name(self) -> dict[str, IpPlan]:
        return {i.name: i for i in self.ips}

    @functools.cached_property
    def _hosts_by_name(self) -> dict[str, HostPlan]:
        return {h.name: h for h in self.hosts}

    @functools.cached_property
    def _routes_by_name(self) -> dict[str, RoutePlan]:
        return {r.name: r for r in self.routes}

    def records_in(self, zone: str) -> tuple[DnsRecord, ...]:
        return tuple(r for r in self.records if r.zone == zone)
