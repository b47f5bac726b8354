"""The shaping service's configuration and systemd unit, from the plan (pure): per pool instance of a
Postfix host, its log, its transports by provider, its stream's route hops; the rules as data."""

from __future__ import annotations

import dataclasses
import json

from mailinfra.mta.files import RenderedFile, render_template, rendered
from mailinfra.mta.postfix import instance_log, plan_instances
from mailinfra.plan.model import HostPlan, Plan
from mailinfra.shaping.rules import REPLY_RULES
from mailinfra.warmup import PROVIDER_DOMAINS

SHAPING_UNIT = "mailinfra-shaping"
SHAPING_CONFIG = "etc/mailinfra/shaping.json"
# How long a pool stays slowed, suspended or on its route after the last matching reply before it returns
# (KumoMTA's community rules suspend for hours; a blocklisting is diagnosed in minutes to hours, and a
# return that meets the block again acts again within seconds).
COOLDOWN_SECONDS = 1800
# Slowing multiplies the transport's rate delay (PowerMTA's backoff sends at a fraction of the rate).
SLOW_FACTOR = 4
POLL_SECONDS = 0.5
# The service's own Prometheus endpoint (loopback: the host's exporter and node agents scrape locally).
METRICS_LISTEN = "127.0.0.1:9468"


def plan_shaping(plan: Plan, host: HostPlan, *, cooldown_seconds: int = COOLDOWN_SECONDS) -> dict[str, object]:
    """What the service reads at start."""
    instances = []
    for instance in plan_instances(plan, host):
        instances.append({
            "pool": instance.pool,
            "stream": instance.stream.name,
            "config_dir": instance.config_dir,
            "log": instance_log(instance),
            # Only providers with their own transport_maps entry can be shaped apart from the rest: never
            # `default` (every other domain, one small receiver's reply would act on all of them, and its only
            # transport_maps entry is the return path's DSN rotation).
            "transports": {t.name: t.limit.provider for t in instance.transports
                           if t.limit.provider in PROVIDER_DOMAINS and t.limit.provider != "default"},
            "route_hops": list(instance.route_transport.hops()) if instance.route_transport else [],
        })
    return {
        "stack": plan.stack,
        "host": host.name,
        "cooldown_seconds": cooldown_seconds,
        "slow_factor": SLOW_FACTOR,
        "poll_seconds": POLL_SECONDS,
        "metrics_listen": METRICS_LISTEN,
        "instances": instances,
        "rules": [dataclasses.asdict(rule) for rule in REPLY_RULES],
    }


def shaping_services(host: HostPlan) -> list[str]:
    """The unit the host starts after its MTA (the manifest's services)."""
    return [SHAPING_UNIT] if host.mta == "postfix" and host.ips else []


def render_shaping(plan: Plan, host: HostPlan) -> tuple[RenderedFile, ...]:
    if host.mta != "postfix" or not plan_instances(plan, host):
        return ()
    return (
        rendered(SHAPING_CONFIG, json.dumps(plan_shaping(plan, host), indent=2, sort_keys=True) + "\n"),
        rendered(f"etc/systemd/system/{SHAPING_UNIT}.service", render_template(
            "mailinfra/shaping.service.j2", plan=plan, host=host, config=f"/{SHAPING_CONFIG}")),
    )
