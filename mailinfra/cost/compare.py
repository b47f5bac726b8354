"""Own vs rent: the same volume priced on SES alone and on ESP plans, and where owning starts to pay (pure).

The break-even volume is solved, not sampled: every cost here is piecewise linear in the monthly volume (the
data-transfer tiers, free allowances and a plan's included messages are the kinks), so between two kinks the
difference rent - own is a straight line and its zero is exact.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from mailinfra.cost.estimate import (
    GB,
    KB,
    SES_EVENTS_PER_MESSAGE,
    SQS_REQUESTS_PER_EVENT,
    Usage,
    estimate_cost,
    tier_breakpoints_gb,
)
from mailinfra.cost.prices import AwsPrices, EspPrices
from mailinfra.plan.model import Plan

# Above this the comparison stops looking (10 billion messages a month): renting "wins" everywhere below it.
MAX_MESSAGES = 1e10
# The seed's rule of thumb: below ~2 M messages a month a well-configured ESP serves better than owning.
OWN_VS_RENT_MIN_MESSAGES = 2_000_000


@dataclass(frozen=True, slots=True)
class RentOption:
    key: str
    name: str
    monthly_usd: float
    source: str
    break_even_messages: float | None  # None: renting stays cheaper up to MAX_MESSAGES

    def as_dict(self) -> dict[str, object]:
        return {"key": self.key, "name": self.name, "monthly_usd": round(self.monthly_usd, 2),
                "break_even_messages_per_month": (None if self.break_even_messages is None
                                                  else round(self.break_even_messages)),
                "source": self.source}


@dataclass(frozen=True)
class OwnVsRent:
    messages: float
    owned_usd: float
    options: tuple[RentOption, ...]


def compare_own_vs_rent(plan: Plan, region: str, prices: AwsPrices, esp: EspPrices, usage: Usage, *,
                        where: str) -> OwnVsRent:
    def owned(messages: float) -> float:
        return estimate_cost(plan, region, prices, replace(usage, messages_per_month=messages), where=where).total_usd

    kinks = _owned_kinks(plan, prices, region, usage)
    regional = prices.region(region, where)

    def ses(messages: float) -> float:
        return messages / 1000 * regional.ses_per_1000.usd + usage.gb(messages) * regional.ses_attachment_gb.usd

    options = [RentOption("ses", "Amazon SES alone (a la carte)", ses(usage.messages_per_month),
                          regional.ses_per_1000.source, solve_break_even(ses, owned, kinks))]
    for key, offer in esp.plans.items():
        options.append(RentOption(key, f"{offer.vendor} {offer.plan}", offer.monthly_usd(usage.messages_per_month),
                                  offer.source,
                                  solve_break_even(offer.monthly_usd, owned, [*kinks, *offer.kinks()])))
    return OwnVsRent(usage.messages_per_month, owned(usage.messages_per_month), tuple(options))


def solve_break_even(rent: Callable[[float], float], own: Callable[[float], float],
                     kinks: list[float], limit: float = MAX_MESSAGES) -> float | None:
    """The smallest monthly volume at which renting costs at least as much as owning.

    `kinks`: every volume where either cost changes slope; between two of them both are linear, so the zero of
    rent - own is found exactly by interpolation. 0 when owning is already cheaper with nothing sent.
    """
    points = sorted({0.0, limit, *(k for k in kinks if 0 < k < limit)})
    gap = [rent(v) - own(v) for v in points]
    if gap[0] >= 0:
        return 0.0
    for (a, ga), (b, gb) in zip(zip(points, gap, strict=True), zip(points[1:], gap[1:], strict=True), strict=False):
        if ga < 0 <= gb:
            return a + (b - a) * (-ga) / (gb - ga)
    return None


def _owned_kinks(plan: Plan, prices: AwsPrices, region: str, usage: Usage) -> list[float]:
    """Volumes where the owned cost changes slope: transfer tiers, and the SNS/SQS free million."""
    share = usage.fallback_share if any(r.kind == "ses" for r in plan.routes) else 0.0
    regional = prices.regions.get(region)
    kinks: list[float] = []
    if regional is None:
        return kinks
    per_message_gb = usage.average_message_kb * KB / GB * (1 - share)
    if per_message_gb > 0:
        kinks += [gb / per_message_gb for gb in tier_breakpoints_gb(regional.transfer_out_gb)]
    if share > 0:
        kinks += [regional.sns_publish_per_million.free * 1e6 / (share * SES_EVENTS_PER_MESSAGE),
                  regional.sqs_requests_per_million.free * 1e6 / (share * SES_EVENTS_PER_MESSAGE
                                                                  * SQS_REQUESTS_PER_EVENT)]
    return kinks
