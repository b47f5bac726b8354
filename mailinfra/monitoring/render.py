"""Every file of the monitoring host, paths relative to its root (etc/prometheus/prometheus.yml)."""

from __future__ import annotations

from collections.abc import Mapping

import yaml

from mailinfra.monitoring.alertmanager import render_alertmanager_config
from mailinfra.monitoring.prometheus import RULES_PATH, prometheus_arguments, render_prometheus_config
from mailinfra.monitoring.rules import plan_rules
from mailinfra.mta.files import RenderedFile, rendered
from mailinfra.plan.model import Plan

PROMETHEUS_CONFIG = "etc/prometheus/prometheus.yml"
ALERTMANAGER_CONFIG = "etc/prometheus/alertmanager.yml"  # Debian's prometheus-alertmanager default path
PROMETHEUS_DEFAULTS = "etc/default/prometheus"


def _yaml(header: str, data: object) -> str:
    return header + yaml.safe_dump(data, sort_keys=False, width=1000, allow_unicode=True)


def render_monitoring(plan: Plan, private: Mapping[str, str] | None = None) -> tuple[RenderedFile, ...]:
    """`private`: MTA host -> its exporter's private address (the component, once allocated)."""
    header = f"# Rendered by mailinfra from stack {plan.stack}; edits on the host are overwritten.\n"
    return (
        rendered(PROMETHEUS_CONFIG, _yaml(header, render_prometheus_config(plan, private))),
        rendered(RULES_PATH.lstrip("/"), _yaml(header, plan_rules(plan))),
        rendered(ALERTMANAGER_CONFIG, _yaml(header, render_alertmanager_config(plan))),
        rendered(PROMETHEUS_DEFAULTS, header + f'ARGS="{prometheus_arguments(plan)}"\n'),
    )
