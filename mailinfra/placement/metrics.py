"""The placement and provider-signal metrics (Prometheus exposition via prometheus-client).

Names and labels follow the delivery exporter's conventions (`mailinfra_` prefix, `_total` counters, seconds):
- mailinfra_placement_total{stream,pool,provider,folder}: probes judged, folder inbox|spam|missing;
- mailinfra_placement_delay_seconds{pool,provider}: Date header to the seed server's INTERNALDATE;
- mailinfra_snds_filter_result{ip} (0 green, 1 yellow, 2 red), mailinfra_snds_complaint_rate{ip} (a fraction),
  mailinfra_snds_trap_hits{ip}: Microsoft SNDS, per sending IP (mailinfra.placement.snds);
- mailinfra_gpt_spam_rate{domain}: Google Postmaster Tools v2 (mailinfra.placement.postmaster).
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from mailinfra.placement.reader import FOLDERS, Placement
from mailinfra.placement.snds import SndsRow

# Seed services report arrival within minutes; anything past an hour is as bad as missing for a campaign.
DELAY_BUCKETS_SECONDS = (5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
SNDS_FILTER_VALUES = {"GREEN": 0, "YELLOW": 1, "RED": 2}


class PlacementMetrics:
    """One registry holding every series this package exports."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.placement = Counter("mailinfra_placement", "Seed probes judged, by where they landed",
                                 ["stream", "pool", "provider", "folder"], registry=self.registry)
        self.delay = Histogram("mailinfra_placement_delay_seconds", "Probe arrival delay at the seed mailbox",
                               ["pool", "provider"], buckets=DELAY_BUCKETS_SECONDS, registry=self.registry)
        self.snds_filter = Gauge("mailinfra_snds_filter_result", "Microsoft SNDS filter result: 0 green, "
                                 "1 yellow, 2 red", ["ip"], registry=self.registry)
        self.snds_complaints = Gauge("mailinfra_snds_complaint_rate", "Microsoft SNDS complaint rate (fraction)",
                                     ["ip"], registry=self.registry)
        self.snds_traps = Gauge("mailinfra_snds_trap_hits", "Microsoft SNDS trap hits in the last period",
                                ["ip"], registry=self.registry)
        self.gpt_spam = Gauge("mailinfra_gpt_spam_rate", "Google Postmaster Tools v2 spam rate (SPAM_RATE, on the "
                              "scale the API returns it: its reference does not say fraction or percent)",
                              ["domain"], registry=self.registry)

    def zero(self, streams_pools: Iterable[tuple[str, str]], providers: Iterable[str]) -> None:
        """Create every pool x provider x folder series at 0, so a rate over them exists before the first probe
        lands (an absent series makes `inbox / all` undefined instead of 0)."""
        providers = tuple(providers)
        for stream, pool in streams_pools:
            for provider in providers:
                for folder in FOLDERS:
                    self.placement.labels(stream, pool, provider, folder)

    def record_snds(self, rows: Iterable[SndsRow]) -> None:
        for row in rows:
            self.snds_filter.labels(row.ip).set(SNDS_FILTER_VALUES[row.filter_result])
            self.snds_complaints.labels(row.ip).set(row.complaint_rate)
            self.snds_traps.labels(row.ip).set(row.trap_hits)

    def record_spam_rates(self, rates: dict[str, float]) -> None:
        for domain, rate in rates.items():
            self.gpt_spam.labels(domain).set(rate)

    def record(self, placement: Placement, *, stream: str, provider: str) -> None:
        pool = placement.probe_id.pool
        self.placement.labels(stream, pool, provider, placement.folder).inc()
        if placement.delay_seconds is not None:
            self.delay.labels(pool, provider).observe(placement.delay_seconds)
