"""The deliverability audit: the checklist as typed findings over the plan (pure, no network)."""

from __future__ import annotations

from collections.abc import Iterable

from mailinfra.audit import cost_rules  # noqa: F401 -- importing registers the own-vs-rent rule
from mailinfra.audit.findings import Finding, Issue, Rule, Severity, sort_findings
from mailinfra.audit.rules import RULES
from mailinfra.model.schema import StackConfig
from mailinfra.plan.model import Plan


def audit_plan(plan: Plan, config: StackConfig, rules: Iterable[Rule] = RULES) -> list[Finding]:
    """Run every rule; findings sorted errors first, then by code and place."""
    return sort_findings(f for r in rules for f in r.run(plan, config))


def has_errors(findings: Iterable[Finding]) -> bool:
    return any(f.severity is Severity.ERROR for f in findings)


__all__ = ["RULES", "Finding", "Issue", "Rule", "Severity", "audit_plan", "has_errors"]
