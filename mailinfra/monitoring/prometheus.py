"""Prometheus's config on the monitoring host: every MTA host's exporter on its private address, the rule
file, Alertmanager, and retention sized for the stack (pure)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from mailinfra.metrics.labels import DELAY_BUCKETS_SECONDS, EXPORTER_PORT, listen_address
from mailinfra.monitoring.rules import EXPORTER_JOB
from mailinfra.mta.postfix import plan_instances
from mailinfra.plan.model import Plan
from mailinfra.warmup import PROVIDERS

RULES_PATH = "/etc/prometheus/mailinfra-rules.yml"
ALERTMANAGER = "localhost:9093"  # Debian's prometheus-alertmanager listens on 9093
# Prometheus stores "on average ... only around 1-2 bytes per sample" (Prometheus docs, Storage, "Operational
# aspects"): 2 bytes, then twice that for the WAL, compaction and label churn.
BYTES_PER_SAMPLE = 2
HEADROOM = 2
# Series per (transport): delivered + deferred and bounced by the few classes one IP sees at once.
CLASSES_SEEN = 3
QUEUE_SERIES_PER_INSTANCE = 5  # four queues and the oldest age


def exporter_hosts(plan: Plan, private: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """(host, address:port) of every exporter (every host with IPs: Postfix and PowerMTA).
    `private`: host -> its private address once known (the component); else the plan's name for it."""
    return [(h.name, f"{(private or {}).get(h.name) or listen_address(plan, h)}:{EXPORTER_PORT}")
            for h in plan.hosts if h.ips]


def estimate_series(plan: Plan) -> int:
    """The series the stack's exporters expose at most (all the metrics of mailinfra.metrics.exporter)."""
    series = 0
    for host in (plan.host(name) for name, _ in exporter_hosts(plan)):
        if host.mta == "powermta":
            series += len(host.ips) * len(PROVIDERS) * (1 + CLASSES_SEEN) + 5  # d and b records only
            continue
        instances = plan_instances(plan, host)
        transports = sum(len(i.transports) for i in instances)
        series += transports * (1 + 2 * CLASSES_SEEN)
        series += len(instances) * len(PROVIDERS) * (len(DELAY_BUCKETS_SECONDS) + 3)  # +Inf, _sum, _count
        series += (len(instances) + 1) * (QUEUE_SERIES_PER_INSTANCE + 1) + 5  # log lines, up, scrape_*
    return series


def retention_bytes(plan: Plan) -> int:
    """What `--storage.tsdb.retention.size` allows: the estimate for `retention_days`, at least 1 GiB."""
    monitoring = plan.monitoring
    samples = estimate_series(plan) * (86400 // monitoring.scrape_interval_seconds) * monitoring.retention_days
    return max(1 << 30, math.ceil(samples * BYTES_PER_SAMPLE * HEADROOM / (1 << 30)) * (1 << 30))


def render_prometheus_config(plan: Plan, private: Mapping[str, str] | None = None) -> dict[str, Any]:
    interval = f"{plan.monitoring.scrape_interval_seconds}s"
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval,
                   "external_labels": {"stack": plan.stack}},
        # Relative: Prometheus resolves rule files against the config file's directory (configuration docs,
        # rule_files), so the same file checks with promtool anywhere and loads from /etc/prometheus.
        "rule_files": [RULES_PATH.rpartition("/")[2]],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [ALERTMANAGER]}]}]},
        "scrape_configs": [
            # The exporters listen on each host's private address only (mailinfra.metrics.labels); the planned
            # address here is replaced by that private address when the monitoring host is provisioned.
            # honor_labels: the queue gauges' own `instance` (the Postfix instance, the metric contract) is
            # kept instead of being renamed exported_instance; the target is named by its `host` label.
            {"job_name": EXPORTER_JOB, "honor_labels": True,
             "static_configs": [{"targets": [target], "labels": {"host": host}}
                                for host, target in exporter_hosts(plan, private)]},
            {"job_name": "prometheus", "static_configs": [{"targets": ["localhost:9090"]}]},
        ],
    }


def prometheus_arguments(plan: Plan) -> str:
    """Debian's prometheus.service runs `prometheus $ARGS` with /etc/default/prometheus as its environment."""
    gib = retention_bytes(plan) >> 30
    return (f"--storage.tsdb.retention.time={plan.monitoring.retention_days}d "
            f"--storage.tsdb.retention.size={gib}GB")
