"""`mailinfra suppress list|check|add|remove|import|export|log STACK`: read and edit the suppression store.

The store is the stack's: `--db PATH` (SQLite; default the bounce host's own file), `--lab` (the running
lab's), or `--table NAME` (DynamoDB, with the usual AWS environment). Every change records who made it
(`cli:<user>`, `import:<file>`) in the entry and in the audit log (`log`).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import getpass
import io
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mailinfra.cli.options import add_stack_argument
from mailinfra.errors import MailinfraError, UsageError

if TYPE_CHECKING:
    from mailinfra.model.load import Stack
    from mailinfra.suppression.model import Entry
    from mailinfra.suppression.store import SuppressionStore

ACTIONS = ("list", "check", "add", "remove", "import", "export", "log")


class ImportFileError(MailinfraError):
    """An import file with bad rows: one line per row, nothing imported."""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "suppress", help="list, check, add, remove, import and export suppressed recipients")
    parser.add_argument("action", choices=ACTIONS, metavar="ACTION", help=" | ".join(ACTIONS))
    add_stack_argument(parser)
    parser.add_argument("address", nargs="?", default=None, metavar="ADDRESS",
                        help="the recipient (check, add, remove, log) or the file (import, export; - = stdio)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--db", type=Path, default=None, metavar="PATH", help="the SQLite store file")
    where.add_argument("--lab", action="store_true", help="the store of the stack's running lab")
    where.add_argument("--table", default=None, metavar="NAME", help="the DynamoDB table (store: dynamodb)")
    parser.add_argument("--format", choices=("table", "csv", "json"), default=None,
                        help="output (list, export) or input (import) format; default by file suffix or table")
    parser.add_argument("--scope", default=None, metavar="KINDS",
                        help="add: the stream kinds it stops, e.g. marketing,bulk (default every kind); "
                             "check: the kind to check (default every kind)")
    parser.add_argument("--stream", default=None, metavar="STREAM", help="add/check: a stream key of the stack "
                        "(its kind is the scope)")
    parser.add_argument("--reason", default="", metavar="TEXT", help="add/remove: why (kept in the audit log)")
    parser.add_argument("--source", choices=("manual", "unsubscribe"), default="manual", help="add: the source")
    parser.add_argument("--expires-days", type=int, default=None, metavar="N", help="add: lapse after N days")
    return parser


def run(args: argparse.Namespace) -> int:
    from mailinfra.model.load import load_stack

    stack = load_stack(args.stack)
    store = open_store(args, stack)
    try:
        return _ACTIONS[args.action](args, stack, store)
    finally:
        store.close()


def open_store(args: argparse.Namespace, stack: Stack) -> SuppressionStore:
    """The store the options name; a DynamoDB stack without --table, or no file to open, is one line."""
    from mailinfra.suppression.paths import HOST_DB_PATH, lab_db_path
    from mailinfra.suppression.sqlite_store import SqliteStore

    if args.table:
        from mailinfra.suppression.dynamodb_store import DynamoStore

        return DynamoStore(args.table)
    if args.lab:
        from mailinfra.lab.layout import RUNTIME_ROOT

        # The lab's runtime dir is RUNTIME_ROOT/<stack> (mailinfra.lab.layout.plan_layout).
        path = lab_db_path(RUNTIME_ROOT / stack.name)
        if not path.exists():
            raise UsageError(f"--lab: received no store at {path}, expected a running lab of {stack.name} "
                             f"(mailinfra lab up {stack.name}) whose processor has started")
        return SqliteStore(path)
    path = args.db or Path(HOST_DB_PATH)
    if args.db is None and not path.exists():
        kind = stack.config.bounces.suppression.store
        raise UsageError(f"received no store option and no {HOST_DB_PATH} here, expected --db PATH, --lab or "
                         f"--table NAME (the stack's bounces.suppression.store is {kind})")
    if args.action not in {"add", "import"} and not path.exists():
        raise UsageError(f"--db: received {str(path)!r}, expected an existing store file")
    return SqliteStore(path)


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


def _need_address(args: argparse.Namespace) -> str:
    from mailinfra.suppression.address import BadAddress, normalise_address

    if not args.address:
        raise UsageError(f"{args.action}: received no ADDRESS, expected the recipient's address")
    try:
        return normalise_address(args.address)
    except BadAddress as exc:
        raise UsageError(f"ADDRESS: {exc}") from None


def _kinds(args: argparse.Namespace, stack: Stack) -> frozenset[Any] | None:
    from mailinfra.model.schema import StreamKind

    if args.stream:
        stream = stack.config.streams.get(args.stream)
        if stream is None:
            raise UsageError(f"--stream: received {args.stream!r}, expected one of {', '.join(stack.config.streams)}")
        return frozenset({stream.kind})
    if not args.scope:
        return None
    try:
        return frozenset(StreamKind(k.strip()) for k in args.scope.replace("|", ",").split(",") if k.strip())
    except ValueError:
        raise UsageError(f"--scope: received {args.scope!r}, expected stream kinds from "
                         f"{', '.join(k.value for k in StreamKind)} (comma-separated)") from None


# ---------------------------------------------------------------- actions


def _list(args: argparse.Namespace, _stack: Stack, store: SuppressionStore) -> int:
    _write_entries(store.entries(), args.format or "table", sys.stdout)
    return 0


def _check(args: argparse.Namespace, stack: Stack, store: SuppressionStore) -> int:
    from mailinfra.model.schema import StreamKind

    address = _need_address(args)
    now = dt.datetime.now(dt.UTC)
    kinds = _kinds(args, stack) or frozenset(StreamKind)
    entry = store.get(address)
    stopped = sorted(k for k in kinds if entry is not None and entry.covers(k, now))
    if args.format == "json":
        print(json.dumps({"address": address, "suppressed_for": stopped,
                          "entry": _row(entry) if entry else None}, indent=2))
    elif entry is None or not stopped:
        print(f"{address}: not suppressed" + (f" (lapsed or other scope: {_describe(entry)})" if entry else ""))
    else:
        print(f"{address}: suppressed for {', '.join(stopped)}: {_describe(entry)}")
    return 0


def _add(args: argparse.Namespace, stack: Stack, store: SuppressionStore) -> int:
    from mailinfra.model.schema import StreamKind
    from mailinfra.suppression.model import Entry, Source

    address = _need_address(args)
    now = dt.datetime.now(dt.UTC)
    if args.expires_days is not None and args.expires_days < 1:
        raise UsageError(f"--expires-days: received {args.expires_days}, expected a number of days >= 1")
    expires = now + dt.timedelta(days=args.expires_days) if args.expires_days else None
    entry = Entry(address=address, scope=_kinds(args, stack) or frozenset(StreamKind),
                  reason=args.reason or f"added by {_actor()}", cls=None, source=Source(args.source),
                  first_seen=now, last_seen=now, expires=expires, added_by=_actor(), stream=args.stream)
    store.put(entry, actor=_actor(), detail=args.reason)
    print(f"{address}: suppressed for {', '.join(sorted(entry.scope))}")
    return 0


def _remove(args: argparse.Namespace, _stack: Stack, store: SuppressionStore) -> int:
    address = _need_address(args)
    if not store.remove(address, actor=_actor(), detail=args.reason):
        print(f"{address}: was not suppressed")
        return 1
    print(f"{address}: removed")
    return 0


def _import(args: argparse.Namespace, _stack: Stack, store: SuppressionStore) -> int:
    from mailinfra.suppression.codec import row_to_entry

    source = args.address or "-"
    fmt = args.format or ("json" if source.endswith(".json") else "csv")
    text = _read(source)
    rows = _parse_rows(text, fmt, source)
    now = dt.datetime.now(dt.UTC)
    actor = f"import:{Path(source).name if source != '-' else 'stdin'}"
    entries, errors = [], []
    for number, row in rows:
        try:
            entries.append(row_to_entry(row, now=now, added_by=actor))
        except ValueError as exc:
            errors.append(f"{source}: row {number}: {exc}")
    if errors:
        raise ImportFileError("\n".join([*errors, f"{source}: nothing imported ({len(errors)} bad rows)"]))
    for entry in entries:
        store.put(entry, actor=actor)
    print(f"{source}: {len(entries)} entries imported")
    return 0


def _export(args: argparse.Namespace, _stack: Stack, store: SuppressionStore) -> int:
    target = args.address or "-"
    fmt = args.format or ("json" if target.endswith(".json") else "csv")
    if fmt == "table":
        raise UsageError("--format: received 'table', expected csv or json for export")
    if target == "-":
        _write_entries(store.entries(), fmt, sys.stdout)
        return 0
    buffer = io.StringIO()
    count = _write_entries(store.entries(), fmt, buffer)
    try:
        Path(target).write_text(buffer.getvalue(), encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"export: cannot write {target!r} ({exc.strerror})") from None
    print(f"{target}: {count} entries exported")
    return 0


def _log(args: argparse.Namespace, _stack: Stack, store: SuppressionStore) -> int:
    address = _need_address(args) if args.address else None
    for event in store.audit_log(address):
        print(f"{event.at:%Y-%m-%dT%H:%M:%SZ}  {event.actor:<24} {event.action:<7} {event.address}  {event.detail}")
    return 0


_ACTIONS = {"list": _list, "check": _check, "add": _add, "remove": _remove, "import": _import,
            "export": _export, "log": _log}


# ---------------------------------------------------------------- formats


def _row(entry: Entry) -> dict[str, str]:
    from mailinfra.suppression.codec import entry_to_row

    return entry_to_row(entry)


def _describe(entry: Entry) -> str:
    row = _row(entry)
    until = f", until {row['expires']}" if row["expires"] else ""
    return f"{row['source']} [{row['scope']}] {row['reason']} (since {row['first_seen']}{until}, by {row['added_by']})"


def _write_entries(entries: Iterable[Entry], fmt: str, out: Any) -> int:
    from mailinfra.suppression.codec import FIELDS

    rows = [_row(e) for e in entries]
    if fmt == "json":
        out.write(json.dumps(rows, indent=2) + "\n")
    elif fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=list(FIELDS), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    else:
        for row in rows:
            out.write(f"{row['address']:<40} {row['source']:<11} {row['scope']:<32} {row['reason']}\n")
        out.write(f"{len(rows)} suppressed\n")
    return len(rows)


def _read(source: str) -> str:
    if source == "-":
        return sys.stdin.read()
    try:
        return Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"import: cannot read {source!r} ({exc})") from None


def _parse_rows(text: str, fmt: str, source: str) -> list[tuple[int, dict[str, Any]]]:
    if fmt == "json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{source}: line {exc.lineno}: received invalid JSON ({exc.msg}), expected a list "
                             "of objects with at least `address`") from None
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise UsageError(f"{source}: received {type(data).__name__}, expected a JSON list of objects")
        return list(enumerate(data, start=1))
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or "address" not in reader.fieldnames:
        raise UsageError(f"{source}: received columns {reader.fieldnames or []}, expected a CSV header with "
                         "`address` (and optionally scope, reason, source, class, expires, ...)")
    return [(number, row) for number, row in enumerate(reader, start=2)]
