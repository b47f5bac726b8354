"""`mailinfra isolate STACK NAME --reason TEXT [--provider P]`: take a pool or IP out of rotation in one line.

The command edits the stack file the way a person would (one line under `mailinfra:isolations:`, the rest of the
file untouched), checks the result like `validate` before writing it, and `--lift` deletes the line again. The
change then goes through review like any other: `mailinfra review` shows what moves where.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

from mailinfra.cli.options import add_stack_argument, as_of_date
from mailinfra.errors import ConfigErrors, UsageError

SECTION = "mailinfra:isolations"


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "isolate", help="take a pool or IP out of rotation (one reviewable line in the stack file); --lift ends it",
        description=__doc__.splitlines()[0] if __doc__ else None)
    add_stack_argument(parser)
    parser.add_argument("name", metavar="NAME", help="a pool or IP name (or pool:<pool> / ip:<ip>)")
    parser.add_argument("--provider", default=None, help="only mail to this provider (gmail, microsoft, yahoo, ...)")
    parser.add_argument("--reason", default=None, help="why (ticket, blocklist, the replies seen); required")
    parser.add_argument("--to", choices=("route", "siblings"), default=None,
                        help="where the mail goes: route (a pool's default) or siblings (an IP's default)")
    parser.add_argument("--since", type=as_of_date, default=None, metavar="DATE", help="default today")
    parser.add_argument("--lift", action="store_true", help="delete the isolation's line instead")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from mailinfra.model.load import load_stack, resolve_stack_file

    path = resolve_stack_file(args.stack)
    stack = load_stack(str(path))
    target = resolve_target(args.name, set(stack.config.pools),
                            {ip for pool in stack.config.pools.values() for ip in pool.ips}, args.provider)
    text = path.read_text(encoding="utf-8")
    if args.lift:
        if target not in stack.config.isolations:
            raise UsageError(f"NAME: received {target!r}, expected an isolation of {stack.source} "
                             f"({', '.join(sorted(stack.config.isolations)) or 'there are none'})")
        updated = remove_isolation(text, target)
    else:
        if not args.reason:
            raise UsageError("--reason: received nothing, expected why (a reviewer reads it in the PR)")
        if target in stack.config.isolations:
            since = stack.config.isolations[target].since
            raise UsageError(f"NAME: received {target!r}, already isolated since {since} (lift it with --lift)")
        value = {"reason": args.reason, "since": (args.since or dt.date.today()).isoformat()}
        if args.to:
            value["to"] = args.to
        updated = add_isolation(text, target, value)
    check_before_writing(path, updated)
    path.write_text(updated, encoding="utf-8")
    verb = "lifted" if args.lift else "isolated"
    print(f"{stack.source}: {verb} {target}; review it with `mailinfra review {args.stack} --base <branch>`")
    return 0


def resolve_target(name: str, pools: set[str], ips: set[str], provider: str | None) -> str:
    kind, _, bare = name.partition(":") if name.startswith(("pool:", "ip:")) else ("", "", name)
    bare, _, inline_provider = bare.partition("@")
    if inline_provider and provider and inline_provider != provider:
        raise UsageError(f"--provider: received {provider!r} and {inline_provider!r} in NAME, expected one")
    provider = provider or inline_provider or None
    if not kind:
        matches = [k for k, names in (("pool", pools), ("ip", ips)) if bare in names]
        if not matches:
            raise UsageError(f"NAME: received {name!r}, expected a pool or IP of the stack")
        if len(matches) > 1:
            raise UsageError(f"NAME: received {name!r}, a pool and an IP both have it: write pool:{bare} or ip:{bare}")
        kind = matches[0]
    return f"{kind}:{bare}" + (f"@{provider}" if provider else "")


def add_isolation(text: str, target: str, value: dict[str, str]) -> str:
    """The stack file with one line for `target` under `mailinfra:isolations:` (created at the end of `config:`)."""
    lines = text.splitlines(keepends=True)
    key_indent = _config_key_indent(lines)
    entry = f"{key_indent * 2}{target}: {{{', '.join(f'{k}: {_scalar(v)}' for k, v in value.items())}}}\n"
    header = _find(lines, rf"^{key_indent}{re.escape(SECTION)}:\s*(\{{\s*\}})?\s*(#.*)?$")
    if header is not None:
        lines[header] = f"{key_indent}{SECTION}:\n"
        end = _block_end(lines, header, len(key_indent))
        lines.insert(end, entry)
    else:
        end = _block_end(lines, _find(lines, r"^config:\s*$") or 0, 0)
        lines[end:end] = [f"{key_indent}{SECTION}:\n", entry]
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    return "".join(lines)


def remove_isolation(text: str, target: str) -> str:
    lines = text.splitlines(keepends=True)
    key_indent = _config_key_indent(lines)
    header = _find(lines, rf"^{key_indent}{re.escape(SECTION)}:\s*(#.*)?$")
    if header is None:
        raise UsageError(f"NAME: received {target!r}, but the stack file writes {SECTION} in a form this command "
                         "does not edit (a flow mapping): delete the entry by hand")
    end = _block_end(lines, header, len(key_indent))
    at = _find(lines[header + 1:end], rf"^{key_indent * 2}{re.escape(target)}:")
    if at is None:
        raise UsageError(f"NAME: received {target!r}, not found as a line under {SECTION}: delete it by hand")
    start = header + 1 + at
    stop = _block_end(lines, start, len(key_indent) * 2)
    del lines[start:stop]
    remaining = [line for line in lines[header + 1:_block_end(lines, header, len(key_indent))] if line.strip()
                 and not line.strip().startswith("#")]
    if not remaining:
        del lines[header:_block_end(lines, header, len(key_indent))]
    return "".join(lines)


def check_before_writing(path: Path, text: str) -> None:
    """Nothing half-applied: the edited file must validate (and plan) exactly as `mailinfra validate` would."""
    from mailinfra.model.load import load_stack
    from mailinfra.plan.build import build_plan

    candidate = path.with_name(f".{path.name}.isolate-check.yaml")
    try:
        candidate.write_text(text, encoding="utf-8")
        build_plan(load_stack(str(candidate)))
    except ConfigErrors as exc:
        first = exc.errors[0].line().replace(candidate.name, path.name)
        raise UsageError(f"the change would not validate, nothing written: {first}") from None
    finally:
        candidate.unlink(missing_ok=True)


def _config_key_indent(lines: list[str]) -> str:
    for line in lines:
        match = re.match(r"^(\s+)mailinfra:", line)
        if match:
            return match.group(1)
    return "  "


def _find(lines: list[str], pattern: str) -> int | None:
    return next((i for i, line in enumerate(lines) if re.match(pattern, line.rstrip("\n"))), None)


def _block_end(lines: list[str], start: int, indent: int) -> int:
    """The index after the last line that belongs under lines[start] (more indented, blank or comment inside)."""
    end = start + 1
    last = start + 1
    while end < len(lines):
        line = lines[end]
        stripped = line.strip()
        if stripped and len(line) - len(line.lstrip(" ")) <= indent:
            break
        end += 1
        if stripped and not stripped.startswith("#"):
            last = end
    return last


def _scalar(value: str) -> str:
    # A date stays a plain YAML date; text is double-quoted (a JSON string is a valid YAML flow scalar).
    return value if re.fullmatch(r"\d{4}-\d{2}-\d{2}|route|siblings", value) else json.dumps(value)
