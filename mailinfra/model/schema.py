"""The stack file schema: what a sender may write under the `mailinfra:` namespace.

Every field here is documented in docs/configuration.md with its default. Shape rules live here
(types, enums, formats); rules that relate one part of the topology to another live in
`mailinfra.model.rules`.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

# Re-exported (mypy strict wants the alias form): the schema's users keep importing StreamKind from here.
from mailinfra.model.kinds import StreamKind as StreamKind  # noqa: PLC0414

# RFC 1035 §2.3.1 / RFC 1123 §2.1: letters, digits, hyphen; labels 1-63 octets, name <= 253.
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,40}$")
_SELECTOR = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
# A Postfix time value (postconf(5) "Time units": s, m, h, d, w).
_DURATION = re.compile(r"^([1-9][0-9]{0,5})([smhdw])$")
_DURATION_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _check_domain(value: str) -> str:
    name = value.lower().rstrip(".")
    labels = name.split(".")
    if len(name) > 253 or len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise ValueError("a domain name such as example.com (RFC 1035 letters, digits, hyphens)")
    if labels[-1].isdigit():
        raise ValueError("a domain name, not an IP address")
    return name


def _check_relative_name(value: str) -> str:
    name = value.lower().strip(".")
    if not name or not all(_LABEL.match(label) for label in name.split(".")):
        raise ValueError("a subdomain label such as mail or bounce.mail (letters, digits, hyphens)")
    return name


def _check_return_path(value: str) -> str:
    # A trailing dot marks an absolute name (as in a zone file); keep it so the rules can tell
    # `bounce.other.net.` (absolute, checked against the org domain) from `bounce` (relative).
    absolute = value.endswith(".")
    name = _check_relative_name(value)
    return f"{name}." if absolute else name


def _check_mailbox(value: str) -> str:
    local, at, domain = value.rpartition("@")
    if not at or not local or any(c.isspace() for c in local):
        raise ValueError("an email address such as fbl@example.com")
    return f"{local}@{_check_domain(domain)}"


def _check_key(value: str) -> str:
    if not _KEY.match(value):
        raise ValueError(
            "a name of lower-case letters, digits, hyphens and underscores starting with a letter"
        )
    return value


def _check_ipv4(value: str) -> str:
    try:
        address = ipaddress.IPv4Address(value)
    except ValueError:
        raise ValueError("an IPv4 address such as 203.0.113.10") from None
    documentation = any(address in net for net in _DOC_NETS_ALL)
    # Sending IPs are public unicast: a private, reserved or multicast address can have no PTR a
    # receiver would see (Python counts 224.0.0.0/4 as global, hence the explicit multicast test).
    if not documentation and (not address.is_global or address.is_multicast):
        raise ValueError("a public IPv4 address (documentation ranges allowed for examples)")
    return str(address)


def _check_cidr(value: str) -> str:
    try:
        return str(ipaddress.IPv4Network(value, strict=True))
    except ValueError:
        raise ValueError("an IPv4 network in CIDR form such as 10.0.0.0/16 (host bits zero)") from None


def _check_duration(value: str) -> str:
    if not _DURATION.match(value):
        raise ValueError("a duration such as 30m, 4h or 2d (a number and one of s, m, h, d, w)")
    return value


def duration_seconds(value: str) -> int:
    """Seconds of a duration accepted by the schema (`4h` -> 14400)."""
    match = _DURATION.match(value)
    assert match is not None  # the schema accepted it
    return int(match.group(1)) * _DURATION_SECONDS[match.group(2)]


def _check_selector(value: str) -> str:
    if not _SELECTOR.match(value):
        raise ValueError("a DKIM selector label (lower-case letters, digits, hyphens)")
    return value


_DOC_NETS_ALL = (
    ipaddress.IPv4Network("192.0.2.0/24"),
    ipaddress.IPv4Network("198.51.100.0/24"),
    ipaddress.IPv4Network("203.0.113.0/24"),
)

DomainName = Annotated[str, AfterValidator(_check_domain)]
RelativeName = Annotated[str, AfterValidator(_check_relative_name)]
ReturnPath = Annotated[str, AfterValidator(_check_return_path)]
Key = Annotated[str, AfterValidator(_check_key)]
IPv4 = Annotated[str, AfterValidator(_check_ipv4)]
Cidr = Annotated[str, AfterValidator(_check_cidr)]
Selector = Annotated[str, AfterValidator(_check_selector)]
Duration = Annotated[str, AfterValidator(_check_duration)]


class Strict(BaseModel):
    """Unknown keys are errors: a typo must never silently fall back to a default."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


