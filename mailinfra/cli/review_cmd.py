"""`mailinfra review STACK --base GIT_REF [--fail-on destructive]`: the PR comment for a stack change."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from mailinfra.errors import UsageError
from mailinfra.review import review_stack
from mailinfra.review.render import GITHUB_COMMENT_LIMIT


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "review", help="Markdown diff of a stack against a git ref (for a PR comment)",
        description="Plan STACK at --base (a temporary git worktree, read by the current code) and in the "
                    "working tree; print the semantic diff as Markdown with a Mermaid topology diagram.")
    parser.add_argument("stack", metavar="STACK", help="stack name (dev, prod) or path to a Pulumi.<stack>.yaml")
    parser.add_argument("--base", required=True, metavar="GIT_REF", help="the ref to compare against (main, HEAD~1)")
    parser.add_argument("--fail-on", choices=["destructive", "risky", "any", "never"], default="never",
                        help="exit 1 on changes of this class or worse: destructive (removes a warmed IP, re-keys a "
                             "DKIM selector, removes or replaces a protected resource), risky (moves an IP between "
                             "hosts, signs with a selector that skipped `pending`, stops an instance, adopts a live "
                             "record), any (every change); default never")
    parser.add_argument("--no-resources", action="store_true",
                        help="skip running the Pulumi program (mock runtime) for both sides: faster, no resource diff")
    parser.add_argument("--repo", type=Path, default=None, help="git repository (default: the current directory's)")
    parser.add_argument("--output", type=Path, default=None, help="also write the Markdown to this file")
    parser.add_argument("--append", type=Path, action="append", default=[], metavar="FILE",
                        help="append FILE (e.g. the audit's Markdown) to the comment; the review folds its details "
                             "so that the whole comment stays within --max-chars")
    parser.add_argument("--max-chars", type=int, default=GITHUB_COMMENT_LIMIT, metavar="N",
                        help=f"longest comment (default {GITHUB_COMMENT_LIMIT:,}, GitHub's limit)")
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    appended = []
    for path in getattr(args, "append", None) or []:
        try:
            appended.append(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"--append: cannot read {path} ({exc.__class__.__name__}: {exc})") from None
    limit = getattr(args, "max_chars", GITHUB_COMMENT_LIMIT)
    budget = limit - sum(len(text) + 1 for text in appended)
    if budget < 2_000:
        raise UsageError(f"--append: received {sum(map(len, appended)):,} characters to append, expected well under "
                         f"--max-chars {limit:,} (the review needs room)")
    markdown, diff = review_stack(args.stack, args.base, repo=args.repo,
                                  resources=not getattr(args, "no_resources", False), max_chars=budget)
    comment = "\n".join([markdown.rstrip("\n"), *appended]) + "\n"
    sys.stdout.write(comment)
    if args.output is not None:
        args.output.write_text(comment)
    return 1 if diff.fails(args.fail_on) else 0
