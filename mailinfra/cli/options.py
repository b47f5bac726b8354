"""Argument types shared by commands: each rejects bad input with a one-line message."""

from __future__ import annotations

import argparse
import datetime as dt


def as_of_date(text: str) -> dt.date:
    """--as-of DATE: an ISO date; `today` is accepted for scripts."""
    if text == "today":
        return dt.date.today()
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"received {text!r}, expected a date YYYY-MM-DD") from None


def add_stack_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("stack", metavar="STACK",
                        help="stack name (stacks/Pulumi.<STACK>.yaml) or a path to a stack file")


def add_as_of_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--as-of", type=as_of_date, default=None, metavar="DATE",
                        help="plan as of this date (warmup day, zone serial); default today")
