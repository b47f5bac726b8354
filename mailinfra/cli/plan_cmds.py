"""`mailinfra validate` and `mailinfra preview`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from mailinfra.cli.options import add_as_of_argument, add_stack_argument, resolve_as_of


def add_parser(subparsers: Any) -> None:
    validate = subparsers.add_parser("validate", help="check a stack file; exit 0, or 1 with one line per problem")
    add_stack_argument(validate)
    validate.set_defaults(handler=run_validate)

    preview = subparsers.add_parser("preview", help="write the plan for review: plan.json, zones, review.md")
    add_stack_argument(preview)
    preview.add_argument("--out", type=Path, default=None, metavar="DIR", help="output directory (build/STACK/)")
    preview.add_argument("--format", choices=("table", "json", "markdown"), default="table",
                         help="what to print: a summary table, plan.json or review.md")
    preview.add_argument("--no-resources", action="store_true",
                         help="skip running the Pulumi program under the mock runtime")
    add_as_of_argument(preview)
    preview.set_defaults(handler=run_preview)


def run_validate(args: argparse.Namespace) -> int:
    from mailinfra.model.load import load_stack
    from mailinfra.plan import build_plan

    stack = load_stack(args.stack)
    build_plan(stack)  # plan-time rules (SPF lookups, zones) count as validation too
    print(f"{stack.source}: valid ({len(stack.config.streams)} streams, {len(stack.config.pools)} pools, "
          f"{sum(len(p.ips) for p in stack.config.pools.values())} IPs, {len(stack.config.hosts)} hosts)")
    return 0


def run_preview(args: argparse.Namespace) -> int:
    from mailinfra.model.load import load_stack
    from mailinfra.plan import build_plan
    from mailinfra.preview.artifacts import build_preview, write_preview
    from mailinfra.preview.stages import preview_contributors

    stack = load_stack(args.stack)
    plan = build_plan(stack, resolve_as_of(stack, args.as_of))
    preview = build_preview(plan, preview_contributors(include_resources=not args.no_resources))
    out = args.out or Path("build") / stack.name
    write_preview(preview, out)
    if args.format == "json":
        sys.stdout.write(next(f.content for f in preview.files if f.path == "plan.json"))
    elif args.format == "markdown":
        sys.stdout.write(next(f.content for f in preview.files if f.path == "review.md"))
    else:
        from mailinfra.preview.summary import print_summary

        print_summary(plan, preview, out)
    return 0

