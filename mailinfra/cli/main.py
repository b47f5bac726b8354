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
    "isolate": "mailinfra.cli.isolate_cmd",
    "cost": "mailinfra.cli.cost_cmd",
    "status": "mailinfra.cli.status_cmd",
}
COMMAND_MODULES = list(dict.fromkeys(COMMANDS.values()))

DESCRIPTION = """\
mailinfra: a high-volume email sending platform as code (Pulumi). Per stream: a sending subdomain and
its own IP pool, SPF/DKIM/DMARC, warmup compiled into MTA limits, a secondary route."""
EPILOG = """\
Start here:
  mailinfra validate dev         check stacks/Pulumi.dev.yaml
  mailinfra preview dev          plan it offline: build/dev/{plan.json,review.md,dns/,hosts/}
  mailinfra review dev --base origin/main   what a pull request changes
  mailinfra COMMAND --help       one command's options

Exit status: 0 ok, 1 the input or the world is not as it should be, 2 the command was used wrong."""


def installed_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mailinfra")
    except PackageNotFoundError:
        return "(not installed)"


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the argument (and exit 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; with `command`, only that command's module is imported (all of them otherwise)."""
    parser = OneLineParser(prog="mailinfra", description=DESCRIPTION, epilog=EPILOG,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"mailinfra {installed_version()}")
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
    except Exception as exc:  # every failure becomes one line and an exit status
        if os.environ.get("MAILINFRA_DEBUG") == "1" and not isinstance(exc, MailinfraError | BrokenPipeError):
            raise
        return report_failure(exc, args.command)
    except KeyboardInterrupt:
        print("mailinfra: interrupted", file=sys.stderr)
        return 130
    return code


def report_failure(exc: Exception, command: str) -> int:
    """One line per problem on stderr; the exit status says whose fault it is (see the module docstring)."""
    if isinstance(exc, ConfigErrors):
        for error in exc.errors:
            print(error.line(), file=sys.stderr)
        return 1
    if isinstance(exc, UsageError):
        print(f"mailinfra {command}: {exc}", file=sys.stderr)
        return 2
    if isinstance(exc, MailinfraError):
        print(f"mailinfra {command}: {exc}", file=sys.stderr)
        return 1
    if isinstance(exc, BrokenPipeError):
        # The reader went away (`mailinfra preview dev | head -1`): stop quietly, as any Unix filter does on
        # SIGPIPE (exit 128 + 13). stdout goes to /dev/null so the interpreter's final flush cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    # A bug, not bad input: still one line, with the way to get the full trace.
    print(f"mailinfra {command}: internal error {exc.__class__.__name__}: {exc} "
          "(rerun with MAILINFRA_DEBUG=1 for the traceback and report it)", file=sys.stderr)
    return 70


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
