"""The status of a stack: delivery and placement per stream and pool from Prometheus, warmup from the plan.

Definitions (each a PromQL over the window, `increase()` of the exporters' counters):
- sent: messages with a final outcome, delivered + bounced (a deferral is an attempt, not an outcome);
- delivered %, bounced %: of sent; deferred %: deferral events per attempt, deferred / (sent + deferred);
- complaint %: complaints / delivered (the base Gmail's 0.3 % and SES's 0.1 % lines are measured on);
- inbox % per provider: inbox / (inbox + spam + missing) of the seed probes (mailinfra.placement);
- cap use: sent / the pool's warmup daily cap pro-rated to the window (the plan's limits of the day);
- queue age: the oldest message of the pool's Postfix instance (mailinfra_queue_oldest_age_seconds).
Delivered and inbox are reported side by side on purpose: a pool can deliver 100 % into the spam folder.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field

from mailinfra.placement.reader import INBOX, MISSING, SPAM
from mailinfra.plan.model import Plan
from mailinfra.status.prometheus import Alert, PrometheusClient

# The delivery exporter's `status` label (mailinfra.metrics): the outcome words; Postfix's own `sent` is accepted
# as delivered too, so a status line reads the same whichever word the exporter keeps.
DELIVERED = ("delivered", "sent")
DEFERRED = ("deferred",)
BOUNCED = ("bounced",)
DAY_SECONDS = 86400


@dataclass
class PoolStatus:
    stream: str
    pool: str
    sent: float = 0.0
    delivered_pct: float | None = None
    deferred_pct: float | None = None
    bounced_pct: float | None = None
    complaint_pct: float | None = None
    inbox_pct: dict[str, float | None] = field(default_factory=dict)  # provider -> inbox % (None: no probes)
    warmup_day: int | None = None  # the most advanced warming IP's day; None: warmed or not started
    warmup_status: str = ""
    daily_cap: int = 0
    cap_use_pct: float | None = None
    queue_age_seconds: float | None = None
    alerts: list[str] = field(default_factory=list)


@dataclass
class StackStatus:
    stack: str
    prometheus: str
    at: float
    window_seconds: int
    pools: list[PoolStatus]
    alerts: list[Alert]  # every firing alert (those with a pool label are also listed on the pool)


def _pct(part: float, whole: float) -> float | None:
    return 100.0 * part / whole if whole > 0 else None


def _window(seconds: int) -> str:
    return f"{seconds}s"


def collect_status(plan: Plan, client: PrometheusClient, *, window_seconds: int = DAY_SECONDS,
                   at: float | None = None, instance_of: dict[str, str] | None = None) -> StackStatus:
    """Query once per measure (not per pool): a status screen costs a handful of queries for any stack size.
    `instance_of`: pool -> its Postfix instance name (the queue gauges' `instance` label)."""
    moment = time.time() if at is None else at
    w = _window(window_seconds)
    outcomes: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for s in client.query(f"sum by (stream, pool, status) (increase(mailinfra_deliveries_total[{w}]))", at=moment):
        outcomes[(s.labels.get("stream", ""), s.labels.get("pool", ""))][s.labels.get("status", "")] += s.value
    complaints = {(s.labels.get("stream", ""), s.labels.get("pool", "")): s.value for s in client.query(
        f"sum by (stream, pool) (increase(mailinfra_complaints_total[{w}]))", at=moment)}
    placement: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for s in client.query(f"sum by (pool, provider, folder) (increase(mailinfra_placement_total[{w}]))", at=moment):
        placement[(s.labels.get("pool", ""), s.labels.get("provider", ""))][s.labels.get("folder", "")] += s.value
    ages = {s.labels.get("instance", ""): s.value for s in client.query(
        "max by (instance) (mailinfra_queue_oldest_age_seconds)", at=moment)}
    alerts = [a for a in client.alerts() if a.state == "firing"]

    pools = []
    for pool in plan.pools:
        status = PoolStatus(stream=pool.stream, pool=pool.name)
        counts = outcomes.get((pool.stream, pool.name), {})
        delivered = sum(counts.get(k, 0.0) for k in DELIVERED)
        bounced = sum(counts.get(k, 0.0) for k in BOUNCED)
        deferred = sum(counts.get(k, 0.0) for k in DEFERRED)
        status.sent = delivered + bounced
        status.delivered_pct = _pct(delivered, status.sent)
        status.bounced_pct = _pct(bounced, status.sent)
        status.deferred_pct = _pct(deferred, status.sent + deferred)
        status.complaint_pct = _pct(complaints.get((pool.stream, pool.name), 0.0), delivered)
        for (pool_name, provider), folders in sorted(placement.items()):
            if pool_name == pool.name:
                total = sum(folders.get(f, 0.0) for f in (INBOX, SPAM, MISSING))
                status.inbox_pct[provider] = _pct(folders.get(INBOX, 0.0), total)
        limits = [lim for lim in plan.warmup if lim.pool == pool.name]
        status.daily_cap = sum(lim.daily_cap for lim in limits)
        days = [lim.day for lim in limits if lim.day is not None and lim.status == "warming"]
        status.warmup_day = max(days) if days else None
        status.warmup_status = ", ".join(sorted({lim.status for lim in limits}))
        if status.daily_cap:
            status.cap_use_pct = _pct(status.sent, status.daily_cap * window_seconds / DAY_SECONDS)
        instance = (instance_of or {}).get(pool.name)
        status.queue_age_seconds = ages.get(instance) if instance else None
        status.alerts = [a.name for a in alerts if a.labels.get("pool") == pool.name]
        pools.append(status)
    return StackStatus(plan.stack, client.base_url, moment, window_seconds, pools, alerts)
