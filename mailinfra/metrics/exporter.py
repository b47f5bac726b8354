"""The delivery metrics (prometheus-client): counters fed by Postfix delivery records, queue gauges read at
scrape time. Names and labels are a contract (the placement work, `mailinfra status`, the alert rules):

- mailinfra_deliveries_total{stream,pool,ip,domain,provider,status,class}: status delivered|deferred|bounced;
  `class` is the suppression classifier's class (mailinfra.suppression.classify) on deferred and bounced,
  empty on delivered (an empty label is no label in PromQL).
- mailinfra_delivery_delay_seconds{stream,pool,provider}: histogram of Postfix's `delay=` of delivered mail.
- mailinfra_queue_messages{instance,queue}, mailinfra_queue_oldest_age_seconds{instance}: postqueue -j.
- mailinfra_log_lines_total{instance}: lines read, so a silent log is told apart from a quiet pool.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from mailinfra.mta.maillog import Delivery, parse_delivery
from mailinfra.suppression.classify import classify

DELIVERY_LABELS = ("stream", "pool", "ip", "domain", "provider", "status", "class")
DELAY_LABELS = ("stream", "pool", "provider")
# A recipient domain of no listed provider (the plan's grouping, mailinfra.metrics.labels.provider_domains).
DEFAULT_PROVIDER = "default"
# Postfix's own status words -> the contract's (an expired message is returned to its sender: bounced).
STATUS_NAMES = {"sent": "delivered", "deferred": "deferred", "bounced": "bounced", "expired": "bounced"}
# postqueue(1) -j: queue_name is one of these (maildrop: not yet picked up, counted with incoming).
QUEUES = ("active", "deferred", "incoming", "hold")
# A transport in defer_transports (a warmup share that rounds to 0, a pool that may not send today) is held
# by our own config, not by the receiver: qmgr logs it with this reason. Counting it would make every
# capped pool look like a deferral spike.
OWN_HOLD_REASON = "deferred transport"


@dataclass(frozen=True, slots=True)
class LabelMap:
    transports: Mapping[str, Mapping[str, str]]  # transport -> stream, pool, ip, domain, provider
    providers: Mapping[str, str]  # recipient domain -> provider
    instance_pools: Mapping[str, str]  # postfix-<pool> -> pool
    pool_streams: Mapping[str, tuple[str, str]]  # pool -> (stream, sending domain)

    def labels_of(self, record: Delivery) -> dict[str, str] | None:
        """stream, pool, ip, domain, provider of a delivery; None for mail of no pool (the primary's DSNs)."""
        provider = self.providers.get(record.recipient_domain, DEFAULT_PROVIDER)
        known = (self.transports.get(f"{record.instance}/{record.transport}")
                 or self.transports.get(record.transport or ""))
        if known is not None:
            return {**known, "provider": provider}
        pool = self.instance_pools.get(record.instance)
        if pool is None:
            return None
        stream, domain = self.pool_streams.get(pool, ("", ""))
        return {"stream": stream, "pool": pool, "ip": "", "domain": domain, "provider": provider}


class DeliveryMetrics:
    """The counters of one exporter, in its own registry."""

    def __init__(self, labels: LabelMap, buckets: Sequence[float], registry: CollectorRegistry) -> None:
        self.labels = labels
        self.deliveries = Counter("mailinfra_deliveries", "Delivery attempts by outcome (Postfix log)",
                                  DELIVERY_LABELS, registry=registry)
        self.delay = Histogram("mailinfra_delivery_delay_seconds", "Arrival to delivery (Postfix delay=)",
                               DELAY_LABELS, buckets=tuple(buckets), registry=registry)
        self.lines = Counter("mailinfra_log_lines", "Log lines read", ("instance",), registry=registry)
        self._counters: dict[tuple[str, ...], Counter] = {}
        self._histograms: dict[tuple[str, ...], Histogram] = {}

    def count_line(self, instance: str, line: str) -> Delivery | None:
        self.lines.labels(instance).inc()
        record = parse_delivery(line)
        if record is not None:
            self.count(record)
        return record

    def count_lines(self, instance: str, lines: Sequence[str]) -> None:
        """A batch of one log's lines (the service's path: one lines-counter update per batch)."""
        self.lines.labels(instance).inc(len(lines))
        for line in lines:
            record = parse_delivery(line)
            if record is not None:
                self.count(record)

    def count(self, record: Delivery) -> None:
        status = STATUS_NAMES.get(record.status)
        labels = self.labels.labels_of(record)
        if status is None or labels is None or record.reply == OWN_HOLD_REASON:
            return
        # The classifier of the suppression work decides the class (reused, not copied); delivered has none.
        cls = "" if status == "delivered" else classify(record.dsn, record.reply).cls.value
        key = (labels["stream"], labels["pool"], labels["ip"], labels["domain"], labels["provider"], status, cls)
        # Children are cached: prometheus-client's labels() validates and locks on every call.
        counter = self._counters.get(key)
        if counter is None:
            counter = self._counters[key] = self.deliveries.labels(*key)
        counter.inc()
        if status == "delivered":
            delay_key = (labels["stream"], labels["pool"], labels["provider"])
            histogram = self._histograms.get(delay_key)
            if histogram is None:
                histogram = self._histograms[delay_key] = self.delay.labels(*delay_key)
            histogram.observe(record.delay_seconds)


QueueReader = Callable[[str], Iterable[str]]


def postqueue_json(config_dir: str) -> list[str]:
    """postqueue -c DIR -j: one JSON object per queued message (postqueue(1), "-j")."""
    result = subprocess.run(["postqueue", "-c", config_dir, "-j"], capture_output=True, text=True,
                            check=False, timeout=30)
    return [line for line in result.stdout.splitlines() if line.strip()]


class QueueCollector(Collector):
    """Queue sizes and oldest age per instance, read when Prometheus scrapes (the queue is the truth now)."""

    def __init__(self, queues: Sequence[tuple[str, str]], reader: QueueReader = postqueue_json,
                 clock: Callable[[], float] = time.time) -> None:
        self.queues = queues  # (instance, config_dir)
        self.reader = reader
        self.clock = clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        sizes = GaugeMetricFamily("mailinfra_queue_messages", "Messages queued (postqueue -j)",
                                  labels=("instance", "queue"))
        oldest = GaugeMetricFamily("mailinfra_queue_oldest_age_seconds", "Age of the oldest queued message",
                                   labels=("instance",))
        now = self.clock()
        for instance, config_dir in self.queues:
            counts = dict.fromkeys(QUEUES, 0)
            first: float | None = None
            for line in self.reader(config_dir):
                try:
                    item = json.loads(line)
                except ValueError:
                    continue
                queue = "incoming" if item.get("queue_name") == "maildrop" else str(item.get("queue_name"))
                if queue in counts:
                    counts[queue] += 1
                arrival = item.get("arrival_time")
                if isinstance(arrival, int | float):
                    first = arrival if first is None else min(first, arrival)
            for queue, count in counts.items():
                sizes.add_metric((instance, queue), count)
            oldest.add_metric((instance,), max(0.0, now - first) if first is not None else 0.0)
        yield sizes
        yield oldest
