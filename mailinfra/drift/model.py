"""What a drift check reports: one result per planned thing, and the servers it could not ask."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Status(StrEnum):
    OK = "ok"
    MISSING = "missing"  # planned, absent from the live world
    CHANGED = "changed"  # present, with a different meaning
    EXTRA = "extra"  # present with everything planned plus more (a second SPF, a rogue MX)
    UNKNOWN = "unknown"  # could not be checked (timeout, SERVFAIL, API error): never "ok"


DRIFT = frozenset({Status.MISSING, Status.CHANGED, Status.EXTRA})


@dataclass(frozen=True, slots=True)
class DriftResult:
    source: str  # dns | aws | pulumi
    key: str  # TYPE:name for DNS, eip:<ip name> / instance:<host> / sg:<host> for AWS
    status: Status
    expected: str = ""
    actual: str = ""
    detail: str = ""
    purpose: str = ""

    def as_dict(self) -> dict[str, str]:
        return {
            "source": self.source,
            "key": self.key,
            "status": str(self.status),
            "expected": self.expected,
            "actual": self.actual,
            "detail": self.detail,
            "purpose": self.purpose,
        }


@dataclass
class DriftReport:
    stack: str
    results: list[DriftResult] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # "could not check" lines naming the server or API

    @property
    def drifted(self) -> list[DriftResult]:
        return [r for r in self.results if r.status in DRIFT]

    @property
    def unknown(self) -> list[DriftResult]:
        return [r for r in self.results if r.status is Status.UNKNOWN]

    def exit_code(self) -> int:
        """0 no drift; 1 drift found (even if some checks were unknown: what was found is certain);
        2 nothing drifted but something could not be checked."""
        if self.drifted:
            return 1
        if self.unknown or self.failures:
            return 2
        return 0
