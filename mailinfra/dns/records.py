"""The typed DNS record every consumer (zones, Pulumi, drift, review, lab) reads from the plan."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class RecordType(StrEnum):
    A = "A"
    MX = "MX"
    TXT = "TXT"
    PTR = "PTR"
    CNAME = "CNAME"
    NS = "NS"


class Requirement(StrEnum):
    """How badly a receiver needs the record: a missing `required` record costs delivery."""

    REQUIRED = "required"
    RECOMMENDED = "recommended"


@dataclass(frozen=True, slots=True)
class DnsRecord:
    """One RRset: a name, a type and its values, with the reason it exists.

    Names are absolute, lower-case and written without the trailing dot. TXT values hold the
    logical text (unsplit); `mailinfra.dns.txt` splits it into <= 255-byte strings for every
    consumer. MX values are `"<preference> <target>"`.
    """

    name: str
    type: RecordType
    values: tuple[str, ...]
    ttl: int
    zone: str
    purpose: str
    rule: str
    requirement: Requirement = Requirement.REQUIRED
    stream: str | None = None
    placeholder: bool = False
    tags: tuple[str, ...] = field(default=())

    @property
    def key(self) -> str:
        """Stable identity of the RRset across plans (what drift and review compare by)."""
        return f"{self.type}:{self.name}"

    def relative_name(self) -> str:
        """The owner name relative to its zone (`@` for the apex)."""
        if self.name == self.zone:
            return "@"
        return self.name.removesuffix("." + self.zone)
