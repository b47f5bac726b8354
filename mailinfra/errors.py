"""One base exception per area; subclasses carry the data a one-line message needs."""

from __future__ import annotations


class MailinfraError(Exception):
    """Base of every error the toolkit reports to a user as one line (never a traceback)."""


class ConfigError(MailinfraError):
    """A stack file (or its Pulumi config) is not a valid topology.

    `where` is the file (with line when known), `key` the dotted key path, `received` what was
    there and `expected` what would be accepted.
    """

    def __init__(self, where: str, key: str, received: object, expected: str) -> None:
        self.where = where
        self.key = key
        self.received = received
        self.expected = expected
        super().__init__(self.line())

    def line(self) -> str:
        shown = _show(self.received)
        key = f"{self.key}: " if self.key else ""
        return f"{self.where}: {key}received {shown}, expected {self.expected}"


class ConfigErrors(MailinfraError):  # noqa: N818 -- a collection of ConfigError, named as such
    """Every problem found in one stack file; each is its own line."""

    def __init__(self, errors: list[ConfigError]) -> None:
        self.errors = errors
        super().__init__("\n".join(e.line() for e in errors))


class PlanError(MailinfraError):
    """The topology is valid config but cannot be turned into records (e.g. SPF over 10 lookups)."""


class UsageError(MailinfraError):
    """A command-line argument is wrong (stack not found, bad date, unwritable directory)."""


class Described(str):
    """A received value that is already a description (shown as is, not quoted)."""


def _show(value: object) -> str:
    if isinstance(value, Described):
        return str(value)
    text = repr(value) if isinstance(value, str) else str(value)
    if isinstance(value, dict | list):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
