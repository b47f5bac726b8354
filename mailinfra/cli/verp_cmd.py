"""`mailinfra verp STACK --recipient R --stream S`: the signed return path (and header) for one message.

The secret is read from MAILINFRA_VERP_SECRET (the text of the Pulumi secret mailinfra:verp_secret) or
--secret-file, and never printed. The sending application does the same with mailinfra.suppression.verp.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
from pathlib import Path
from typing import Any

from mailinfra.cli.options import add_stack_argument, as_of_date
from mailinfra.errors import UsageError

SECRET_ENV = "MAILINFRA_VERP_SECRET"  # noqa: S105 -- the variable's name, not a secret


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "verp", help="print the signed VERP return path (and X-Mailinfra-Id header) for one recipient")
    add_stack_argument(parser)
    parser.add_argument("--recipient", required=True, metavar="ADDRESS")
    parser.add_argument("--stream", required=True, metavar="STREAM", help="the stack's stream key")
    parser.add_argument("--day", type=as_of_date, default=None, metavar="DATE", help="the sending day; default today")
    parser.add_argument("--secret-file", type=Path, default=None, metavar="PATH",
                        help=f"file holding the VERP secret (default: ${SECRET_ENV})")
    parser.add_argument("--header", action="store_true", help="also print the X-Mailinfra-Id header line")
    return parser


def read_secret(secret_file: Path | None) -> bytes:
    """The VERP secret from --secret-file or the environment; one line naming where it was looked for."""
    if secret_file is not None:
        try:
            value = secret_file.read_bytes().strip()
        except OSError as exc:
            raise UsageError(f"--secret-file: cannot read {str(secret_file)!r} ({exc.strerror})") from None
        where = f"--secret-file {secret_file}"
    else:
        value = os.environ.get(SECRET_ENV, "").strip().encode()
        where = f"${SECRET_ENV}"
    if len(value) < 16:
        # The length only, never the value: the secret must not reach a terminal or a log.
        raise UsageError(f"{where}: received a secret of {len(value)} bytes, expected at least 16 "
                         "(the Pulumi secret mailinfra:verp_secret)")
    return value


def run(args: argparse.Namespace) -> int:
    from mailinfra.model.load import load_stack
    from mailinfra.model.rules import return_path_domain
    from mailinfra.suppression import verp
    from mailinfra.suppression.address import BadAddress

    stack = load_stack(args.stack)
    stream = stack.config.streams.get(args.stream)
    if stream is None:
        raise UsageError(f"--stream: received {args.stream!r}, expected one of the stack's streams: "
                         f"{', '.join(sorted(stack.config.streams))}")
    secret = read_secret(args.secret_file)
    day = args.day or dt.datetime.now(dt.UTC).date()
    try:
        print(verp.build_return_path(args.recipient, args.stream, return_path_domain(stream), secret, day=day))
        if args.header:
            print(f"{verp.HEADER}: {verp.build_header(args.recipient, args.stream, secret, day=day)}")
    except BadAddress as exc:
        raise UsageError(f"--recipient: {exc}") from None
    return 0