# ---------------------------------------------------------------- domains


class Policy(StrEnum):
    NONE = "none"
    QUARANTINE = "quarantine"
    REJECT = "reject"


class Alignment(StrEnum):
    RELAXED = "r"
    STRICT = "s"


class Dmarc(Strict):
    policy: Policy = Policy.QUARANTINE
    subdomain_policy: Policy | None = None
    adkim: Alignment = Alignment.RELAXED
    aspf: Alignment = Alignment.RELAXED
    rua: list[Annotated[str, Field(pattern=r"^mailto:[^@\s]+@[^@\s]+$")]] = []
    ruf: list[Annotated[str, Field(pattern=r"^mailto:[^@\s]+@[^@\s]+$")]] = []
    fo: Annotated[str, Field(pattern=r"^[01ds](:[01ds])*$")] | None = None
    per_sending_domain: bool = False


class SelectorState(StrEnum):
    """Staged rotation (M3AAWG DKIM key rotation): publish, verify, switch, retire."""

    PENDING = "pending"  # published, not yet signing: resolvers must see it before the switch
    ACTIVE = "active"  # published and signing
    RETIRING = "retiring"  # published, no longer signing: mail in flight still verifies
    RETIRED = "retired"  # withdrawn from DNS; kept in config so the name is never re-used


class Algorithm(StrEnum):
    RSA_2048 = "rsa-2048"
    RSA_3072 = "rsa-3072"
    RSA_4096 = "rsa-4096"
    ED25519 = "ed25519"


class DkimSelector(Strict):
    state: SelectorState = SelectorState.ACTIVE
    algorithm: Algorithm = Algorithm.RSA_2048
    # Base64 public half (SPKI DER for RSA, raw 32 bytes for Ed25519). It is public and belongs
    # in the stack file so a re-plan never changes a published key. Absent = preview placeholder.
    public_key: str | None = None


class Dkim(Strict):
    selectors: dict[Selector, DkimSelector] = Field(min_length=1)


class Domain(Strict):
    dmarc: Dmarc = Dmarc()
    dkim: Dkim


# ---------------------------------------------------------------- streams


class FallbackCondition(StrEnum):
    """When a stream's mail may move to its secondary route (docs/architecture.md, "Fallback")."""

    OUTAGE = "outage"
    THROTTLE = "throttle"


class Tier(StrEnum):
    """Engagement tiers of a marketing stream, most engaged first (warmup sends to them first)."""

    ACTIVE = "active"
    WINBACK = "winback"
    COLD = "cold"


class Tiers(Strict):
    active: Key
    winback: Key | None = None
    cold: Key | None = None


# How long a message of each kind may wait in the queue before it bounces back to the sender (Postfix's
# default is 5 days for everything). A one-time password or a password reset is useless hours late and the
# app must learn that it failed; a campaign is stale after a day. Overridden per stream (queue_lifetime).
QUEUE_LIFETIME_DEFAULTS = {"transactional": "1h", "marketing": "1d", "bulk": "1d"}
# Above this a stale message keeps hurting (a receiver deferring us for days is a reputation problem).
QUEUE_LIFETIME_MAX_SECONDS = 5 * 86400


