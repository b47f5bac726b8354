"""Benchmark: `mailinfra lab up STACK` start-up, next to an earlier commit in the same run (root, Linux).

    .venv/bin/python bench/lab_startup.py [STACK] [--base REF] [--runs 3] [--write docs/BENCHMARKS.md]

Each run is `mailinfra lab up STACK --as-of warmed` in a fresh process, timed to its exit (the lab is
serving), then `lab down` (not timed). With --base, commit REF runs from a temporary git worktree with the
same interpreter and site-packages, alternating run by run with this tree, so the ratio is measured side by
side. `lab up` also prints its phases when MAILINFRA_LAB_TIMINGS=1 (where this tree supports it), which the
section lists as medians.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.preview_bench import compile_tree, write_section  # noqa: E402 - after the path fix above
from mailinfra.review.base import worktree_at  # noqa: E402

HEADING = "## Lab start-up"


def time_up(tree: Path, stack: str) -> tuple[float, dict[str, float]]:
    """Wall seconds of `lab up` run from `tree`, and the phases it reported (if any)."""
    env = {**os.environ, "MAILINFRA_LAB_TIMINGS": "1"}
    command = [sys.executable, "-m", "mailinfra.cli.main", "lab", "up", stack, "--as-of", "warmed"]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=tree, capture_output=True, text=True, check=False, env=env)
    seconds = time.perf_counter() - started
    subprocess.run([sys.executable, "-m", "mailinfra.cli.main", "lab", "down", stack], cwd=tree,
                   capture_output=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{tree}: lab up {stack} failed: {done.stderr.strip()[-600:]}")
    phases: dict[str, float] = {}
    for line in done.stderr.splitlines():
        if line.startswith("lab-timing "):
            phases.update(json.loads(line.removeprefix("lab-timing ")))
    return seconds, phases


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stack", nargs="?", default="dev")
    parser.add_argument("--base", help="an earlier commit to run side by side")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    compile_tree(ROOT)
    results: dict[str, list[float]] = {}
    phases: dict[str, list[float]] = {}

    def run(trees: dict[str, Path]) -> None:
        for _ in range(args.runs):
            for label, tree in trees.items():
                seconds, found = time_up(tree, args.stack)
                results.setdefault(label, []).append(seconds)
                if label == "this":
                    for name, value in found.items():
                        phases.setdefault(name, []).append(value)

    if args.base:
        with worktree_at(ROOT, args.base) as base_tree:
            compile_tree(base_tree)
            run({"base": base_tree, "this": ROOT})
    else:
        run({"this": ROOT})
    lines = [HEADING, "",
             f"`mailinfra lab up {args.stack} --as-of warmed` until the lab serves, one process per run, `lab down` "
             "after each (not timed). Measured with `.venv/bin/python bench/lab_startup.py "
             f"{args.stack}{f' --base {args.base}' if args.base else ''} --runs {args.runs} --write "
             "docs/BENCHMARKS.md` (root)" + (": the two trees alternate run by run." if args.base else "."), "",
             f"Machine: {platform.machine()}, {os.cpu_count()} cores (shared), load average "
             f"{os.getloadavg()[0]:.1f} at the end.", "",
             "| tree | runs, sorted (s) | median (s) |" + (" this / base |" if args.base else ""),
             "|---|---|---:|" + ("---:|" if args.base else "")]
    for label, values in results.items():
        ratio = ""
        if args.base:
            ratio = (f" {statistics.median(values) / statistics.median(results['base']):.2f} |"
                     if label == "this" else " |")
        lines.append(f"| {label} | {' '.join(f'{v:.1f}' for v in sorted(values))} | "
                     f"{statistics.median(values):.1f} |{ratio}")
    if phases:
        lines += ["", "Phases of this tree's `lab up` (median seconds):", "",
                  "| phase | median (s) |", "|---|---:|"]
        lines += [f"| {name} | {statistics.median(values):.1f} |" for name, values in phases.items()]
    section = "\n".join(lines) + "\n"
    print(section)
    if args.write:
        write_section(args.write, section, "")
    return 0


if __name__ == "__main__":
    sys.exit(main())
