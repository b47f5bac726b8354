"""`mailinfra render STACK HOST --out DIR`: one host's rendered MTA files, for a deployment."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from mailinfra.cli.options import add_as_of_argument, add_stack_argument, resolve_as_of
from mailinfra.errors import UsageError


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "render", help="write one host's MTA files (Postfix + OpenDKIM, or PowerMTA) to a directory")
    add_stack_argument(parser)
    parser.add_argument("host", metavar="HOST", help="host name under hosts: in the stack file")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="directory to write into (files go to DIR/etc/...)")
    add_as_of_argument(parser)
    return parser


def run(args: argparse.Namespace) -> int:
    from mailinfra.model.load import load_stack
    from mailinfra.mta.render import render_host
    from mailinfra.plan import build_plan

    stack = load_stack(args.stack)
    plan = build_plan(stack, resolve_as_of(stack, args.as_of))
    files = render_host(plan, args.host)
    out: Path = args.out
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out: received {out}, expected a directory (it is a file)")
    try:
        for item in files:
            target = out / item.path
            target.parent.mkdir(parents=True, exist_ok=True)
            # Create with the final mode so a 0600 file is never briefly readable by others.
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, item.mode)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(item.content)
            target.chmod(item.mode)
    except OSError as exc:
        raise UsageError(f"--out: cannot write {out} ({exc.strerror or exc})") from None
    secrets = sorted({name for item in files for name in item.secret_placeholders})
    print(f"{out}: {len(files)} files for host {args.host} of stack {plan.stack} (as of {plan.as_of})")
    if secrets:
        print(f"secret placeholders to fill on the host: {', '.join(secrets)}")
    return 0
