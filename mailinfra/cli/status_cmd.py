"""`mailinfra status STACK (--prometheus URL | --lab) [--window 24h] [--format table|json|markdown]`.

One screen per stream and pool: sent, delivered/deferred/bounced/complaint %, inbox % per provider, warmup day
and cap use, queue age, firing alerts. Exit 0 with a status, 2 when Prometheus cannot be reached (or the
arguments are wrong), 1 when Prometheus refuses a query.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

from mailinfra.cli.options import add_stack_argument
from mailinfra.errors import UsageError
from mailinfra.model.load import load_stack
from mailinfra.plan.build import build_plan
from mailinfra.status.render import FORMATS, render

_WINDOW = re.compile(r"^([1-9][0-9]{0,3})([mhd])$")
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400}
# Where a running lab says its Prometheus answers (written by the lab's monitoring, one URL a line).
LAB_PROMETHEUS_FILE = "prometheus.url"


def window_seconds(text: str) -> int:
    match = _WINDOW.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"received {text!r}, expected a window such as 1h, 24h, 7d or 90m")
    return int(match[1]) * _UNIT_SECONDS[match[2]]


def prometheus_url(text: str) -> str:
    if not re.match(r"^https?://[^/\s]+", text):
        raise argparse.ArgumentTypeError(f"received {text!r}, expected an http:// or https:// URL of Prometheus")
    return text


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "status", help="delivery and inbox placement per stream and pool, from Prometheus",
        description="One screen per stream and pool: sent, delivered/deferred/bounced/complaint %, inbox % per "
        "provider (seed probes), warmup day and cap use (plan), queue age and firing alerts (Prometheus). "
        "Exit 2 when Prometheus cannot be reached.")
    add_stack_argument(parser)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--prometheus", type=prometheus_url, metavar="URL", help="the Prometheus server's base URL")
    where.add_argument("--lab", action="store_true", help="the running lab's Prometheus")
    parser.add_argument("--window", type=window_seconds, default=86400, metavar="SPAN",
                        help="the span counted (1h, 24h, 7d; default 24h)")
    parser.add_argument("--at", type=float, default=None, metavar="UNIX_TIME",
                        help="evaluate as of this time (default now), for a reproducible screen")
    parser.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")
    parser.set_defaults(handler=run)
    return parser


def lab_prometheus(stack: str) -> str:
    from mailinfra.lab.layout import RUNTIME_ROOT

    candidates = sorted(RUNTIME_ROOT.glob(f"*/{LAB_PROMETHEUS_FILE}")) if RUNTIME_ROOT.exists() else []
    for path in candidates:
        url = Path(path).read_text().strip()
        if url:
            return url
    raise UsageError(f"--lab: received no running lab Prometheus for stack {stack} (no {RUNTIME_ROOT}/*/"
                     f"{LAB_PROMETHEUS_FILE}), expected `mailinfra lab up {stack}` with monitoring running, "
                     "or --prometheus URL")


def run(args: argparse.Namespace) -> int:
    from mailinfra.mta.postfix import instance_name
    from mailinfra.status.collect import collect_status
    from mailinfra.status.prometheus import PrometheusClient, PrometheusUnreachableError

    stack = load_stack(args.stack)
    plan = build_plan(stack)
    url = lab_prometheus(stack.name) if args.lab else args.prometheus
    try:
        status = collect_status(plan, PrometheusClient(url), window_seconds=args.window, at=args.at,
                                instance_of={p.name: instance_name(p.name) for p in plan.pools})
    except PrometheusUnreachableError as error:
        print(f"mailinfra status: {error}", file=sys.stderr)
        return 2
    sys.stdout.write(render(args.format, status))
    return 0
