"""`monitoring.seeds` and its schedule -> the plan's SeedPlan values (pure)."""

from __future__ import annotations

from mailinfra.model.schema import StackConfig
from mailinfra.plan.model import PlacementSchedule, SeedPlan


def plan_seeds(config: StackConfig) -> tuple[SeedPlan, ...]:
    """Every seed mailbox, in the stack file's order (its key names it in metrics and unit files)."""
    return tuple(
        SeedPlan(name=name, provider=seed.provider, address=seed.address.lower(), imap_host=seed.imap_host,
                 imap_port=seed.imap_port, username=seed.username or seed.address,
                 password_secret=seed.password_secret, junk_folder=seed.junk_folder)
        for name, seed in config.monitoring.seeds.items()
    )


def plan_placement_schedule(config: StackConfig) -> PlacementSchedule:
    monitoring = config.monitoring
    return PlacementSchedule(interval_seconds=monitoring.probe_interval_hours * 3600,
                             missing_after_seconds=monitoring.probe_missing_after_minutes * 60)
