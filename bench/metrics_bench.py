"""Log lines per second the metrics exporter handles on one core, next to reading the same file unparsed.

    taskset -c 0 .venv/bin/python bench/metrics_bench.py [--messages 200000]

The log is what a pool instance writes per message (lines as seen in the lab's postfix-tx.log: smtpd connect,
cleanup message-id, qmgr from=, smtp to= ... status=, qmgr removed, smtpd disconnect), 6 lines a message;
2 % deferred and 1 % bounced. Prints the numbers; docs/BENCHMARKS.md is not written by this script.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import tempfile
import time
from pathlib import Path

from prometheus_client import CollectorRegistry

from mailinfra.metrics.config import load_config
from mailinfra.metrics.exporter import DeliveryMetrics
from mailinfra.metrics.labels import DELAY_BUCKETS_SECONDS, exporter_config
from mailinfra.model.load import load_stack
from mailinfra.mta.maillog import LogFollower, parse_delivery
from mailinfra.plan.build import build_plan

MESSAGE = "".join((
    "Dec 02 15:29:33 tx postfix-tx/smtpd[23103]: connect from unknown[10.20.0.10]\n",
    "Dec 02 15:29:33 tx postfix-tx/cleanup[23105]: {q}: message-id=<1796.{n}@mail.example.com>\n",
    "Dec 02 15:29:33 tx postfix-tx/qmgr[22827]: {q}: from=<b-humnkrypvwkv3luyujv2eg3-user-{n}=gmail.com@bounce"
    ".mail.example.com>, size=817, nrcpt=1 (queue active)\n",
    "Dec 02 15:29:33 tx postfix-tx/{t}/smtp[23106]: {q}: to=<user-{n}@{d}>, relay=mx.{d}[192.0.2.10]:25, "
    "delay=0.31, delays=0.03/0.07/0/0.21, dsn={dsn}, status={status} ({reply})\n",
    "Dec 02 15:29:33 tx postfix-tx/qmgr[22827]: {q}: removed\n",
    "Dec 02 15:29:33 tx postfix-tx/smtpd[23103]: disconnect from unknown[10.20.0.10] ehlo=1 mail=1 rcpt=1 "
    "data=1 quit=1 commands=5\n",
))
OUTCOMES = [("2.0.0", "sent", "250 2.0.0 OK queued as 1796225373405")] * 97 + [
    ("4.7.28", "deferred", "host mx said: 421 4.7.28 unusual rate of unsolicited mail from your IP"),
    ("4.7.28", "deferred", "host mx said: 421 4.7.28 unusual rate of unsolicited mail from your IP"),
    ("5.1.1", "bounced", "host mx said: 550 5.1.1 The email account that you tried to reach does not exist")]
DOMAINS = ("gmail.com", "yahoo.com", "outlook.com", "example.org")


def write_log(path: Path, messages: int, transports: list[str]) -> int:
    with path.open("w") as out:
        for n in range(messages):
            dsn, status, reply = OUTCOMES[n % len(OUTCOMES)]
            domain = DOMAINS[n % len(DOMAINS)]
            out.write(MESSAGE.format(q=f"{n:011X}", n=n, t=transports[n % len(transports)], d=domain, dsn=dsn,
                                     status=status, reply=reply))
    return messages * MESSAGE.count("\n")


def timed(label: str, lines: int, work) -> float:  # type: ignore[no-untyped-def]
    started = time.process_time()
    work()
    seconds = time.process_time() - started
    print(f"{label:<34} {lines / seconds:>12,.0f} lines/s  ({seconds:.2f} s CPU)")
    return lines / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    args = parser.parse_args()
    plan = build_plan(load_stack("dev"), dt.date(2026, 11, 29))
    with tempfile.TemporaryDirectory() as tmp:
        config_path = Path(tmp) / "metrics.json"
        import json

        config_path.write_text(json.dumps(exporter_config(plan, plan.host("mta1"))))
        config = load_config(config_path)
        transports = [t for t, v in config.labels.transports.items() if v["pool"] == "tx"]
        log = Path(tmp) / "postfix-tx.log"
        lines = write_log(log, args.messages, transports)
        print(f"{lines:,} lines ({args.messages:,} messages), {log.stat().st_size / 1e6:.0f} MB, "
              f"CPU affinity {sorted(os.sched_getaffinity(0))}")

        def read_only() -> None:
            follower = LogFollower(log, from_start=True)
            assert len(follower.read_lines()) == lines

        def parse_only() -> None:
            follower = LogFollower(log, from_start=True)
            for line in follower.read_lines():
                parse_delivery(line)

        def exporter() -> None:
            metrics = DeliveryMetrics(config.labels, DELAY_BUCKETS_SECONDS, CollectorRegistry())
            follower = LogFollower(log, from_start=True)
            metrics.count_lines("postfix-tx", follower.read_lines())

        read = timed("read (follower, no parsing)", lines, read_only)
        timed("read + parse_delivery", lines, parse_only)
        full = timed("read + parse + count (exporter)", lines, exporter)
        print(f"exporter / read = {full / read:.2f}; messages/s at 6 lines each = {full / 6:,.0f} "
              "(goal: >= 0.5 of the read rate and 2,000 msg/s per host)")


if __name__ == "__main__":
    main()