class Stream(Strict):
    kind: StreamKind
    domain: DomainName
    subdomain: RelativeName
    return_path: ReturnPath
    pool: Key | None = None
    tiers: Tiers | None = None
    route: Key | None = None
    # When the stream's mail may leave by its route (mailinfra.mta.replies): `outage` = the receiver
    # cannot be reached (refused, timed out, silent), `throttle` = it answers a busy/throttling 4xx.
    # Reputation and policy deferrals never reroute. None: [outage, throttle] for transactional mail
    # (a password reset must arrive now); marketing and bulk use a route only when the operator
    # declares it here, because the route's reputation then carries that mail too. Without route: unused.
    fallback_on: list[FallbackCondition] | None = None
    one_click_unsubscribe: bool = False
    previous_names: list[Key] = []
    # None: QUEUE_LIFETIME_DEFAULTS of the stream's kind.
    queue_lifetime: Duration | None = None
    # The app servers that inject this stream's mail (unauthenticated, by source address): its instances'
    # mynetworks and the security-group rules of their ports. [] = every injection network of the host.
    injectors: list[Cidr] = []

    @property
    def queue_lifetime_seconds(self) -> int:
        return duration_seconds(self.queue_lifetime or QUEUE_LIFETIME_DEFAULTS[str(self.kind)])

    @model_validator(mode="after")
    def _lifetime_within_postfix_default(self) -> Stream:
        if self.queue_lifetime is not None and self.queue_lifetime_seconds > QUEUE_LIFETIME_MAX_SECONDS:
            raise ValueError("queue_lifetime: at most 5d (Postfix's own default; longer only delays "
                             "the bounce the app acts on)")
        return self

    @model_validator(mode="after")
    def _fallback_declared(self) -> Stream:
        if self.route is not None and self.fallback_on is None and self.kind is not StreamKind.TRANSACTIONAL:
            raise ValueError(f"fallback_on: [outage], [outage, throttle] or [] (never): a {self.kind} "
                             "stream uses its route only when declared")
        if self.fallback_on is not None and len(set(self.fallback_on)) != len(self.fallback_on):
            raise ValueError(f"fallback_on: each condition once, got {[str(c) for c in self.fallback_on]}")
        return self

    def fallback_conditions(self) -> tuple[str, ...]:
        """The declared conditions in a fixed order, with the transactional default applied."""
        if self.route is None:
            return ()
        declared = (self.fallback_on if self.fallback_on is not None
                    else [FallbackCondition.OUTAGE, FallbackCondition.THROTTLE])
        return tuple(str(c) for c in FallbackCondition if c in declared)

    @model_validator(mode="after")
    def _pool_or_tiers(self) -> Stream:
        if self.kind is StreamKind.MARKETING and self.tiers is None:
            raise ValueError("tiers: a pool per engagement tier {active: POOL, winback: POOL, cold: POOL} "
                             "(marketing streams split by tier)")
        if self.kind is not StreamKind.MARKETING and self.pool is None:
            raise ValueError(f"pool: the name of the pool this {self.kind} stream sends from")
        if self.pool is not None and self.tiers is not None:
            raise ValueError("pool and tiers: one of them (tiers for a marketing stream, pool for the others)")
        return self


# ---------------------------------------------------------------- pools


class Warmup(Strict):
    start: dt.date | None = None
    schedule: Key = "standard"
    warmed: bool = False

    @model_validator(mode="after")
    def _start_or_warmed(self) -> Warmup:
        if self.warmed and self.start is not None:
            raise ValueError("warmed and start: one of them (warmed: true when it already has reputation, "
                             "start: YYYY-MM-DD to warm it)")
        if not self.warmed and self.start is None:
            raise ValueError("start: the date its warmup starts (YYYY-MM-DD), or warmed: true")
        return self


class Ip(Strict):
    host: Key | None = None
    address: IPv4 | None = None
    allocation_id: Annotated[str, Field(pattern=r"^eipalloc-[0-9a-f]{8,17}$")] | None = None
    helo: DomainName | None = None
    warmup: Warmup | None = None
    previous_names: list[Key] = []

    @model_validator(mode="after")
    def _adopted_pair(self) -> Ip:
        if (self.address is None) != (self.allocation_id is None):
            raise ValueError(
                "address and allocation_id: both (an adopted Elastic IP) or neither (a new one)"
            )
        return self

    @property
    def adopted(self) -> bool:
        return self.allocation_id is not None


