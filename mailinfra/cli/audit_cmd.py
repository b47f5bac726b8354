"""`mailinfra audit STACK [--format table|json|markdown]`: the checklist; exit 1 on any error finding."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from mailinfra.audit import audit_plan, has_errors
from mailinfra.audit.render import FORMATS, render
from mailinfra.model.load import load_stack
from mailinfra.plan.build import build_plan


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "audit",
        help="check a stack against the deliverability checklist (exit 1 on errors)",
        description="Check the planned topology against the deliverability checklist. "
        "Exit 0 when there are no errors (warnings and infos do not fail), 1 otherwise.",
    )
    parser.add_argument(
        "stack", metavar="STACK", help="stack name (dev, prod) or path to a Pulumi.<stack>.yaml"
    )
    parser.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    stack = load_stack(args.stack)
    findings = audit_plan(build_plan(stack), stack.config)
    sys.stdout.write(render(args.format, stack.name, findings))
    return 1 if has_errors(findings) else 0
