"""`mailinfra` command line: parse arguments, call one command, print errors as single lines.

No command lets a traceback reach the user: every MailinfraError is one line per problem on
stderr; exit 1 means "the input or the world is not as it should be", 2 "the command was used wrong".
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from mailinfra.errors import ConfigErrors, MailinfraError, UsageError

# command -> the module that registers it with add_parser(subparsers) and handles it with run(args).
# Only the named command's module is imported: `mailinfra preview` does not pay for drift or the lab.
COMMANDS = {
    "validate": "mailinfra.cli.plan_cmds",
    "preview": "mailinfra.cli.plan_cmds",
    "dkim": "mailinfra.cli.dkim_cmd",
    "render": "mailinfra.cli.render_cmd",
    "warmup": "mailinfra.cli.warmup_cmd",
    "audit": "mailinfra.cli.audit_cmd",
    "suppress": "mailinfra.cli.suppress_cmd",
    "verp": "mailinfra.cli.verp_cmd",
    "review": "mailinfra.cli.review_cmd",
    "drift": "mailinfra.cli.drift_cmd",
    "lab": "mailinfra.cli.lab_cmd",
}
COMMAND_MODULES = list(dict.fromkeys(COMMANDS.values()))


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the argument (and exit 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; with `command`, only that command's module is imported (all of them otherwise)."""
    parser = OneLineParser(prog="mailinfra", description=__doc__.splitlines()[0] if __doc__ else None)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    subparsers.required = True
    wanted = [COMMANDS[command]] if command in COMMANDS else COMMAND_MODULES
    for name in wanted:
        module = importlib.import_module(name)
        sub = module.add_parser(subparsers)
        if sub is not None and hasattr(module, "run") and sub.get_default("handler") is None:
            sub.set_defaults(handler=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(arguments[0] if arguments else None)
    args = parser.parse_args(arguments)
    try:
        code: int = args.handler(args)
    except ConfigErrors as exc:
        for error in exc.errors:
            print(error.line(), file=sys.stderr)
        return 1
    except UsageError as exc:
        print(f"mailinfra {args.command}: {exc}", file=sys.stderr)
        return 2
    except MailinfraError as exc:
        print(f"mailinfra {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("mailinfra: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if os.environ.get("MAILINFRA_DEBUG") == "1":
            raise
        # A bug, not bad input: still one line, with the way to get the full trace.
        print(f"mailinfra {args.command}: internal error {exc.__class__.__name__}: {exc} "
              "(rerun with MAILINFRA_DEBUG=1 for the traceback and report it)", file=sys.stderr)
        return 70
    return code


def entry() -> None:
    code = main()
    if "pulumi" in sys.modules:
        # After a mock run of the Pulumi program the interpreter's teardown (freeing the SDK's and the
        # providers' module graphs) takes ~0.7 s of a 4 s `preview prod`: nothing is left to clean up
        # (every file is closed, no child process or thread remains), so leave at once.
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    entry()
