"""Audit rules about what the topology costs against what renting would (registered with the checklist)."""

from __future__ import annotations

from collections.abc import Iterator

from mailinfra.audit.findings import Issue, Severity, Subject
from mailinfra.audit.rules import rule
from mailinfra.cost.compare import OWN_VS_RENT_MIN_MESSAGES


@rule(
    "own-vs-rent",
    "the stated volume justifies owning the infrastructure",
    "rule of thumb (the seed): below ~2 M messages a month a well-configured ESP serves better than owned "
    "infrastructure (fixed cost, warmup, operations); `mailinfra cost` solves the break-even for this topology",
)
def check_own_vs_rent(subject: Subject) -> Iterator[Issue]:
    stated = subject.config.volume.messages_per_month
    if stated is None or stated >= OWN_VS_RENT_MIN_MESSAGES:
        return
    yield Issue(
        Severity.INFO,
        "volume.messages_per_month",
        f"the stated volume, {stated:,} messages a month, is below ~{OWN_VS_RENT_MIN_MESSAGES:,}: at that volume a "
        "well-configured ESP (or SES alone) serves better than owned hosts and warmed IPs",
        "compare with `mailinfra cost STACK` (own vs rent, break-even volume) and rent until the volume is there",
    )
