"""What the planned topology costs a month, line by line, from the plan and a pinned price table (pure).

Quantities come from the plan (hosts and their instance types, IPs, zones, streams and routes) and from the
stated volume; prices from `mailinfra.cost.prices`. Every line carries the source of its price.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from mailinfra.cost.prices import AwsPrices, Price, RegionPrices, TieredPrice
from mailinfra.errors import ConfigError, ConfigErrors
from mailinfra.plan.disks import ROOT_SIZE_GIB, SPOOL_SIZE_GIB, VOLUME_TYPE
from mailinfra.plan.model import Plan

# Bytes: AWS bills data transfer and SES attachments per GB of 2^30 bytes; a message size is given in KB of 1,024.
KB = 1024
GB = 1024**3
# The config bundle: one manifest per host (well under 1 MB), the current version and the 10 noncurrent ones
# its lifecycle keeps (components/config_bundle.py, NONCURRENT_KEEP): an upper bound of its storage.
BUNDLE_GB_PER_HOST = 11 * 1_000_000 / GB
# SES events of a relayed message the bounce processor receives (components/secondary_route.py, SES_EVENT_TYPES):
# one DELIVERY (or BOUNCE/REJECT) per message, published once to SNS; each reaches SQS as one SendMessage, and
# the processor's ReceiveMessage and DeleteMessage make three SQS requests.
SES_EVENTS_PER_MESSAGE = 1
SQS_REQUESTS_PER_EVENT = 3


@dataclass(frozen=True, slots=True)
class Usage:
    """The volume assumptions a cost is computed at."""

    messages_per_month: float
    average_message_kb: float
    fallback_share: float  # of the messages, the share sent through an SES route
    stated: bool = True  # False: no volume was given (stack or --volume): usage lines are at 0

    def gb(self, messages: float) -> float:
        return messages * self.average_message_kb * KB / GB


@dataclass(frozen=True, slots=True)
class CostLine:
    component: str
    item: str
    quantity: float
    unit: str
    unit_usd: float  # the price per unit (tiered prices: the effective rate of this quantity)
    monthly_usd: float
    source: str
    usage_based: bool = False  # scales with the volume (False: the topology's fixed monthly cost)

    def as_dict(self) -> dict[str, object]:
        return {"component": self.component, "item": self.item, "quantity": round(self.quantity, 6),
                "unit": self.unit, "unit_usd": self.unit_usd, "monthly_usd": round(self.monthly_usd, 4),
                "usage_based": self.usage_based, "source": self.source}


@dataclass(frozen=True)
class CostEstimate:
    stack: str
    region: str
    prices_date: str
    prices_path: str
    usage: Usage
    lines: tuple[CostLine, ...] = field(default=())

    @property
    def total_usd(self) -> float:
        return sum(line.monthly_usd for line in self.lines)

    @property
    def fixed_usd(self) -> float:
        return sum(line.monthly_usd for line in self.lines if not line.usage_based)

    def by_component(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        for line in self.lines:
            totals[line.component] = totals.get(line.component, 0.0) + line.monthly_usd
        return totals


def estimate_cost(plan: Plan, region: str, prices: AwsPrices, usage: Usage, *, where: str) -> CostEstimate:
    """Every priced line of the topology at `usage`. `where`: the stack file, for a refused region."""
    regional = prices.region(region, where)
    lines = [*_fixed_lines(plan, regional, prices, where), *_usage_lines(plan, regional, prices, usage, where)]
    return CostEstimate(plan.stack, region, prices.date.isoformat(), prices.path, usage, tuple(lines))


# ----------------------------------------------------------------------------- fixed: the topology itself


def _fixed_lines(plan: Plan, regional: RegionPrices, prices: AwsPrices, where: str) -> Iterator[CostLine]:
    hours = prices.hours_per_month
    by_type = Counter(host.instance_type for host in plan.hosts)
    for instance_type, count in sorted(by_type.items()):
        price = regional.ec2_hour.get(instance_type)
        if price is None:
            raise ConfigErrors([ConfigError(where, f"hosts.{_first_host(plan, instance_type)}.instance_type",
                                            instance_type, f"an instance type priced in {prices.path} "
                                            f"({', '.join(sorted(regional.ec2_hour))}), or --prices FILE with it")])
        names = ", ".join(h.name for h in plan.hosts if h.instance_type == instance_type)
        yield _line("EC2", f"{instance_type} x {count} ({names})", count * hours, "instance-hours", price)
    gib = len(plan.hosts) * (SPOOL_SIZE_GIB + ROOT_SIZE_GIB)
    yield _line("EBS", f"{VOLUME_TYPE}: {len(plan.hosts)} x ({SPOOL_SIZE_GIB} GiB spool + {ROOT_SIZE_GIB} GiB root)",
                gib, "GB-month", regional.ebs_gp3_gb_month)
    # Every sending IP is an Elastic IP (new or adopted), billed per hour associated or not since 2024-02-01.
    yield _line("Public IPv4", f"{len(plan.ips)} Elastic IPs", len(plan.ips) * hours, "IP-hours",
                prices.global_.public_ipv4_hour)
    yield _line("S3", f"config bundle: {len(plan.hosts)} manifests, 11 versions each (upper bound)",
                len(plan.hosts) * BUNDLE_GB_PER_HOST, "GB-month", regional.s3_gb_month)
    yield _line("SSM", f"SecureString parameters (DKIM keys, route credentials) of {len(plan.hosts)} hosts",
                len(plan.hosts), "host parameter sets", regional.ssm_standard_parameter_month)
    zones = [z.name for z in plan.zones if z.provider == "route53" and not z.reverse]
    if zones:
        yield _line("Route53", f"hosted zones ({', '.join(zones)})", len(zones), "zone-months",
                    prices.global_.route53_zone_month)


def _first_host(plan: Plan, instance_type: str) -> str:
    return next(h.name for h in plan.hosts if h.instance_type == instance_type)


# ----------------------------------------------------------------------------- usage: at the stated volume


def _usage_lines(plan: Plan, regional: RegionPrices, prices: AwsPrices, usage: Usage,
                 where: str) -> Iterator[CostLine]:
    messages = usage.messages_per_month
    ses_routes = [r for r in plan.routes if r.kind == "ses"]
    ses_share = usage.fallback_share if ses_routes else 0.0
    own = messages * (1 - ses_share)
    gb = usage.gb(own)
    tiered = regional.transfer_out_gb
    yield CostLine("Data transfer", f"out to the internet: {own:,.0f} messages x {usage.average_message_kb:g} KB",
                   gb, "GB", _effective(tiered_usd(tiered, gb), gb), tiered_usd(tiered, gb), tiered.source, True)
    if plan.dns_provider == "route53":
        lookups = max(_lookups_per_message(plan, s.name) for s in plan.streams)
        queries = messages * lookups / 1e6
        yield _line("Route53", f"queries: {lookups}/message (SPF, DKIM, DMARC, HELO), uncached: an upper bound "
                    f"(TTL {plan.ttl_seconds} s)", queries, "million queries",
                    prices.global_.route53_queries_per_million, usage_based=True)
    if ses_routes:
        route = ses_routes[0]
        ses = prices.region(route.region or "", where, f"routes.{route.name}.region")
        sent = messages * ses_share
        yield _line("SES", f"fallback: {ses_share:.1%} of messages via route {route.name} ({route.region})",
                    sent / 1000, "thousand messages", ses.ses_per_1000, usage_based=True)
        yield _line("SES", f"data: {sent:,.0f} x {usage.average_message_kb:g} KB (upper bound: SES bills attachments)",
                    usage.gb(sent), "GB", ses.ses_attachment_gb, usage_based=True)
        events = sent * SES_EVENTS_PER_MESSAGE
        yield _line("SNS", f"SES event publishes ({events:,.0f})", events / 1e6, "million publishes",
                    ses.sns_publish_per_million, usage_based=True)
        yield _line("SQS", f"SES event queue requests ({SQS_REQUESTS_PER_EVENT} per event)",
                    events * SQS_REQUESTS_PER_EVENT / 1e6, "million requests", ses.sqs_requests_per_million,
                    usage_based=True)


def _lookups_per_message(plan: Plan, stream: str) -> int:
    """DNS queries a receiver makes for one message of the stream with an empty cache: SPF at the return path
    (RFC 7208 §4), each DKIM signature's key (RFC 6376 §3.6.2), DMARC (RFC 7489 §6.6.3), and the HELO name's A
    record of the forward-confirmed reverse DNS check."""
    s = plan.stream(stream)
    return 3 + (1 if s.dkim_selector else 0) + (1 if s.ed25519_selector else 0)


def tiered_usd(price: TieredPrice, gb: float) -> float:
    """AWS data transfer: `free_gb` free, then each tier's rate on the GB that fall in it."""
    billable, floor, total = max(0.0, gb - price.free_gb), 0.0, 0.0
    for tier in price.tiers:
        top = tier.up_to_gb if tier.up_to_gb is not None else float("inf")
        total += max(0.0, min(billable, top) - floor) * tier.usd
        floor = top
        if billable <= top:
            break
    return total


def tier_breakpoints_gb(price: TieredPrice) -> list[float]:
    """The GB at which the transfer price changes slope (the free allowance's end, each tier's top)."""
    return [price.free_gb, *(price.free_gb + t.up_to_gb for t in price.tiers if t.up_to_gb is not None)]


def _line(component: str, item: str, quantity: float, unit: str, price: Price, *,
          usage_based: bool = False) -> CostLine:
    billed = max(0.0, quantity - price.free)
    free = f" (first {price.free:g} {unit} free)" if price.free else ""
    return CostLine(component, item + free, quantity, unit, price.usd, billed * price.usd, price.source, usage_based)


def _effective(usd: float, quantity: float) -> float:
    return usd / quantity if quantity else 0.0
