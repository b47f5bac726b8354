"""Argument types shared by commands: each rejects bad input with a one-line message."""

from __future__ import annotations

import argparse
import datetime as dt

from mailinfra.model.load import Stack
from mailinfra.plan.dates import NAMED_DAYS, first_day

AS_OF_HELP = ("plan as of this day (warmup day, zone serial): YYYY-MM-DD, `today`, "
              + ", ".join(f"`{name}` (first day {what})" for name, what in NAMED_DAYS.items())
              + "; default today")


def as_of_date(text: str) -> dt.date:
    """--as-of DATE: an ISO date; `today` is accepted for scripts."""
    if text == "today":
        return dt.date.today()
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"received {text!r}, expected a date YYYY-MM-DD") from None


def as_of_text(text: str) -> str:
    """--as-of as typed: checked at parse time, resolved once the stack is loaded (named days need it)."""
    if text in NAMED_DAYS:
        return text
    try:
        as_of_date(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"received {text!r}, expected a date YYYY-MM-DD, `today` or one of {', '.join(NAMED_DAYS)}") from None
    return text


def resolve_as_of(stack: Stack, text: str | None) -> dt.date | None:
    """The date an --as-of value names for this stack (None: the plan's default, today)."""
    if text is None:
        return None
    if text in NAMED_DAYS:
        return first_day(stack, text)
    return as_of_date(text)


def add_stack_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("stack", metavar="STACK",
                        help="stack name (Pulumi.<STACK>.yaml in the project's stackConfigDir, found from the "
                             "current directory) or a path to a stack file")


def add_as_of_argument(parser: argparse.ArgumentParser, default: str | None = None) -> None:
    parser.add_argument("--as-of", type=as_of_text, default=default, metavar="DATE", help=AS_OF_HELP)
