"""Offline validator for rendered PowerMTA configs (PowerMTA itself cannot be installed to check them).

Checks what a typo or a planning bug would break: blocks open and close in order and nest where the User's
Guide allows; only documented directives appear (/work/shared/notes/mta.md lists them; web pages invent
others such as `bind-to-source-ip`); every referenced virtual-mta, pool and pattern list exists; every
smtp-source-host address belongs to the host and is used by one virtual-mta only. Returns findings, never raises.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

# Block -> the blocks it may appear in (None = top level).
BLOCKS: dict[str, tuple[str | None, ...]] = {
    "source": (None,),
    "virtual-mta": (None,),
    "virtual-mta-pool": (None,),
    "domain": (None, "virtual-mta"),
    "smtp-pattern-list": (None,),
    "acct-file": (None,),
    "bounce-processor": (None,),
    "feedback-loop-processor": (None,),
    "address-list": ("bounce-processor", "feedback-loop-processor"),
}

# Directive -> the blocks it may appear in (None = top level).
DIRECTIVES: dict[str, tuple[str | None, ...]] = {
    "always-allow-relaying": ("source",),
    "process-x-virtual-mta": ("source",),
    "default-virtual-mta": ("source",),
    "smtp-source-host": ("virtual-mta",),
    "domain-key": (None, "virtual-mta"),
    "max-msg-rate": ("domain",),
    "max-smtp-out": ("domain",),
    "max-msg-per-connection": ("domain",),
    "retry-after": ("domain",),
    "backoff-max-msg-rate": ("domain",),
    "backoff-retry-after": ("domain",),
    "backoff-to-normal-after": ("domain",),
    "smtp-pattern-list": ("domain",),
    "backoff-reroute-to-virtual-mta": ("domain",),
    "smtp-hosts": ("domain",),
    "use-starttls": ("domain",),
    "require-starttls": ("domain",),
    "postmaster": (None,),
    "auth-username": ("domain",),
    "auth-password": ("domain",),
    "dkim-sign": ("domain",),
    "mx-rollup": ("domain",),
    "smtp-421-means-mx-unavailable": ("domain",),
    "max-cold-virtual-mta-msg": ("domain",),
    "disable-source-ip": (None,),
    "smtp-listener": (None,),
    "virtual-mta": ("virtual-mta-pool",),
    "reply": ("smtp-pattern-list",),
    "records": ("acct-file",),
    "domain": ("address-list",),
    "address": ("address-list",),
}

_OPEN = re.compile(r"^<([a-z-]+)(?:\s+([^>]*))?>$")
_CLOSE = re.compile(r"^</([a-z-]+)>$")


@dataclass(frozen=True, slots=True)
class Finding:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass
class _Parsed:
    findings: list[Finding]
    defined: dict[str, dict[str, int]]  # block kind -> name -> line
    references: list[tuple[int, str, str]]  # (line, kinds "a|b", name)
    sources: list[tuple[int, str, str]]  # (line, address, virtual-mta)
    # virtual-mtas that relay everything to named smtp-hosts (a hop to our own route host): they send to no
    # receiver's MX, so sharing an IP with that IP's own virtual-mta splits none of its receiver limits.
    relay_hops: set[str] = field(default_factory=set)


def check_powermta(text: str, host_addresses: Iterable[str]) -> list[Finding]:
    """Every problem of a PowerMTA config; `host_addresses` are the IPs the host carries."""
    parsed = _parse(text)
    findings = parsed.findings
    for line, kinds, name in parsed.references:
        if not any(name in parsed.defined.get(kind, {}) for kind in kinds.split("|")):
            findings.append(Finding(line, f"{kinds.replace('|', ' or ')} {name!r} is referenced but not defined"))
    allowed = set(host_addresses)
    seen: dict[str, str] = {}
    for line, address, vmta in parsed.sources:
        if address not in allowed:
            findings.append(Finding(line, f"smtp-source-host {address} is not an address of this host"))
        if address in seen and seen[address] != vmta and vmta not in parsed.relay_hops:
            findings.append(Finding(line, f"smtp-source-host {address} is already used by virtual-mta {seen[address]}"))
        seen.setdefault(address, vmta)
    return sorted(findings, key=lambda f: f.line)


def _parse(text: str) -> _Parsed:
    result = _Parsed([], {}, [], [])
    stack: list[tuple[str, str, int]] = []  # (block, argument, line)
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parent = stack[-1][0] if stack else None
        if close := _CLOSE.match(line):
            name = close.group(1)
            if not stack:
                result.findings.append(Finding(number, f"</{name}> closes nothing"))
            elif stack[-1][0] != name:
                block, _, opened_on = stack[-1]
                result.findings.append(Finding(number, f"</{name}> closes <{block}> opened on line {opened_on}"))
                stack.pop()
            else:
                stack.pop()
            continue
        if opened := _OPEN.match(line):
            _open_block(result, opened.group(1), (opened.group(2) or "").strip(), parent, number)
            stack.append((opened.group(1), (opened.group(2) or "").strip(), number))
            continue
        if line.startswith("<"):
            result.findings.append(Finding(number, f"malformed block tag {line!r}"))
            continue
        _directive(result, line, parent, stack[-1][1] if stack else "", number)
        if line.startswith("smtp-hosts ") and stack and stack[0][0] == "virtual-mta":
            result.relay_hops.add(stack[0][1])
    result.findings.extend(Finding(line, f"<{block}> is never closed") for block, _, line in stack)
    return result


def _open_block(result: _Parsed, block: str, argument: str, parent: str | None, number: int) -> None:
    if block not in BLOCKS:
        result.findings.append(Finding(number, f"unknown block <{block}>"))
        return
    if parent not in BLOCKS[block]:
        where = f"inside <{parent}>" if parent else "at top level"
        result.findings.append(Finding(number, f"<{block}> is not allowed {where}"))
    if block in ("virtual-mta", "virtual-mta-pool", "smtp-pattern-list"):
        names = result.defined.setdefault(block, {})
        if argument in names:
            first = names[argument]
            result.findings.append(Finding(number, f"<{block} {argument}> is already defined on line {first}"))
        names.setdefault(argument, number)


def _directive(result: _Parsed, line: str, parent: str | None, argument: str, number: int) -> None:
    name, _, value = line.partition(" ")
    value = value.strip()
    if name not in DIRECTIVES:
        result.findings.append(Finding(number, f"unknown directive {name!r} (not in the PowerMTA User's Guide)"))
        return
    if parent not in DIRECTIVES[name]:
        where = f"inside <{parent}>" if parent else "at top level"
        result.findings.append(Finding(number, f"{name} is not allowed {where}"))
    if not value:
        result.findings.append(Finding(number, f"{name} needs a value"))
        return
    if name == "default-virtual-mta":
        result.references.append((number, "virtual-mta|virtual-mta-pool", value))
    elif name in ("backoff-reroute-to-virtual-mta",) or (name == "virtual-mta" and parent == "virtual-mta-pool"):
        result.references.append((number, "virtual-mta", value))
    elif name == "smtp-pattern-list":
        result.references.append((number, "smtp-pattern-list", value))
    elif name == "smtp-source-host":
        result.sources.append((number, value.split()[0], argument))
