"""`mailinfra cost`: what the planned topology costs a month, and own vs rent (pure: the plan and pinned prices)."""

from __future__ import annotations

from dataclasses import dataclass

from mailinfra.cost.compare import OWN_VS_RENT_MIN_MESSAGES, OwnVsRent, compare_own_vs_rent, solve_break_even
from mailinfra.cost.estimate import CostEstimate, CostLine, Usage, estimate_cost
from mailinfra.cost.prices import (
    AWS_PRICES,
    ESP_PRICES,
    AwsPrices,
    EspPrices,
    display_path,
    load_aws_prices,
    load_esp_prices,
)
from mailinfra.errors import ConfigError, ConfigErrors
from mailinfra.model.load import Stack
from mailinfra.plan.model import Plan


@dataclass(frozen=True)
class StackCost:
    estimate: CostEstimate
    rent: OwnVsRent
    esp_path: str


def usage_of(stack: Stack, *, volume: int | None = None, message_kb: float | None = None,
             fallback_share: float | None = None) -> Usage:
    """The volume assumptions: a command-line value wins over the stack's `volume` keys."""
    declared = stack.config.volume
    messages = volume if volume is not None else declared.messages_per_month
    return Usage(float(messages or 0), message_kb if message_kb is not None else declared.average_message_kb,
                 fallback_share if fallback_share is not None else declared.fallback_share,
                 stated=messages is not None)


def region_of(stack: Stack) -> str:
    region = (stack.other_config or {}).get("aws:region")
    if not isinstance(region, str) or not region:
        raise ConfigErrors([ConfigError(stack.source, "aws:region", region if region else "nothing",
                                        "the stack's region (pulumi config set aws:region us-east-1)")])
    return region


def cost_plan(stack: Stack, plan: Plan, usage: Usage, *, aws: AwsPrices | None = None,
              esp: EspPrices | None = None) -> StackCost:
    aws = aws or load_aws_prices()
    esp = esp or load_esp_prices()
    region = region_of(stack)
    estimate = estimate_cost(plan, region, aws, usage, where=stack.source)
    rent = compare_own_vs_rent(plan, region, aws, esp, usage, where=stack.source)
    return StackCost(estimate, rent, display_path(ESP_PRICES))


__all__ = ["AWS_PRICES", "ESP_PRICES", "OWN_VS_RENT_MIN_MESSAGES", "CostEstimate", "CostLine", "OwnVsRent",
           "StackCost", "Usage", "cost_plan", "estimate_cost", "load_aws_prices", "load_esp_prices", "region_of",
           "solve_break_even", "usage_of"]
