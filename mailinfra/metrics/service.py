"""The exporter process: follow each instance's log, count, serve /metrics on the private address.

    python3 -m mailinfra.metrics --config /etc/mailinfra/metrics.json [--root DIR] [--listen ADDR]
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from prometheus_client import CollectorRegistry, start_http_server

from mailinfra.bounceproc.pmta import read_records
from mailinfra.metrics.config import ConfigError, ExporterConfig, load_config
from mailinfra.metrics.exporter import DeliveryMetrics, QueueCollector
from mailinfra.metrics.pmta import count_records
from mailinfra.mta.maillog import LogFollower

log = logging.getLogger("mailinfra.metrics")
POLL_SECONDS = 1.0  # well under the 15 s scrape interval; reading is cheap when nothing was appended


def build_registry(config: ExporterConfig) -> tuple[CollectorRegistry, DeliveryMetrics]:
    registry = CollectorRegistry()
    metrics = DeliveryMetrics(config.labels, config.buckets, registry)
    registry.register(QueueCollector(config.queues))
    return registry, metrics


def follow(config: ExporterConfig, metrics: DeliveryMetrics, stop: threading.Event, *,
           from_start: bool = False) -> None:
    """Until `stop`: the lines appended to every instance log, counted (rotation followed)."""
    followers = [(instance, LogFollower(path, from_start=from_start)) for instance, path in config.logs]
    accounting = AccountingReader(config, metrics, from_start=from_start) if config.accounting else None
    while True:
        for instance, follower in followers:
            lines = follower.read_lines()
            if lines:
                metrics.count_lines(instance, lines)
        if accounting is not None:
            accounting.read()
        if stop.wait(POLL_SECONDS):
            return


class AccountingReader:
    """PowerMTA's acct-file, followed like a log: its columns are named by the header line at the start of
    each file (a rotated file starts with its own), kept across reads (mailinfra.bounceproc.pmta)."""

    def __init__(self, config: ExporterConfig, metrics: DeliveryMetrics, *, from_start: bool) -> None:
        assert config.accounting is not None
        self.path, self.vmtas = config.accounting
        self.providers = dict(config.labels.providers)
        self.metrics = metrics
        self.header = self._first_line()
        self.follower = LogFollower(self.path, from_start=from_start)

    def _first_line(self) -> str:
        try:
            with self.path.open() as handle:
                return handle.readline().rstrip("\n")
        except OSError:
            return ""

    def read(self) -> None:
        lines = self.follower.read_lines()
        if not lines:
            return
        text = "\n".join([self.header, *lines]) if self.header and not lines[0].startswith("type,") else \
            "\n".join(lines)
        count_records(self.metrics, read_records(text), self.vmtas, self.providers)
        headers = [line for line in lines if line.startswith("type,")]
        if headers:
            self.header = headers[-1]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="the delivery metrics exporter")
    parser.add_argument("--config", required=True, type=Path)
    parser.add_argument("--root", type=Path, default=None, help="prefix of every path in the config (the lab)")
    parser.add_argument("--listen", default=None, help="address to listen on instead of the config's")
    parser.add_argument("--from-start", action="store_true", help="count the logs from their start (the lab)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        config = load_config(args.config, args.root, args.listen)
    except (ConfigError, OSError) as error:
        sys.exit(str(error))
    registry, metrics = build_registry(config)
    try:
        start_http_server(config.port, addr=config.listen, registry=registry)
    except OSError as error:
        sys.exit(f"{args.config}: listen_private: received {config.listen}:{config.port} ({error}), "
                 "expected an address of this host")
    print(f"metrics exporter: {config.listen}:{config.port}, {len(config.logs)} logs", flush=True)
    follow(config, metrics, threading.Event(), from_start=args.from_start)