class Pool(Strict):
    hosts: list[Key] = Field(min_length=1)
    ips: dict[Key, Ip] = Field(min_length=1)
    warmup: Warmup | None = None
    # Former names of the pool: its IpPool component is aliased, so a rename reads as one in review.
    previous_names: list[Key] = []
    # The port the pool's Postfix instance accepts injection on, on every host of the pool: the apps' contract
    # (mailinfra/plan/injection_ports.py). None: derived from the pool's first name (stable when other pools
    # are added or removed); declare it to pin it. Unique across the stack's pools; 1024 and above (clear
    # of the primary instance's 25, 465 and 587).
    injection_port: Annotated[int, Field(ge=1024, le=65535)] | None = None


# ---------------------------------------------------------------- hosts and routes


class MtaKind(StrEnum):
    POSTFIX = "postfix"
    POWERMTA = "powermta"


class Host(Strict):
    mta: MtaKind = MtaKind.POSTFIX
    instance_type: str = "c6i.large"
    availability_zone: str | None = None
    subnet_id: Annotated[str, Field(pattern=r"^subnet-[0-9a-f]{8,17}$")] | None = None
    injection_cidrs: list[Cidr] = Field(min_length=1)
    fqdn: DomainName | None = None
    tls: Literal["may", "dane"] = "may"
    # What the private addresses are derived with (mailinfra.plan.private_addresses). None: the Pulumi
    # project and stack, so two stacks in one subnet differ. "": the unsalted derivation of releases
    # before 2026-12, for a host deployed then (a new salt moves every address: a replacement).
    address_salt: str | None = None
    # launched: the instance keeps the bootstrap (user data) it was launched with, so a bootstrap change
    # touches no running host; current: it follows the bootstrap the program renders now, and a change
    # replaces it. Set `current` on one host at a time to roll a new bootstrap out.
    bootstrap: Literal["launched", "current"] = "launched"


class RelayRoute(Strict):
    kind: Literal["relay"]
    host: DomainName
    port: int = Field(default=587, ge=1, le=65535, strict=True)
    username: str | None = None
    password_secret: Key | None = None
    # The relay's published SPF record (e.g. spf.relay.example.net): relayed mail keeps our
    # return-path, so without it SPF fails and DMARC rests on DKIM alone.
    spf_include: DomainName | None = None

    @model_validator(mode="after")
    def _credentials_pair(self) -> RelayRoute:
        if (self.username is None) != (self.password_secret is None):
            raise ValueError("username and password_secret: both (an authenticated relay) or neither")
        return self


