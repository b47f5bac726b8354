"""Drift benchmark: records checked per second by `mailinfra drift`, next to a plain sequential dnspython
loop and the server's raw answer rate for the same queries, in one run against a local Knot.

    .venv/bin/python bench/drift_bench.py [STACK] [--rounds N] [--write]

--write replaces the "## Drift" section of docs/BENCHMARKS.md (and only that section).
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import socket
import sys
import tempfile
import time
from pathlib import Path

import dns.message
import dns.query
import dns.rdatatype

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mailinfra.drift.dns_check import DnsOptions, check_dns  # noqa: E402
from mailinfra.drift.model import Status  # noqa: E402
from mailinfra.drift.resolve import Server  # noqa: E402
from mailinfra.model.load import load_stack  # noqa: E402
from mailinfra.plan.build import build_plan  # noqa: E402
from tests.drift.knot import knot_serving, render_zones  # noqa: E402

HEADING = "## Drift"


def sequential(questions: list[tuple[str, str]], port: int) -> float:
    start = time.perf_counter()
    for name, rtype in questions:
        dns.query.udp(dns.message.make_query(name, rtype), "127.0.0.1", port=port, timeout=2)
    return time.perf_counter() - start


def raw_rate(questions: list[tuple[str, str]], port: int, window: int = 64) -> float:
    """Pre-built queries over one socket, answers counted, not parsed: what the server can give."""
    wires = [dns.message.make_query(n, t).to_wire() for n, t in questions]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect(("127.0.0.1", port))
        sock.settimeout(2)
        start = time.perf_counter()
        sent = received = 0
        while received < len(wires):
            while sent < len(wires) and sent - received < window:
                sock.send(wires[sent])
                sent += 1
            sock.recv(65535)
            received += 1
        return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("stack", nargs="?", default="prod")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    plan = build_plan(load_stack(args.stack))
    questions = [(r.name, str(r.type)) for r in plan.records]
    with tempfile.TemporaryDirectory() as tmp, knot_serving(Path(tmp), render_zones(plan, plan.records)) as port:
        server = Server("127.0.0.1", port)
        drift_times, seq_times, raw_times = [], [], []
        for _ in range(args.rounds):
            start = time.perf_counter()
            results, failures = asyncio.run(check_dns(plan, DnsOptions(server)))
            drift_times.append(time.perf_counter() - start)
            assert not failures and all(r.status is Status.OK for r in results), "bench zones must match the plan"
            seq_times.append(sequential(questions, port))
            raw_times.append(raw_rate(questions, port))
    n = len(questions)
    drift, seq, raw = n / min(drift_times), n / min(seq_times), n / min(raw_times)
    lines = [
        HEADING, "",
        f"`bench/drift_bench.py {args.stack}`: {n} planned records, knotd on 127.0.0.1, best of {args.rounds} rounds, "
        f"{platform.python_implementation()} {platform.python_version()}, {platform.machine()}.",
        "",
        "| method | records/s | vs sequential |",
        "|---|---|---|",
        f"| `mailinfra drift` (pipelined UDP, resolve + compare by meaning) | {drift:,.0f} | {drift / seq:.1f}x |",
        f"| plain sequential loop (`dns.query.udp`, resolve only) | {seq:,.0f} | 1.0x |",
        f"| raw answer rate (pre-built queries, answers not parsed) | {raw:,.0f} | {raw / seq:.1f}x |",
        "",
        f"drift reaches {drift / raw:.0%} of the raw rate and {drift / seq:.1f}x the sequential loop: "
        "the issue's goals "
        "(10x sequential, half the raw rate) are NOT met on loopback. Both Python paths are CPU-bound in dnspython "
        "message building and parsing (about 0.3 ms per record on this shared 2-core machine), so concurrency buys "
        "nothing when the round trip is ~0; against real authoritative servers (10-50 ms away) the sequential loop "
        "is latency-bound while the pipelined check keeps up to 256 queries in flight. Not yet measured with "
        "added latency (a netem delay inside a network namespace would show it).",
        "",
    ]
    section = "\n".join(lines)
    print(section)
    if args.write:
        write_section(ROOT / "docs" / "BENCHMARKS.md", section)
    return 0


def write_section(path: Path, section: str) -> None:
    text = path.read_text() if path.exists() else "# Benchmarks\n\n"
    if HEADING in text:
        before, _, rest = text.partition(HEADING)
        after = rest.split("\n## ", 1)
        text = before + section + ("\n## " + after[1] if len(after) > 1 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


if __name__ == "__main__":
    raise SystemExit(main())
