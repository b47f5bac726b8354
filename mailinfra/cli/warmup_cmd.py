"""`mailinfra warmup STACK [--as-of DATE] [--plot FILE.png]`: today's per-IP limits and the ramp per pool."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mailinfra.cli.options import add_as_of_argument, add_stack_argument, resolve_as_of
from mailinfra.errors import UsageError

if TYPE_CHECKING:
    from mailinfra.model.load import Stack
    from mailinfra.plan.model import Plan

# The chart runs this many days past --as-of so the rest of every ramp is visible.
PLOT_DAYS_AHEAD = 42


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "warmup", help="print each IP's warmup day and limits; optionally draw the ramp per pool")
    add_stack_argument(parser)
    add_as_of_argument(parser)
    parser.add_argument("--plot", type=Path, default=None, metavar="FILE.png",
                        help="draw the daily cap per pool over time to this PNG file")
    return parser


def run(args: argparse.Namespace) -> int:
    from mailinfra.model.load import load_stack
    from mailinfra.plan import build_plan

    if args.plot is not None:
        _check_plot_path(args.plot)
    stack = load_stack(args.stack)
    plan = build_plan(stack, resolve_as_of(stack, args.as_of))
    print(format_table(plan))
    if args.plot is not None:
        plot_ramp(stack, plan, args.plot)
        print(f"{args.plot}: ramp of {len(plan.pools)} pools from {_first_day(plan)} to "
              f"{plan.as_of + dt.timedelta(days=PLOT_DAYS_AHEAD)}")
    return 0


def _check_plot_path(path: Path) -> None:
    if path.suffix.lower() != ".png":
        raise UsageError(f"--plot: received {str(path)!r}, expected a file name ending in .png")
    if not path.parent.resolve().is_dir():
        raise UsageError(f"--plot: received {str(path)!r}, expected a file in an existing directory")


def format_table(plan: Plan) -> str:
    """One row per IP: where it is in its schedule and what it may send on as_of."""
    headers = ("ip", "pool", "tier", "host", "schedule", "day", "status", "daily", "hourly",
               "gmail/h", "microsoft/h", "yahoo/h", "apple/h", "default/h", "overflow")
    hosts = {ip.name: ip.host for ip in plan.ips}
    rows: list[tuple[str, ...]] = [headers]
    for limit in plan.warmup:
        rows.append((limit.ip, limit.pool, limit.tier, hosts[limit.ip], limit.schedule or "-",
                     str(limit.day) if limit.day else "-", limit.status, f"{limit.daily_cap:,}",
                     f"{limit.hourly_cap:,}",
                     *(f"{limit.provider(p).msgs_per_hour:,}" for p in ("gmail", "microsoft", "yahoo", "apple",
                                                                         "default")),
                     limit.overflow))
    widths = [max(len(row[i]) for row in rows) for i in range(len(headers))]
    lines = [f"warmup of stack {plan.stack} as of {plan.as_of}"]
    lines += ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
              for row in rows]
    return "\n".join(lines)


def _first_day(plan: Plan) -> dt.date:
    starts = [limit.effective_start for limit in plan.warmup if limit.effective_start]
    return min([*starts, plan.as_of]) - dt.timedelta(days=1)


def _date_number(day: dt.date) -> float:
    # matplotlib's date axis counts days since its default epoch, 1970-01-01.
    return float((day - dt.date(1970, 1, 1)).days)


def plot_ramp(stack: Stack, plan: Plan, path: Path) -> None:
    """Daily cap of each pool (sum of its IPs) per day, with today marked; log scale so day 1 is visible."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mailinfra.warmup import plan_warmup

    first = _first_day(plan)
    days = [first + dt.timedelta(days=n)
            for n in range((plan.as_of - first).days + PLOT_DAYS_AHEAD + 1)]
    totals: dict[str, list[int]] = {pool.name: [] for pool in plan.pools}
    for day in days:
        limits = plan_warmup(plan.ips, plan.streams, stack.config.warmup_schedules, day)
        for pool in plan.pools:
            totals[pool.name].append(sum(limit.daily_cap for limit in limits if limit.pool == pool.name))
    x = [_date_number(day) for day in days]
    today = _date_number(plan.as_of)
    figure, axes = plt.subplots(figsize=(14, 6), dpi=110)
    # Pools on the same schedule and start have the same line: draw it once, naming every pool on it, so no
    # pool hides under another.
    lines: dict[tuple[int, ...], list[str]] = {}
    for pool in plan.pools:
        lines.setdefault(tuple(totals[pool.name]), []).append(f"{pool.name} ({pool.stream}, {len(pool.ips)} IPs)")
    styles = ("-", "--", ":", "-.")
    for i, (series, labels) in enumerate(lines.items()):
        label = labels[0] if len(labels) == 1 else " = ".join(labels) + " (same ramp)"
        axes.step(x, [max(total, 0.9) for total in series], where="post", linestyle=styles[i % len(styles)],
                  linewidth=1.6, label=label)
    axes.axvline(today, color="grey", linestyle="--", linewidth=1)
    axes.text(today, 0.02, f" as of {plan.as_of}", transform=axes.get_xaxis_transform(),
              va="bottom", fontsize=8, color="grey")
    axes.set_yscale("log")
    axes.set_ylim(bottom=1)
    axes.set_ylabel("messages per day (pool total, log scale)")
    axes.set_title(f"Warmup ramp per pool, stack {plan.stack}")
    axes.grid(True, which="major", alpha=0.3)
    # Outside the axes: inside, it covers the first days of some ramp whatever corner it takes.
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, borderaxespad=0)
    axes.xaxis_date()
    figure.autofmt_xdate()
    figure.tight_layout()
    try:
        figure.savefig(path)
    except OSError as exc:
        raise UsageError(f"--plot: cannot write {path} ({exc.strerror or exc})") from None
    finally:
        plt.close(figure)
