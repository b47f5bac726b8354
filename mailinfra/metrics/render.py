"""The exporter's files of a host: its config (from mailinfra.metrics.labels) and its systemd unit."""

from __future__ import annotations

import json

from mailinfra.metrics.labels import EXPORTER_CONFIG, EXPORTER_PORT, EXPORTER_UNIT, exporter_config
from mailinfra.mta.files import RenderedFile, render_template, rendered
from mailinfra.plan.model import HostPlan, Plan


def render_metrics(plan: Plan, host: HostPlan) -> tuple[RenderedFile, ...]:
    """Postfix hosts (logs, queues) and PowerMTA hosts (its accounting file)."""
    if not host.ips:
        return ()
    return (
        rendered(EXPORTER_CONFIG, json.dumps(exporter_config(plan, host), indent=2, sort_keys=True) + "\n"),
        rendered(f"etc/systemd/system/{EXPORTER_UNIT}.service", render_template(
            "mailinfra/metrics.service.j2", plan=plan, host=host, config=f"/{EXPORTER_CONFIG}",
            port=EXPORTER_PORT, postfix=host.mta == "postfix")),
    )


def metrics_services(host: HostPlan) -> list[str]:
    """The exporter's unit, started after the MTA (the manifest's services)."""
    return [EXPORTER_UNIT] if host.ips else []
