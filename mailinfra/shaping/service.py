"""`python3 -m mailinfra.shaping --config /etc/mailinfra/shaping.json`: follow every pool instance's log, act,
log each action as one line on stdout (the journal), count it for Prometheus.

Metrics (the project's convention, scraped on the config's metrics_listen):
- mailinfra_shaping_actions_total{pool,provider,action}: actions taken (slow|suspend|reroute|return)
- mailinfra_shaping_state{pool,provider,state}: 1 for the current state (normal|slowed|suspended|rerouted)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mailinfra.shaping.engine import STATES, Action, Shaper
from mailinfra.shaping.logline import parse_delivery
from mailinfra.shaping.postfix import InstanceControl, ShapingError
from mailinfra.shaping.rules import ReplyRule


@dataclass
class _Follower:
    """Reads the lines appended to a file since the last call (from its end at start; a rotated or
    truncated file is read again from its start)."""

    path: Path
    offset: int = -1
    inode: int = -1

    def lines(self) -> list[str]:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return []
        if self.offset < 0:
            self.offset, self.inode = stat.st_size, stat.st_ino
            return []
        if stat.st_ino != self.inode or stat.st_size < self.offset:
            self.offset, self.inode = 0, stat.st_ino
        with self.path.open("rb") as handle:
            handle.seek(self.offset)
            data = handle.read()
        complete = data.rfind(b"\n") + 1
        self.offset += complete
        return data[:complete].decode("utf-8", "replace").splitlines()


class Metrics:
    def __init__(self, listen: str | None) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

        self.registry = CollectorRegistry()
        self.actions = Counter("mailinfra_shaping_actions_total", "Automatic response actions taken",
                               ["pool", "provider", "action"], registry=self.registry)
        self.state = Gauge("mailinfra_shaping_state", "1 for the current automatic response state",
                           ["pool", "provider", "state"], registry=self.registry)
        if listen:
            host, _, port = listen.rpartition(":")
            start_http_server(int(port), addr=host, registry=self.registry)

    def record(self, action: Action) -> None:
        self.actions.labels(action.pool, action.provider, action.action).inc()
        self.set_state(action.pool, action.provider, action.after)

    def set_state(self, pool: str, provider: str, current: str) -> None:
        for state in STATES:
            self.state.labels(pool, provider, state).set(1 if state == current else 0)


def action_line(action: Action, now: float) -> str:
    """The one line an action is logged as (key=value, the rule and the reply that triggered it last)."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
    return (f"{stamp} mailinfra-shaping action={action.action} pool={action.pool} provider={action.provider} "
            f"state={action.before}->{action.after} rule={action.rule} detail={json.dumps(action.detail)}")


def run(config: dict[str, Any], *, wrap: list[str] | None = None, stop_after: float | None = None) -> None:
    rules = tuple(ReplyRule(**rule) for rule in config["rules"])
    instances = config["instances"]
    shaper = Shaper({i["pool"]: bool(i["route_hops"]) for i in instances}, float(config["cooldown_seconds"]),
                    rules)
    controls = {i["pool"]: InstanceControl(i["pool"], i["config_dir"], i["transports"], i["route_hops"],
                                           wrap=list(wrap or [])) for i in instances}
    by_instance = {f"postfix-{i['pool']}": i for i in instances}
    followers = [(i, _Follower(Path(i["log"]))) for i in instances]
    metrics = Metrics(config.get("metrics_listen"))
    for instance in instances:
        for provider in sorted(set(instance["transports"].values())):
            metrics.set_state(instance["pool"], provider, "normal")
    for _, follower in followers:
        follower.lines()  # from the end: replies before the start were acted on (or not) by the last run
    started = time.monotonic()
    while stop_after is None or time.monotonic() - started < stop_after:
        now = time.time()
        actions: list[Action] = []
        for _instance, follower in followers:
            for line in follower.lines():
                delivery = parse_delivery(line)
                if delivery is None or delivery.status == "sent" or not delivery.reply:
                    continue
                owner = by_instance.get(delivery.instance)
                provider = owner["transports"].get(delivery.transport) if owner else None
                if owner is None or provider is None:
                    continue  # the route transport, or another instance's line
                actions += shaper.observe(owner["pool"], provider, delivery.reply, now)
        actions += shaper.tick(now)
        for action in actions:
            try:
                controls[action.pool].apply(action, int(config["slow_factor"]))
            except ShapingError as exc:
                print(f"{action_line(action, now)} error={json.dumps(str(exc))}", flush=True)
                continue
            print(action_line(action, now), flush=True)
            metrics.record(action)
        time.sleep(float(config["poll_seconds"]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python3 -m mailinfra.shaping")
    parser.add_argument("--config", required=True, help="the rendered shaping.json")
    parser.add_argument("--wrap", default="", help="command prefix for postconf/postfix (lab: ip netns exec NS)")
    args = parser.parse_args(argv)
    try:
        config = json.loads(Path(args.config).read_text())
    except (OSError, ValueError) as exc:
        print(f"{args.config}: received an unreadable file ({exc}), expected the rendered shaping.json",
              file=sys.stderr)
        raise SystemExit(2) from None
    os.umask(0o022)
    run(config, wrap=args.wrap.split() if args.wrap else None)
