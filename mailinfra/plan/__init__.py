"""The one pure plan every consumer reads: Pulumi components, preview, lab, drift, audit."""

from mailinfra.plan.build import build_plan
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