class SesRoute(Strict):
    kind: Literal["ses"]
    region: Annotated[str, Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")]
    port: Literal[587, 2587, 25, 465, 2465] = 587


class HostsRoute(Strict):
    kind: Literal["hosts"]
    hosts: list[Key] = Field(min_length=1)


Route = Annotated[RelayRoute | SesRoute | HostsRoute, Field(discriminator="kind")]


# ---------------------------------------------------------------- dns and bounces


class DnsProvider(StrEnum):
    ROUTE53 = "route53"
    CLOUDFLARE = "cloudflare"


class Adopt(StrEnum):
    """What `pulumi up` does where the zone already holds a record the plan creates."""

    NONE = "none"  # create: the provider fails on a live record of the same name and type
    OVERWRITE = "overwrite"  # Route53 allow_overwrite: UPSERT replaces the live RRset
    IMPORT = "import"  # the records in import_ids are imported (taken over as they are), the rest created


class Zone(Strict):
    zone_id: str | None = None
    adopt: Adopt = Adopt.NONE
    # Record key (`TXT:_dmarc.example.com`, as review and drift name it) -> the provider's import id:
    # Route53 `<zone_id>_<name>_<TYPE>`, Cloudflare `<zone_id>/<dns_record_id>`. For a Cloudflare RRset
    # with several values, one entry per value: `MX:bounce.example.com 10 mx1.example.com`.
    import_ids: dict[str, str] = {}

    @model_validator(mode="after")
    def _imports_need_import(self) -> Zone:
        if self.import_ids and self.adopt is not Adopt.IMPORT:
            raise ValueError(f"adopt: import when import_ids are given (adopt is {self.adopt})")
        for key in self.import_ids:
            kind, _, name = key.partition(":")
            if kind not in {"A", "MX", "TXT", "CNAME", "NS"} or not name:
                raise ValueError(f"import_ids keys that are record keys such as TXT:_dmarc.example.com (got {key!r})")
        return self


class Dns(Strict):
    provider: DnsProvider = DnsProvider.ROUTE53
    zones: dict[DomainName, Zone] = {}
    ttl_seconds: int = Field(default=3600, ge=60, le=86400, strict=True)
    infra_domain: DomainName | None = None

    @model_validator(mode="after")
    def _overwrite_is_route53_only(self) -> Dns:
        # Cloudflare has no RRset to overwrite: a second TXT beside a live one is published as a second
        # record, and two DMARC or SPF records void the policy (RFC 7489 §6.6.3, RFC 7208 §4.5).
        for name, zone in self.zones.items():
            if zone.adopt is Adopt.OVERWRITE and self.provider is DnsProvider.CLOUDFLARE:
                raise ValueError(f"zones.{name}.adopt: import with import_ids on Cloudflare "
                                 "(adopt: overwrite needs Route53's allow_overwrite)")
        return self


class MtaSts(Strict):
    mode: Literal["enforce", "testing", "none"] = "testing"
    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9]{1,32}$")]

    @model_validator(mode="after")
    def _no_enforce_without_a_verifiable_mx(self) -> MtaSts:
        # RFC 8461 §4.2/§5: under `enforce` a sender delivers only to an MX whose certificate is PKIX-valid
        # for its name, and refuses otherwise. mailinfra serves no policy host, and the bounce MX certificate
        # is generated on the host at first boot (self-signed: opportunistic STARTTLS, RFC 7435), so
        # enforce would make every MTA-STS sender refuse our bounces and complaints.
        if self.mode == "enforce":
            raise ValueError("mode: testing or none (enforce needs a policy host and a CA-signed certificate "
                             "on every bounce MX; mailinfra provides neither)")
        return self


class SuppressionStoreKind(StrEnum):
    SQLITE = "sqlite"  # embedded on the bounce host (the lab's too); hosts read its change feed
    DYNAMODB = "dynamodb"  # a table the components provision (on-demand, TTL, point-in-time recovery)


class Suppression(Strict):
    """`bounces.suppression`: what a bounce or complaint does to the recipient (mailinfra.suppression)."""

    store: SuppressionStoreKind = SuppressionStoreKind.SQLITE
    # Soft failures (mailbox full, X.2.2) suppress once this many arrive for one address within the window.
    soft_bounce_threshold: int = Field(default=3, ge=1, le=100, strict=True)
    soft_bounce_window_days: int = Field(default=7, ge=1, le=365, strict=True)
    # A soft entry lapses after this many days (a full mailbox gets emptied); hard entries never lapse.
    soft_expiry_days: int = Field(default=30, ge=1, le=3650, strict=True)
    # The stream kinds an ARF abuse/fraud/virus complaint stops mail of (RFC 5965 feedback types).
    # Transactional is left out by default: a receipt or password reset the recipient asked for still goes.
    complaint_streams: list[StreamKind] = Field(default=[StreamKind.MARKETING, StreamKind.BULK], min_length=1)
    # A VERP token (or X-Mailinfra-Id header) older than this verifies as nothing: late DSNs arrive within
    # the senders' queue lifetime (Postfix maximal_queue_lifetime 5d), ARF reports within weeks.
    token_max_age_days: int = Field(default=60, ge=7, le=365, strict=True)
    # The Pulumi secret config key holding the VERP HMAC secret (`pulumi config set --secret
    # mailinfra:verp_secret ...`, at least 16 bytes); `verp_secret_previous` verifies only (rotation).
    verp_secret: Key = "verp_secret"  # noqa: S105 -- the name of a config key, not a secret
    verp_secret_previous: Key | None = None


