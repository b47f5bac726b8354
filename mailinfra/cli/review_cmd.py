"""`mailinfra review STACK --base GIT_REF [--fail-on destructive]`: the PR comment for a stack change."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from mailinfra.review import review_stack


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "review", help="Markdown diff of a stack against a git ref (for a PR comment)",
        description="Plan STACK at --base (a temporary git worktree, read by the current code) and in the "
                    "working tree; print the semantic diff as Markdown with a Mermaid topology diagram.")
    parser.add_argument("stack", metavar="STACK", help="stack name (dev, prod) or path to a Pulumi.<stack>.yaml")
    parser.add_argument("--base", required=True, metavar="GIT_REF", help="the ref to compare against (main, HEAD~1)")
    parser.add_argument("--fail-on", choices=["destructive", "never"], default="never",
                        help="exit 1 when the change is destructive or risky (removes a warmed IP, lowers a sending "
                             "IP's cap on any day, re-keys a DKIM selector, "
                             "removes or replaces a protected resource)")
    parser.add_argument("--no-resources", action="store_true",
                        help="skip running the Pulumi program (mock runtime) for both sides: faster, no resource diff")
    parser.add_argument("--repo", type=Path, default=None, help="git repository (default: the current directory's)")
    parser.add_argument("--output", type=Path, default=None, help="also write the Markdown to this file")
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    markdown, diff = review_stack(args.stack, args.base, repo=args.repo,
                                  resources=not getattr(args, "no_resources", False))
    sys.stdout.write(markdown)
    if args.output is not None:
        args.output.write_text(markdown)
    # A lowered cap is risky, not destructive, but must not pass silently (issue 15 will split classes).
    return 1 if args.fail_on == "destructive" and (diff.destructive or diff.risky) else 0
