"""What an audit reports: typed findings, each with where it is, why it matters and how to fix it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum

from mailinfra.model.schema import StackConfig
from mailinfra.plan.model import Plan


class Severity(StrEnum):
    """`error` fails the build; `warning` needs a human decision; `info` is a note for review."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


SEVERITY_ORDER = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}


@dataclass(frozen=True, slots=True, order=True)
class Finding:
    code: str
    severity: Severity
    where: str  # a record key (TYPE:name) or a dotted config path (streams.marketing.route)
    why: str
    fix: str

    def as_dict(self) -> dict[str, str]:
        return {
            "code": self.code,
            "severity": str(self.severity),
            "where": self.where,
            "why": self.why,
            "fix": self.fix,
        }


@dataclass(frozen=True, slots=True)
class Issue:
    """What a rule function yields; the registry stamps the rule's code on it (one code per rule)."""

    severity: Severity
    where: str
    why: str
    fix: str


@dataclass(frozen=True, slots=True)
class Subject:
    """What every rule reads: the plan, and the stack config for what the plan does not carry."""

    plan: Plan
    config: StackConfig


RuleFn = Callable[[Subject], Iterable[Issue]]


@dataclass(frozen=True, slots=True)
class Rule:
    """One checklist item: a code, what it checks and the rule (RFC / provider requirement) behind it."""

    code: str
    title: str
    basis: str
    check: RuleFn

    def run(self, plan: Plan, config: StackConfig) -> Iterator[Finding]:
        for issue in self.check(Subject(plan, config)):
            yield Finding(self.code, issue.severity, issue.where, issue.why, issue.fix)


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (SEVERITY_ORDER[f.severity], f.code, f.where))