class Bounces(Strict):
    hosts: list[Key] = Field(min_length=1)
    mx_preference: int = Field(default=10, ge=0, le=65535, strict=True)
    # Deprecated by fbl_addresses (one address only); still read: feedback_addresses unites both.
    fbl_mailbox: str | None = None
    # The addresses registered with the feedback loops (Yahoo CFL, Microsoft JMRP, Comcast ...): the bounce
    # hosts accept ARF reports (RFC 5965) for them and hand them to the processor.
    fbl_addresses: list[Annotated[str, AfterValidator(_check_mailbox)]] = []
    suppression: Suppression = Suppression()
    tls_rpt_rua: list[Annotated[str, Field(pattern=r"^(mailto:|https://)\S+$")]] = []
    mta_sts: MtaSts | None = None

    @property
    def feedback_addresses(self) -> list[str]:
        """fbl_addresses and the deprecated fbl_mailbox, lower-cased, each once."""
        named = [*self.fbl_addresses, *([self.fbl_mailbox] if self.fbl_mailbox else [])]
        return list(dict.fromkeys(address.lower() for address in named))


class Volume(Strict):
    """`volume`: what the stack is expected to send, for `mailinfra cost` and the audit's own-vs-rent note."""

    # Messages a month across every stream. None: not stated (cost prices usage at --volume, else 0).
    messages_per_month: int | None = Field(default=None, ge=0, strict=True)
    # Average message size on the wire (headers, body, inline parts): data transfer out and SES data.
    average_message_kb: float = Field(default=50, gt=0, le=40960)
    # Share of the messages that leave through an SES route (overflow and outages), 0-1.
    fallback_share: float = Field(default=0.0, ge=0, le=1)


class WarmupSchedule(Strict):
    daily_caps: list[Annotated[int, Field(gt=0, strict=True)]] = Field(min_length=1)


# ---------------------------------------------------------------- incident isolation

# `pool:<pool>` or `ip:<ip>`, optionally `@<provider>`: what is taken out of rotation (see mailinfra.plan.isolation).
_ISOLATION_TARGET = re.compile(r"^(pool|ip):([a-z0-9][a-z0-9-]*)(?:@([a-z0-9-]+))?$")


def _check_isolation_target(value: str) -> str:
    if not _ISOLATION_TARGET.match(value):
        raise ValueError("pool:<pool> or ip:<ip>, optionally @<provider> (e.g. pool:com-mkt-cold@gmail)")
    return value


IsolationTarget = Annotated[str, AfterValidator(_check_isolation_target)]


class IsolationAlternative(StrEnum):
    ROUTE = "route"  # the stream's secondary route (a pool's mail)
    SIBLINGS = "siblings"  # the other IPs of the same pool, within their caps (one IP's mail)


class Isolation(Strict):
    """A pool, IP or pool x provider out of rotation while an incident is diagnosed: one reviewable line."""

    reason: Annotated[str, Field(min_length=3, max_length=300)]
    since: dt.date
    to: IsolationAlternative | None = None  # default: route for a pool, siblings for an IP


# ---------------------------------------------------------------- monitoring (delivery metrics and placement)


class Seed(Strict):
    """`monitoring.seeds.<name>`: one seed mailbox at a receiving provider, read over IMAP for inbox placement."""

    provider: Key  # the receiving provider this mailbox belongs to (a key of the warmup/provider limits)
    address: Annotated[str, AfterValidator(_check_mailbox)]
    imap_host: DomainName
    imap_port: int = Field(default=993, ge=1, le=65535, strict=True)  # IMAPS (RFC 8314)
    username: str | None = None  # default: the address
    # The Pulumi secret config key holding the mailbox password (`pulumi config set --secret mailinfra:<key> ...`).
    password_secret: Key
    # Where the reader looks for spam when the server advertises no RFC 6154 `\Junk` special-use folder.
    junk_folder: str = "Junk"


