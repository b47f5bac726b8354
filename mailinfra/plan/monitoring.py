"""The stack's monitoring settings as plan values (pure): alert thresholds, alert routing, the monitoring
host, scrape interval and retention (`monitoring` of the stack; defaults documented in the schema)."""

from __future__ import annotations

from dataclasses import dataclass, field

from mailinfra.model.schema import Monitoring


@dataclass(frozen=True, slots=True)
class AlertThresholds:
    bounce_rate_percent: float = 5.0
    complaint_rate_percent: float = 0.3
    complaint_target_percent: float = 0.1
    deferral_rate_percent: float = 30.0
    queue_age_seconds: int = 3600
    window_minutes: int = 60
    min_attempts: int = 100
    for_minutes: int = 5


@dataclass(frozen=True, slots=True)
class AlertRoutingPlan:
    email_to: tuple[str, ...] = ()
    email_from: str | None = None
    email_smarthost: str | None = None
    webhook_urls: tuple[str, ...] = ()

    @property
    def configured(self) -> bool:
        return bool(self.email_to or self.webhook_urls)


@dataclass(frozen=True, slots=True)
class MonitoringHostPlan:
    name: str
    instance_type: str
    availability_zone: str | None
    subnet_id: str | None


@dataclass(frozen=True, slots=True)
class MonitoringPlan:
    alerts: AlertThresholds = field(default_factory=AlertThresholds)
    routing: AlertRoutingPlan = field(default_factory=AlertRoutingPlan)
    host: MonitoringHostPlan | None = None
    scrape_interval_seconds: int = 15
    retention_days: int = 30


MONITORING_HOST_NAME = "monitoring"


def plan_monitoring(config: Monitoring) -> MonitoringPlan:
    routing = config.routing
    host = config.host
    return MonitoringPlan(
        alerts=AlertThresholds(**config.alerts.model_dump()),
        routing=AlertRoutingPlan(email_to=tuple(routing.email_to), email_from=routing.email_from,
                                 email_smarthost=routing.email_smarthost, webhook_urls=tuple(routing.webhook_urls)),
        host=MonitoringHostPlan(MONITORING_HOST_NAME, host.instance_type, host.availability_zone, host.subnet_id)
        if host is not None else None,
        scrape_interval_seconds=config.scrape_interval_seconds, retention_days=config.retention_days)
