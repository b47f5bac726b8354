"""Alert rules per pool x receiving provider, thresholds from `monitoring.alerts` (mailinfra.plan.monitoring).

One rule group per pool, each expression restricted to the pool and aggregated `by (stream, pool, provider)`:
an alert names the pool and the provider it is about, and a pool's rules can be read (and silenced) alone.
Rates are ratios of counter increases over the window, guarded by a minimum of attempts in the window.
"""

from __future__ import annotations

from typing import Any

from mailinfra.plan.model import Plan, PoolPlan
from mailinfra.plan.monitoring import AlertThresholds

BY = "stream, pool, provider"
# Complaints arrive hours to days after delivery, and Google computes the spam rate per day (Postmaster
# Tools, "Spam rate"): the complaint rate is over one day, whatever the delivery window is.
COMPLAINT_WINDOW = "1d"
EXPORTER_JOB = "mailinfra-mta"


def _ratio(numerator: str, denominator: str, *, window: str, minimum: int, threshold: float) -> str:
    total = f'sum by ({BY}) (increase({denominator}[{window}]))'
    return (f'(sum by ({BY}) (increase({numerator}[{window}])) / {total} * 100 > {threshold:g})'
            f' and on ({BY}) ({total} >= {minimum})')


def pool_rules(pool: PoolPlan, alerts: AlertThresholds) -> list[dict[str, Any]]:
    """The alerts of one pool (names are a contract: `mailinfra status` lists firing ones by name)."""
    window = f"{alerts.window_minutes}m"
    held = f"{alerts.for_minutes}m"
    selector = f'pool="{pool.name}"'
    deliveries = f"mailinfra_deliveries_total{{{selector}}}"
    where = "pool {{ $labels.pool }} to {{ $labels.provider }}"
    return [
        {"alert": "MailinfraBounceRateHigh", "for": held,
         # Of the messages that reached an outcome (delivered or bounced), as `mailinfra status` shows it: every
         # retry of a deferred message is another attempt, so dividing by attempts reads low exactly during a
         # deferral storm, when blocks happen.
         "expr": _ratio(f'mailinfra_deliveries_total{{{selector},status="bounced"}}',
                        f'mailinfra_deliveries_total{{{selector},status=~"delivered|bounced"}}', window=window,
                        minimum=alerts.min_attempts, threshold=alerts.bounce_rate_percent),
         "labels": {"severity": "critical", "pool": pool.name},
         "annotations": {"summary": f"bounce rate {{{{ $value | printf \"%.2f\" }}}} % from {where}",
                         "threshold": f"{alerts.bounce_rate_percent:g} % over {window} "
                                      "(monitoring.alerts.bounce_rate_percent)"}},
        {"alert": "MailinfraDeferralSpike", "for": held,
         "expr": _ratio(f'mailinfra_deliveries_total{{{selector},status="deferred"}}', deliveries,
                        window=window, minimum=alerts.min_attempts, threshold=alerts.deferral_rate_percent),
         "labels": {"severity": "warning", "pool": pool.name},
         "annotations": {"summary": f"{{{{ $value | printf \"%.1f\" }}}} % of attempts deferred from {where}",
                         "threshold": f"{alerts.deferral_rate_percent:g} % over {window} "
                                      "(monitoring.alerts.deferral_rate_percent)"}},
        *(_complaint_rule(pool.name, name, severity, percent, alerts)
          for name, severity, percent in (
              ("MailinfraComplaintRateAboveLimit", "critical", alerts.complaint_rate_percent),
              ("MailinfraComplaintRateAboveTarget", "warning", alerts.complaint_target_percent))),
        {"alert": "MailinfraQueueTooOld", "for": held,
         "expr": f'max by (host, instance) (mailinfra_queue_oldest_age_seconds{{instance="postfix-{pool.name}"}})'
                 f' > {alerts.queue_age_seconds}',
         "labels": {"severity": "warning", "pool": pool.name, "stream": pool.stream},
         "annotations": {"summary": "oldest message of {{ $labels.instance }} on {{ $labels.host }} waited "
                                    "{{ $value | humanizeDuration }}",
                         "threshold": f"{alerts.queue_age_seconds} s (monitoring.alerts.queue_age_seconds)"}},
    ]


def _complaint_rule(pool: str, name: str, severity: str, percent: float,
                    alerts: AlertThresholds) -> dict[str, Any]:
    key = "complaint_rate_percent" if severity == "critical" else "complaint_target_percent"
    return {
        "alert": name, "for": f"{alerts.for_minutes}m",
        "expr": _ratio(f'mailinfra_complaints_total{{pool="{pool}"}}',
                       f'mailinfra_deliveries_total{{pool="{pool}",status="delivered"}}', window=COMPLAINT_WINDOW,
                       minimum=alerts.min_attempts, threshold=percent),
        "labels": {"severity": severity, "pool": pool},
        "annotations": {"summary": "complaint rate {{ $value | printf \"%.3f\" }} % from pool "
                                   "{{ $labels.pool }} to {{ $labels.provider }}",
                        "threshold": f"{percent:g} % over {COMPLAINT_WINDOW} (monitoring.alerts.{key}; "
                                     "Google: below 0.3 %, aim below 0.1 %)"}}


def plan_rules(plan: Plan) -> dict[str, Any]:
    """The whole rule file: one group per pool, and the exporters' own health."""
    alerts = plan.monitoring.alerts
    groups: list[dict[str, Any]] = [{"name": f"mailinfra-pool-{pool.name}", "rules": pool_rules(pool, alerts)}
                                    for pool in plan.pools]
    groups.append({"name": "mailinfra-exporters", "rules": [{
        "alert": "MailinfraExporterDown", "expr": f'up{{job="{EXPORTER_JOB}"}} == 0', "for": "5m",
        "labels": {"severity": "critical"},
        "annotations": {"summary": "the metrics exporter of {{ $labels.host }} cannot be scraped: its "
                                   "delivery alerts are blind"}}]})
    return {"groups": groups}
