"""The placement reader service: reads every seed over IMAP, judges the expected probes, serves the metrics.

    python -m mailinfra.placement read --config /etc/mailinfra/placement-reader.json

It runs on the stack's bounce host (one reader per stack; the seed passwords reach that host only) and
serves /metrics on the host's private address for the monitoring host to scrape. Which probes to expect
comes from the plan (pools x seeds) and the clock (mailinfra.placement.probes); what was already counted is
kept in a state file so a restart does not count a probe twice.
"""

from __future__ import annotations

import argparse
import imaplib
import json
import os
import ssl
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mailinfra.placement.metrics import PlacementMetrics
from mailinfra.placement.probes import ProbeId, slot_of
from mailinfra.placement.reader import Placement, find_probes, judge

# Slots older than this are forgotten (a probe that arrives two days late has long been counted missing).
KEEP_SECONDS = 2 * 86400


@dataclass(frozen=True, slots=True)
class SeedAccess:
    name: str
    provider: str
    imap_host: str
    imap_port: int
    username: str
    # Where the password is: on a host `${CREDENTIALS_DIRECTORY}/seed-<name>` (systemd LoadCredential of the
    # root-only file the boot script wrote from the seed's SSM parameter); in the lab a plain file.
    password_file: str
    junk_folder: str
    tls: str  # implicit (IMAPS, RFC 8314) | starttls | none (lab only: loopback inside the namespace)


@dataclass(frozen=True, slots=True)
class ExpectedProbe:
    pool: str
    stream: str
    seed: str
    provider: str


@dataclass(frozen=True, slots=True)
class ReaderConfig:
    stack: str
    interval_seconds: int
    missing_after_seconds: int
    poll_seconds: int
    listen: str  # address:port of /metrics
    state_file: str
    seeds: tuple[SeedAccess, ...]
    probes: tuple[ExpectedProbe, ...]


def read_reader_config(path: Path) -> ReaderConfig:
    data: dict[str, Any] = json.loads(path.read_text())
    seeds = tuple(SeedAccess(**s) for s in data.pop("seeds"))
    probes = tuple(ExpectedProbe(**p) for p in data.pop("probes"))
    return ReaderConfig(seeds=seeds, probes=probes, **data)


class Reader:
    """One pass over every seed per call of `poll`; counts each expected probe once."""

    def __init__(self, config: ReaderConfig, metrics: PlacementMetrics, *, started: float | None = None) -> None:
        self.config = config
        self.metrics = metrics
        self.state = self._load_state(started if started is not None else time.time())
        self.judged: list[Placement] = []  # every verdict of this process, in order
        metrics.zero(dict.fromkeys((p.stream, p.pool) for p in config.probes),
                     dict.fromkeys(s.provider for s in config.seeds))

    def _load_state(self, started: float) -> dict[str, Any]:
        try:
            state: dict[str, Any] = json.loads(Path(self.config.state_file).read_text())
        except (OSError, ValueError):
            # First start: probes of earlier slots were never sent by anyone we know of.
            state = {"since": slot_of(started, self.config.interval_seconds), "recorded": {}}
        return state

    def _save_state(self) -> None:
        path = Path(self.config.state_file)
        partial = path.with_suffix(".tmp")
        partial.write_text(json.dumps(self.state, sort_keys=True))
        partial.replace(path)

    def expected(self, seed: str, now: float) -> list[ProbeId]:
        interval = self.config.interval_seconds
        since = max(int(self.state["since"]), slot_of(now - KEEP_SECONDS, interval))
        slots = range(since, slot_of(now, interval) + 1, interval)
        recorded = self.state["recorded"]
        return [pid for slot in slots for p in self.config.probes if p.seed == seed
                if str(pid := ProbeId(p.pool, seed, slot)) not in recorded]

    def poll(self, now: float | None = None) -> list[str]:
        """Read every seed; returns one line per seed that could not be read (the others still count)."""
        moment = time.time() if now is None else now
        problems = []
        streams = {p.pool: p.stream for p in self.config.probes}
        for seed in self.config.seeds:
            try:
                found = self._read_seed(seed)
            except (OSError, imaplib.IMAP4.error, ssl.SSLError) as error:
                problems.append(f"seed {seed.name} ({seed.imap_host}:{seed.imap_port}): {error}")
                continue
            for verdict in judge(self.expected(seed.name, moment), found, now=moment,
                                 missing_after_seconds=self.config.missing_after_seconds):
                self.metrics.record(verdict, stream=streams[verdict.probe_id.pool], provider=seed.provider)
                self.state["recorded"][str(verdict.probe_id)] = verdict.folder
                self.judged.append(verdict)
        self._forget(moment)
        self._save_state()
        return problems

    def _forget(self, now: float) -> None:
        horizon = now - KEEP_SECONDS
        self.state["recorded"] = {k: v for k, v in self.state["recorded"].items()
                                  if int(k.rsplit(".", 1)[1]) >= horizon}

    def _read_seed(self, seed: SeedAccess) -> list[Any]:
        from imapclient import IMAPClient

        context = ssl.create_default_context()
        client = IMAPClient(seed.imap_host, port=seed.imap_port, ssl=seed.tls == "implicit",
                            ssl_context=context, timeout=30)
        try:
            if seed.tls == "starttls":
                client.starttls(context)
            client.normalise_times = False  # INTERNALDATE with its zone: the delay needs an absolute time
            password = Path(os.path.expandvars(seed.password_file)).read_text().strip()
            client.login(seed.username, password)
            return find_probes(client, seed=seed.name, fallback_junk=seed.junk_folder)
        finally:
            try:
                client.logout()
            except (OSError, imaplib.IMAP4.error):
                client.shutdown()


def main_read(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="mailinfra.placement read")
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--once", action="store_true", help="one pass, then exit (no metrics server)")
    parser.add_argument("--dump", type=Path, default=None, help="with --once: write the verdicts here (JSON)")
    args = parser.parse_args(argv)
    try:
        config = read_reader_config(args.config)
    except (OSError, ValueError, TypeError, KeyError) as error:
        print(f"mailinfra.placement read: --config {args.config}: {error}", file=sys.stderr)
        return 2
    metrics = PlacementMetrics()
    reader = Reader(config, metrics)
    if not args.once:
        from prometheus_client import start_http_server

        address, _, port = config.listen.rpartition(":")
        start_http_server(int(port), addr=address, registry=metrics.registry)
    while True:
        for problem in reader.poll():
            print(problem, file=sys.stderr, flush=True)
        if args.once:
            if args.dump:
                seeds = {s.name: s.provider for s in config.seeds}
                args.dump.write_text(json.dumps([
                    {"probe_id": str(v.probe_id), "pool": v.probe_id.pool, "seed": v.probe_id.seed,
                     "provider": seeds[v.probe_id.seed], "folder": v.folder, "delay_seconds": v.delay_seconds,
                     "tab": v.tab} for v in reader.judged], indent=2))
            return 0
        time.sleep(config.poll_seconds)
