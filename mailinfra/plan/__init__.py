"""The one pure plan every consumer reads: Pulumi components, preview, lab, drift, audit."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mailinfra.plan.model import (
    DkimKeyPlan,
    HostPlan,
    IpPlan,
    Plan,
    PoolPlan,
    RoutePlan,
    StreamPlan,
    ZonePlan,
)

if TYPE_CHECKING:
    from mailinfra.plan.build import build_plan

__all__ = [
    "DkimKeyPlan",
    "HostPlan",
    "IpPlan",
    "Plan",
    "PoolPlan",
    "RoutePlan",
    "StreamPlan",
    "ZonePlan",
    "build_plan",
]


def __getattr__(name: str) -> Any:
    # Lazy: mailinfra.dns.plan imports the plan's value types, and build imports mailinfra.dns.plan.
    if name == "build_plan":
        from mailinfra.plan.build import build_plan

        return build_plan
    raise AttributeError(name)
