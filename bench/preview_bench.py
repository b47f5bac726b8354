"""Benchmark: `mailinfra preview STACK` end to end, as a user runs it, next to an earlier commit in the same run.

    .venv/bin/python bench/preview_bench.py [--base REF] [--runs 9] [--write docs/BENCHMARKS.md]

Each run is a fresh process (interpreter start, imports, load and validate, plan, zones, rendered hosts, the
Pulumi program under the mock runtime, review.md, plan.json) writing to a temporary directory. With --base, the
commit REF is checked out in a temporary git worktree and both trees run alternately with the same interpreter
and site-packages (`python -m mailinfra.cli.main` from each tree's root imports that tree's code), so the ratio
is measured side by side on this shared machine. Both trees are byte-compiled first, as `make install` does.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mailinfra.errors import UsageError  # noqa: E402 - after the path fix above
from mailinfra.review.base import worktree_at  # noqa: E402

HEADING = "## Preview end to end"
GOAL_SECONDS = 3.0  # issue 4: `mailinfra preview prod` under 3 s on these 2-core machines


def compile_tree(tree: Path) -> None:
    subprocess.run([sys.executable, "-m", "compileall", "-q", "mailinfra", "components"], cwd=tree,
                   capture_output=True, check=True)


def time_preview(tree: Path, arguments: list[str]) -> float:
    """Wall seconds of one `mailinfra preview` process run from `tree`."""
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "mailinfra.cli.main", "preview", *arguments, "--out", f"{out}/preview"]
        started = time.perf_counter()
        done = subprocess.run(command, cwd=tree, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{tree}: {' '.join(arguments)} failed: {done.stderr.strip()[:400]}")
    return seconds


def measure(trees: dict[str, Path], cases: list[list[str]], runs: int) -> dict[tuple[str, str], list[float]]:
    """(tree label, case) -> sorted wall seconds; the trees alternate run by run."""
    results: dict[tuple[str, str], list[float]] = {}
    for arguments in cases:
        case = " ".join(arguments)
        for _ in range(runs):
            for label, tree in trees.items():
                results.setdefault((label, case), []).append(time_preview(tree, arguments))
    return {key: sorted(values) for key, values in results.items()}


def measure_with_base(ref: str, cases: list[list[str]], runs: int) -> dict[tuple[str, str], list[float]]:
    """`measure` of this tree and of commit `ref` (a temporary worktree, removed afterwards), alternating."""
    with worktree_at(ROOT, ref) as base_tree:
        compile_tree(base_tree)
        return measure({"base": base_tree, "this": ROOT}, cases, runs)


def report(results: dict[tuple[str, str], list[float]], labels: list[str], base: str | None, runs: int) -> str:
    load = os.getloadavg()[0]
    lines = [
        HEADING, "",
        "`mailinfra preview STACK` as a user runs it: one process per run (interpreter start, load and validate, "
        "plan, zones, rendered hosts, review.md, plan.json, and the Pulumi program under the mock runtime for the "
        "resource list), bytecode compiled as `make install` does. Measured with "
        f"`.venv/bin/python bench/preview_bench.py{f' --base {base}' if base else ''} --runs {runs} --write "
        "docs/BENCHMARKS.md`" + (f": this tree and commit `{base}` alternate run by run in one session." if base
                                 else "."),
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores (shared), Python {platform.python_version()}, "
        f"load average {load:.1f} at the end.", "",
        "| command | tree | runs, sorted (s) | median (s) |" + (" this / base |" if base else ""),
        "|---|---|---|---:|" + ("---:|" if base else ""),
    ]
    cases = list(dict.fromkeys(case for _, case in results))
    for case in cases:
        for label in labels:
            values = results[(label, case)]
            median = statistics.median(values)
            ratio = ""
            if base:
                ratio = (f" {median / statistics.median(results[('base', case)]):.2f} |" if label == "this"
                         else " |")
            lines.append(f"| `mailinfra preview {case}` | {label} | {' '.join(f'{v:.2f}' for v in values)} | "
                         f"{'**' if case == 'prod' and label == 'this' else ''}{median:.2f}"
                         f"{'**' if case == 'prod' and label == 'this' else ''} |{ratio}")
    prod = statistics.median(results[("this", "prod")]) if ("this", "prod") in results else None
    if prod is not None:
        lines += ["", f"Goal (issue 4): `mailinfra preview prod` under {GOAL_SECONDS:.0f} s — "
                      f"{'met' if prod < GOAL_SECONDS else 'NOT met'} (median {prod:.2f} s).", ""]
    return "\n".join(lines)


NOTES_MARKER = "<!-- analysis below: kept by bench/preview_bench.py when it rewrites the measurements above -->"


def write_section(path: Path, section: str, notes: str) -> None:
    """Replace the section (up to the next `## ` heading). The analysis after NOTES_MARKER is kept, unless
    `notes` replaces it."""
    text = path.read_text(encoding="utf-8")
    pattern = re.compile(rf"^{re.escape(HEADING)}\n.*?(?=^## |\Z)", re.S | re.M)
    current = pattern.search(text)
    if not notes.strip() and current and NOTES_MARKER in current.group(0):
        notes = current.group(0).split(NOTES_MARKER, 1)[1]
    body = section + ("\n" + NOTES_MARKER + "\n\n" + notes.strip() + "\n" if notes.strip() else "") + "\n"
    text = pattern.sub(lambda _: body, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + body
    path.write_text(text, encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", help="an earlier commit to run side by side (e.g. HEAD~5)")
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--stacks", default="prod,dev")
    parser.add_argument("--write", type=Path, help="replace the section in this Markdown file")
    parser.add_argument("--notes", type=Path, help="Markdown appended to the section (analysis)")
    args = parser.parse_args()
    cases = [[s] for s in args.stacks.split(",")] + [[args.stacks.split(",")[0], "--no-resources"]]
    compile_tree(ROOT)
    if args.base:
        try:
            results = measure_with_base(args.base, cases, args.runs)
        except UsageError as error:
            raise SystemExit(str(error)) from None
        labels = ["base", "this"]
    else:
        results = measure({"this": ROOT}, cases, args.runs)
        labels = ["this"]
    section = report(results, labels, args.base, args.runs)
    print(section)
    if args.write:
        write_section(args.write, section, args.notes.read_text(encoding="utf-8") if args.notes else "")
    return 0


if __name__ == "__main__":
    sys.exit(main())
