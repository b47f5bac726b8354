"""Time from a bounce arriving to its enforcement on every host, in the lab (issue 12: goal <= 10 s).

    flock /tmp/mailinfra-lab.lock .venv/bin/python bench/suppression_enforcement_bench.py [STACK] [--trials N] [--write]

Per trial: one message to a recipient the provider refuses (550 5.1.1 at RCPT) from one pool; the pool
instance's DSN goes to the bounce host's Postfix, over LMTP to the processor, into the store; every host's
lookup service polls the feed. Measured: `stored` = injection -> the entry in the store (the bounce's whole
path: delivery attempt, DSN, LMTP, commit), `enforced` = the entry in the store -> every pool instance of
every host refusing the recipient at RCPT (550 5.7.1), `total` = injection -> enforced everywhere.
--write replaces the "## Suppression enforcement" section of docs/BENCHMARKS.md (and only that section).
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.sections import replace_section  # noqa: E402 - after the path fix above
from mailinfra.lab import lab as lab_module  # noqa: E402
from mailinfra.lab.layout import plan_layout  # noqa: E402
from mailinfra.model.load import load_stack  # noqa: E402
from mailinfra.plan.build import build_plan  # noqa: E402
from mailinfra.suppression.paths import lab_db_path  # noqa: E402
from mailinfra.suppression.sqlite_store import SqliteStore  # noqa: E402

HEADING = "## Suppression enforcement"
REFUSED = "550 5.7.1"


def trial(lab: lab_module.Lab, pool: str, provider: str, local: str) -> dict[str, float]:
    started = time.monotonic()
    sent = lab_module.send(lab, pool=pool, provider=provider, rcpts=[local])
    address = sent[0]["rcpt"].lower()
    store = lab_db_path(lab.layout.runtime_dir)
    while not store.exists() or SqliteStore(store).get(address) is None:
        if time.monotonic() - started > 60:
            raise SystemExit(f"{address}: not stored after 60 s")
        time.sleep(0.02)
    stored = time.monotonic()
    while True:
        replies = [e["reply"] for e in lab_module.send(lab, provider=provider, rcpts=[local])]
        if all(r.startswith(REFUSED) for r in replies):
            break
        if time.monotonic() - started > 60:
            raise SystemExit(f"{address}: not refused everywhere after 60 s: {replies}")
        time.sleep(0.05)
    done = time.monotonic()
    return {"stored": stored - started, "enforced": done - stored, "total": done - started}


def render_section(stack: str, trials: list[dict[str, float]], command: str) -> str:
    def line(name: str) -> str:
        values = sorted(t[name] for t in trials)
        return f"| {name} | {statistics.median(values):.2f} | {values[-1]:.2f} |"

    return "\n".join([
        HEADING, "",
        f"`{command}` ({dt.date.today().isoformat()}, lab of `{stack}`, {len(trials)} trials): seconds from "
        "injecting a message whose recipient the provider refuses (550 5.1.1) to its suppression stored "
        "(`stored`: delivery attempt, the pool's DSN, LMTP to the processor, commit), then to every pool "
        "instance of every host refusing it at RCPT (`enforced`: the lookup services' 1 s poll of the feed). "
        "Goal (issue 12): enforcement on every host within 10 s of the bounce arriving.", "",
        "| phase | median s | max s |", "|---|---|---|", line("stored"), line("enforced"), line("total"), "", ""])


def write_section(path: Path, section: str) -> None:
    replace_section(path, HEADING, section)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stack", nargs="?", default="dev")
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    as_of = lab_module.first_day(args.stack, "warmed")
    plan = build_plan(load_stack(args.stack), as_of)
    lab = lab_module.Lab(plan, plan_layout(plan, Path("build/lab"), Path("/run/mailinfra-bench"),
                                           namespace=f"mi-bench-{args.stack}"))
    lab_module.up(lab)
    try:
        pools = [t["pool"] for t in lab_module.require_running(lab).info["targets"]]
        results = [trial(lab, pools[i % len(pools)], "gmail", f"unknown-bench{i}-{int(time.time())}")
                   for i in range(args.trials)]
    finally:
        lab_module.down(lab)
    command = f"python bench/suppression_enforcement_bench.py {args.stack} --trials {args.trials}"
    section = render_section(args.stack, results, command)
    print(section)
    if args.write:
        write_section(Path("docs/BENCHMARKS.md"), section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
