"""Cost benchmark: `mailinfra cost STACK` end to end (one process per run, as a user runs it), and the pricing
alone in-process (estimate + own vs rent with its break-even solves), for each reference stack.

    .venv/bin/python bench/cost_bench.py [--runs 7] [--write docs/BENCHMARKS.md]

--write replaces the "## Cost" section of docs/BENCHMARKS.md (and only that section).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mailinfra.cost import cost_plan, load_aws_prices, load_esp_prices, usage_of  # noqa: E402
from mailinfra.model.load import load_stack  # noqa: E402
from mailinfra.plan.build import build_plan  # noqa: E402

HEADING = "## Cost"
STACKS = ("dev", "staging", "prod")


def command_runs(stack: str, runs: int) -> list[float]:
    binary = ROOT / ".venv" / "bin" / "mailinfra"
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([str(binary), "cost", stack], cwd=ROOT, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return sorted(times)


def pricing_runs(stack: str, runs: int) -> tuple[list[float], int]:
    """Seconds of cost_plan alone (plan built once), and the number of priced lines."""
    loaded = load_stack(stack)
    plan = build_plan(loaded)
    aws, esp = load_aws_prices(), load_esp_prices()
    times, lines = [], 0
    for _ in range(runs):
        start = time.perf_counter()
        cost = cost_plan(loaded, plan, usage_of(loaded), aws=aws, esp=esp)
        times.append(time.perf_counter() - start)
        lines = len(cost.estimate.lines)
    return sorted(times), lines


def render(runs: int) -> str:
    rows = ["| stack | `mailinfra cost STACK`, runs sorted (s) | median (s) | pricing alone, median (ms) | lines |",
            "|---|---|---:|---:|---:|"]
    for stack in STACKS:
        command = command_runs(stack, runs)
        pricing, lines = pricing_runs(stack, runs)
        rows.append(f"| {stack} | {' '.join(f'{t:.2f}' for t in command)} | {statistics.median(command):.2f} | "
                    f"{statistics.median(pricing) * 1000:.1f} | {lines} |")
    load = os.getloadavg()[0]
    return "\n".join([
        HEADING, "",
        "`mailinfra cost STACK` as a user runs it (one process per run: interpreter start, load and validate, plan, "
        "price tables, estimate, own vs rent with one break-even solve per option), and the pricing alone "
        f"in-process. Measured with `.venv/bin/python bench/cost_bench.py --runs {runs} --write docs/BENCHMARKS.md`.",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores (shared), Python {platform.python_version()}, "
        f"load average {load:.1f} at the end.", "", *rows, ""])


def write_section(path: Path, section: str) -> None:
    text = path.read_text(encoding="utf-8")
    pattern = re.compile(rf"^{re.escape(HEADING)}\n.*?(?=^## |\Z)", re.S | re.M)
    body = section + "\n"
    text = pattern.sub(lambda _: body, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + body
    path.write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--write", type=Path, default=None, metavar="FILE")
    args = parser.parse_args()
    section = render(args.runs)
    print(section)
    if args.write:
        write_section(args.write, section)


if __name__ == "__main__":
    main()