class Alerts(Strict):
    """`monitoring.alerts`: the thresholds the rendered alert rules fire at, per pool x receiving provider
    (mailinfra.monitoring.rules). Rates are over `window_minutes` and only once at least `min_attempts`
    deliveries were tried in it (one bounce of two messages is not a 50 % bounce rate)."""

    # SES reviews an account at 5 % bounces (and pauses it at 10 %): the industry's line for a list problem.
    bounce_rate_percent: float = Field(default=5.0, gt=0, le=100)
    # Google's bulk sender rule: spam rate below 0.3 %, aim below 0.1 % (Gmail sender guidelines, 2024).
    complaint_rate_percent: float = Field(default=0.3, gt=0, le=100)
    complaint_target_percent: float = Field(default=0.1, gt=0, le=100)
    # A receiver throttling or blocking the pool shows first as deferrals (421/451 4.7.x).
    deferral_rate_percent: float = Field(default=30.0, gt=0, le=100)
    # The oldest queued message of an instance: mail waiting this long is late for any stream.
    queue_age_seconds: int = Field(default=3600, ge=60, strict=True)
    window_minutes: int = Field(default=60, ge=5, le=1440, strict=True)
    min_attempts: int = Field(default=100, ge=1, strict=True)
    # How long a condition must hold before the alert fires (Prometheus `for:`).
    for_minutes: int = Field(default=5, ge=0, le=1440, strict=True)


class AlertRouting(Strict):
    """`monitoring.routing`: where fired alerts go (Alertmanager receivers). Empty: nowhere (the audit flags it)."""

    email_to: list[Annotated[str, AfterValidator(_check_mailbox)]] = []
    email_from: Annotated[str, AfterValidator(_check_mailbox)] | None = None  # default: alerts@<first domain>
    # The SMTP server Alertmanager hands its mail to (host:port); the monitoring host has no MTA of its own.
    email_smarthost: str | None = None
    webhook_urls: list[Annotated[str, Field(pattern=r"^https?://[^\s]+$")]] = []

    @model_validator(mode="after")
    def _smarthost_for_email(self) -> AlertRouting:
        if self.email_to and not self.email_smarthost:
            raise ValueError("email_smarthost: received nothing, expected host:port of the SMTP server "
                             "Alertmanager sends the alert mail through (email_to is set)")
        return self


class MonitoringHost(Strict):
    """`monitoring.host`: the Prometheus + Alertmanager instance (components/monitoring_host.py)."""

    instance_type: str = "t3.small"
    availability_zone: str | None = None
    subnet_id: Annotated[str, Field(pattern=r"^subnet-[0-9a-f]{8,17}$")] | None = None


class Monitoring(Strict):
    """`monitoring`: delivery metrics, alert rules and inbox-placement seeds (mailinfra.metrics/.placement)."""

    alerts: Alerts = Alerts()
    routing: AlertRouting = AlertRouting()
    # None: no monitoring host is provisioned (the exporters still run; scrape them from elsewhere).
    host: MonitoringHost | None = None
    scrape_interval_seconds: int = Field(default=15, ge=5, le=300, strict=True)
    retention_days: int = Field(default=30, ge=1, le=3650, strict=True)
    seeds: dict[Key, Seed] = {}
    # How often every pool sends one probe to every seed (the probe timer, in UTC hours dividing the day, so
    # every host and the reader agree on the slots). An hourly probe is 24 messages a day per pool and seed.
    probe_interval_hours: Literal[1, 2, 3, 4, 6, 8, 12, 24] = 1
    # A probe not found in the seed's INBOX or Junk this long after it was sent counts as missing.
    probe_missing_after_minutes: int = Field(default=30, ge=5, le=1440, strict=True)


# ---------------------------------------------------------------- the stack


class StackConfig(Strict):
    """Everything under `mailinfra:` in one stack file."""

    environment: Key | None = None
    domains: dict[DomainName, Domain] = Field(min_length=1)
    streams: dict[Key, Stream] = Field(min_length=1)
    pools: dict[Key, Pool] = Field(min_length=1)
    hosts: dict[Key, Host] = Field(min_length=1)
    routes: dict[Key, Route] = {}
    dns: Dns = Dns()
    bounces: Bounces
    warmup_schedules: dict[Key, WarmupSchedule] = {}
    isolations: dict[IsolationTarget, Isolation] = {}
    volume: Volume = Volume()
    monitoring: Monitoring = Monitoring()
