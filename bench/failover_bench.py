"""Benchmark: failover time per fault mode in the lab, with the rendered timeouts and reply filters (root, Linux).

    flock /tmp/mailinfra-lab.lock .venv/bin/python bench/failover_bench.py [--runs 3] [--write docs/BENCHMARKS.md]

One lab of the dev stack on its first all-warmed day. Per run and fault mode (side by side, modes alternating
run by run): gmail is faulted, the transactional pool injects one message to it, and the time from injection
to arrival is measured, with where it arrived (its own IP or the SES route). Reputation modes must NOT
arrive: they are held for HOLD_SECONDS, checked to be still queued, then released. Between runs the bench
waits out the transport's rate delay, so pacing does not add to the next run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mailinfra.lab import lab as lab_module  # noqa: E402 - after the path fix above
from mailinfra.lab import mta  # noqa: E402
from mailinfra.lab.layout import plan_layout  # noqa: E402
from mailinfra.lab.report import read_arrivals  # noqa: E402
from mailinfra.model.load import load_stack  # noqa: E402
from mailinfra.mta.postfix import SMTP_CONNECT_TIMEOUT, SMTP_HELO_TIMEOUT, plan_instances  # noqa: E402
from mailinfra.plan.build import build_plan  # noqa: E402

HEADING = "## Failover time per fault mode"
NOTES_MARKER = "<!-- analysis below: kept by bench/failover_bench.py when it rewrites the measurements above -->"
HOLD_SECONDS = 8.0
PROVIDER = "gmail"
POOL = "tx"
# Mode -> (what the lab provider does, what bounds the time, why that bound).
MODES: dict[str, tuple[str, str, str]] = {
    "throttle": ("421 4.7.0 at the greeting", "one TCP round trip + the route's delivery",
                 "a 4xx from the last MX host moves to smtp_fallback_relay in the same attempt"),
    "throttle-rcpt": ("451 4.7.500 on RCPT", "one SMTP transaction + the route's delivery",
                      "same: the recipient is kept for the next server"),
    "refuse": ("connection reset before the greeting", "one TCP round trip + the route's delivery",
               "a failed connection tries the next server at once"),
    "silent": ("connection accepted, never greeted", f"smtp_helo_timeout = {SMTP_HELO_TIMEOUT} per MX host",
               "2.5x postscreen's 6 s greet wait: slow receivers are not down (mailinfra/mta/postfix.py)"),
    "postscreen": ("220- banner, real greeting after 6 s", "postscreen_greet_wait (6 s), delivered from our IP",
                   "not an outage: the greeting arrives within smtp_helo_timeout"),
    "reputation": ("421 4.7.28 on RCPT (Gmail's unsolicited-rate limit)", "never rerouted: held in the queue",
                   "reply filter makes it final, status filter a deferral: retried from the same IP"),
    "complaints": ("421 4.7.0 [TSS04] at the greeting (Yahoo-style)", "never rerouted: held in the queue",
                   "as reputation; smtp_skip_5xx_greeting = no keeps a marked greeting final"),
}
HELD = ("reputation", "complaints")


def _arrival(lab: Any, lab_id: str) -> dict[str, Any] | None:
    return next((a for a in read_arrivals(lab.layout.mail_dir) if a.get("lab_id") == lab_id), None)


def _rate_delay(lab: Any) -> float:
    instance = next(i for h in lab.plan.hosts if h.mta == "postfix" for i in plan_instances(lab.plan, h)
                    if i.pool == POOL)
    return max(float(t.limit.postfix_rate_delay_seconds) for t in instance.transports
               if t.limit.provider == PROVIDER)


def run_mode(lab: Any, mode: str) -> tuple[float | None, str]:
    """(seconds from injection to arrival, or None if held; where it arrived or 'held')."""
    lab_module.fault(lab, PROVIDER, mode)
    try:
        started = time.monotonic()
        sent = lab_module.send(lab, pool=POOL, provider=PROVIDER)
        lab_id = sent[0]["lab_id"]
        if mode in HELD:
            time.sleep(HOLD_SECONDS)
            if _arrival(lab, lab_id) is not None:
                return time.monotonic() - started, _arrival(lab, lab_id)["via"]  # type: ignore[index]
            return None, "held"
        lab_module.wait_for_arrivals(lab, [lab_id], timeout=60)
        took = time.monotonic() - started
        found = _arrival(lab, lab_id)
        return took, found["via"] if found else "?"
    finally:
        lab_module.fault(lab, PROVIDER, "ok")
        if mode in HELD:
            for _host, instance in lab_module.staged_instances(lab):
                mta.flush_queue(lab.layout.namespace, instance)
            lab_module.wait_for_arrivals(lab, [lab_id], timeout=60)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    as_of = lab_module.first_day("dev", "warmed", start=dt.date(2026, 11, 29))
    plan = build_plan(load_stack("dev"), as_of)
    results: dict[str, list[tuple[float | None, str]]] = {m: [] for m in MODES}
    with tempfile.TemporaryDirectory(prefix="failover-bench-") as build:
        layout = plan_layout(plan, Path(build), Path("/run/mailinfra-failover-bench"), namespace="mi-bench-fo")
        lab = lab_module.Lab(plan, layout)
        lab_module.up(lab)
        try:
            pause = _rate_delay(lab) + 0.5
            for _ in range(args.runs):
                for mode in MODES:
                    results[mode].append(run_mode(lab, mode))
                    time.sleep(pause)
        finally:
            lab_module.down(lab)
    lines = [HEADING, "",
             f"The lab (dev stack, {as_of}, every IP warmed): {PROVIDER} faulted, pool `{POOL}` injects one message, "
             "time from injection to arrival. Modes alternate run by run. Measured with `flock /tmp/mailinfra-lab.lock "
             f".venv/bin/python bench/failover_bench.py --runs {args.runs} --write docs/BENCHMARKS.md` (root). "
             f"Rendered timeouts: smtp_connect_timeout = {SMTP_CONNECT_TIMEOUT}, smtp_helo_timeout = "
             f"{SMTP_HELO_TIMEOUT}.", "",
             f"Machine: {platform.machine()}, {os.cpu_count()} cores (shared), load average "
             f"{os.getloadavg()[0]:.1f} at the end.", "",
             "| fault mode | receiver does | runs, sorted (s) | median (s) | arrived via | bound | why |",
             "|---|---|---|---:|---|---|---|"]
    for mode, runs in results.items():
        times = sorted(t for t, _ in runs if t is not None)
        vias = sorted({v for _, v in runs})
        shown = " ".join(f"{t:.2f}" for t in times) or f"held {HOLD_SECONDS:.0f} s, each run"
        median = f"{statistics.median(times):.2f}" if times else "-"
        does, bound, why = MODES[mode]
        lines.append(f"| {mode} | {does} | {shown} | {median} | {', '.join(vias)} | {bound} | {why} |")
    section = "\n".join(lines) + "\n"
    print(section)
    if args.write:
        _write_section(args.write, section)
    return 0


def _write_section(path: Path, section: str) -> None:
    """Replace this bench's section (up to the next `## `), keeping the analysis after NOTES_MARKER."""
    text = path.read_text(encoding="utf-8")
    pattern = re.compile(rf"^{re.escape(HEADING)}\n.*?(?=^## |\Z)", re.S | re.M)
    current = pattern.search(text)
    notes = current.group(0).split(NOTES_MARKER, 1)[1].strip() if current and NOTES_MARKER in current.group(0) else ""
    body = section + ("\n" + NOTES_MARKER + "\n\n" + notes + "\n" if notes else "") + "\n"
    text = pattern.sub(lambda _: body, text) if current else text.rstrip("\n") + "\n\n" + body
    path.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
