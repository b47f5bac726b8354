"""The semantic difference between two plans of one stack: what a reviewer must look at (pure)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from mailinfra.audit import Finding
from mailinfra.dns.records import DnsRecord
from mailinfra.model.schema import WarmupSchedule
from mailinfra.plan.isolation import plan_capacity_moves
from mailinfra.plan.model import IpPlan, Plan, WarmupSpec
from mailinfra.review.files import HostFileDiff
from mailinfra.review.resources import ResourceChange
from mailinfra.warmup import plan_warmup


@dataclass(frozen=True, slots=True)
class RecordChange:
    key: str
    change: str  # added | removed | changed
    old: tuple[str, ...]
    new: tuple[str, ...]
    purpose: str
    old_ttl: int | None = None
    new_ttl: int | None = None


@dataclass(frozen=True, slots=True)
class NameChange:
    """A stream or pool added, removed, or renamed (the new name lists the old in `previous_names`)."""

    kind: str  # stream | pool
    name: str
    change: str  # added | removed | renamed
    detail: str


@dataclass(frozen=True, slots=True)
class IpChange:
    pool: str
    ip: str
    change: str  # added | removed | reallocated | moved
    detail: str
    destructive: bool
    risky: bool = False


@dataclass(frozen=True, slots=True)
class WarmupChange:
    ip: str
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class WarmupFinding:
    """A new IP whose warmup start is already past: it would begin mid-ramp with no reputation."""

    ip: str
    pool: str
    start: dt.date
    day: int
    daily_cap: int


@dataclass(frozen=True, slots=True)
class CapCut:
    """A sending IP that may send less on some day than before the change (risky: a receiver sees an
    IP's volume drop or stop, and mail planned for it waits or overflows; a tier re-gated to 0 is one)."""

    ip: str
    pool: str
    first_day: dt.date
    days: int  # how many days of the compared horizon are lower
    old_cap: int  # on first_day
    new_cap: int


# How far ahead caps are compared: every day until both sides have every IP warmed, at most this many
# (the limits calendar's own bound, mailinfra.mta.limits_calendar.MAX_CALENDAR_DAYS).
CAP_HORIZON_DAYS = 366


@dataclass(frozen=True, slots=True)
class KeyChange:
    domain: str
    selector: str
    change: str  # added | removed | state | rekeyed
    detail: str
    destructive: bool
    risky: bool = False


@dataclass(frozen=True, slots=True)
class IsolationChange:
    """An isolation added (mail moves off the isolated IPs) or lifted (it comes back), with today's volume."""

    target: str
    change: str  # added | lifted | changed
    detail: str
    messages_per_day: int
    destination: str


class ChangeClass(StrEnum):
    """How a reviewer must treat a change; `review --fail-on CLASS` fails on that class or a worse one."""

    DESTRUCTIVE = "destructive"  # throws away reputation or breaks signatures in flight
    RISKY = "risky"  # can hurt delivery while it is applied, or needs a step the change skips
    SAFE = "safe"


@dataclass
class PlanDiff:
    names: list[NameChange] = field(default_factory=list)
    isolations: list[IsolationChange] = field(default_factory=list)
    records: list[RecordChange] = field(default_factory=list)
    ips: list[IpChange] = field(default_factory=list)
    warmup: list[WarmupChange] = field(default_factory=list)
    warmup_findings: list[WarmupFinding] = field(default_factory=list)
    cap_cuts: list[CapCut] = field(default_factory=list)
    keys: list[KeyChange] = field(default_factory=list)
    findings_introduced: list[Finding] = field(default_factory=list)
    findings_fixed: list[Finding] = field(default_factory=list)
    host_files: list[HostFileDiff] = field(default_factory=list)
    resources: list[ResourceChange] = field(default_factory=list)
    resources_compared: bool = False  # False: skipped (--no-resources), the section says so

    @property
    def destructive(self) -> list[str]:
        """One line per change that throws away reputation or breaks signatures in flight."""
        lines = [f"IP {c.pool}/{c.ip} {c.change}: {c.detail}" for c in self.ips if c.destructive]
        lines += [f"DKIM {c.selector} ({c.domain}) {c.change}: {c.detail}" for c in self.keys if c.destructive]
        lines += [f"Pulumi resource `{c.type}` {c.name} {c.change}: it is protected (`pulumi up` stops until it is "
                  "unprotected, and deleting it cannot be undone)" for c in self.resources if c.destructive]
        return lines

    @property
    def risky(self) -> list[str]:
        """One line per change that is not destructive but can hurt delivery as applied."""
        lines = [f"IP {c.pool}/{c.ip} moved between hosts ({c.detail}): its private address leaves one ENI and "
                 "joins another in the same `up`; mail from it stops until both hosts are updated"
                 for c in self.ips if c.risky]
        lines += [f"IP {c.pool}/{c.ip} cap lowered on {c.days} day(s) from {c.first_day}: "
                  f"{c.old_cap}/day -> {c.new_cap}/day on {c.first_day}" for c in self.cap_cuts]
        lines += [f"DKIM {c.selector} ({c.domain}) {c.detail}" for c in self.keys if c.risky]
        lines += [f"Pulumi resource `{c.type}` {c.name}: the instance stops and starts (an outage of its host)"
                  for c in self.resources if c.stop_start and not c.destructive]
        lines += [f"Pulumi resource `{c.type}` {c.name}: {c.adopts}" for c in self.resources
                  if c.adopts and not c.destructive]
        return lines

    def classes(self) -> dict[ChangeClass, int]:
        """How many changes of each class: every change that is not destructive or risky is safe."""
        destructive, risky = len(self.destructive), len(self.risky)
        sections: tuple[list[Any], ...] = (self.names, self.isolations, self.records, self.ips, self.warmup,
                                            self.cap_cuts, self.keys, self.host_files, self.resources)
        total = sum(len(section) for section in sections)
        return {ChangeClass.DESTRUCTIVE: destructive, ChangeClass.RISKY: risky,
                ChangeClass.SAFE: max(total - destructive - risky, 0)}

    def fails(self, threshold: str) -> bool:
        """`--fail-on`: destructive fails on destructive changes; risky on risky or destructive; any on any."""
        if threshold == "never":
            return False
        if threshold == "any":
            return not self.empty
        if threshold == ChangeClass.RISKY:
            return bool(self.destructive or self.risky)
        return bool(self.destructive)

    @property
    def empty(self) -> bool:
        return not (self.names or self.isolations or self.records or self.ips or self.warmup or self.warmup_findings
                    or self.cap_cuts or self.keys or self.findings_introduced or self.findings_fixed or self.host_files
                    or self.resources)


def diff_plans(base: Plan | None, head: Plan, base_findings: list[Finding] | None = None,
               head_findings: list[Finding] | None = None,
               host_files: list[HostFileDiff] | None = None, *,
               schedules: tuple[Mapping[str, WarmupSchedule], Mapping[str, WarmupSchedule]] | None = None,
               ) -> PlanDiff:
    """`base` None: the stack is new at head (everything is added, nothing is destructive).

    `schedules`: the custom warmup schedules of base and head (the stack files' `warmup_schedules`);
    with them the sending IPs' caps are compared day by day (`cap_cuts`).
    """
    result = PlanDiff()
    result.names = _diff_names(base, head) if base else []
    result.isolations = _diff_isolations(base, head)
    if base is not None and schedules is not None:
        result.cap_cuts = find_cap_cuts(base, head, *schedules)
    result.records = _diff_records(base.records if base else (), head.records)
    result.ips = _diff_ips(base, head)
    result.warmup = _diff_warmup(base, head)
    result.warmup_findings = _find_mid_ramp_starts(base, head)
    result.host_files = list(host_files or [])
    result.keys = _diff_keys(base, head)
    old = {(f.code, f.where, f.why) for f in base_findings or []}
    new = {(f.code, f.where, f.why) for f in head_findings or []}
    result.findings_introduced = [f for f in head_findings or [] if (f.code, f.where, f.why) not in old]
    result.findings_fixed = [f for f in base_findings or [] if (f.code, f.where, f.why) not in new]
    return result


def _diff_records(base: tuple[DnsRecord, ...], head: tuple[DnsRecord, ...]) -> list[RecordChange]:
    old, new = {r.key: r for r in base}, {r.key: r for r in head}
    changes = []
    for key in sorted(old.keys() | new.keys()):
        before, after = old.get(key), new.get(key)
        if before is None and after is not None:
            changes.append(RecordChange(key, "added", (), after.values, after.purpose, None, after.ttl))
        elif after is None and before is not None:
            changes.append(RecordChange(key, "removed", before.values, (), before.purpose, before.ttl, None))
        elif before is not None and after is not None and (before.values, before.ttl) != (after.values, after.ttl):
            # A TTL change alone is a change too: it decides how long resolvers keep the old answer.
            changes.append(RecordChange(key, "changed", before.values, after.values, after.purpose,
                                        before.ttl, after.ttl))
    return changes


def _diff_names(base: Plan, head: Plan) -> list[NameChange]:
    changes: list[NameChange] = []
    kinds: tuple[tuple[str, dict[str, tuple[str, ...]], dict[str, tuple[str, ...]]], ...] = (
        ("stream", {s.name: s.previous_names for s in base.streams}, {s.name: s.previous_names for s in head.streams}),
        ("pool", {p.name: p.previous_names for p in base.pools}, {p.name: p.previous_names for p in head.pools}),
    )
    for kind, old, new in kinds:
        renamed = {prev: name for name, previous in new.items() for prev in previous if prev in old and prev not in new}
        for name in sorted(new.keys() - old.keys()):
            sources = [prev for prev, target in renamed.items() if target == name]
            if sources:
                changes.append(NameChange(kind, name, "renamed", f"from {', '.join(sources)} (previous_names: its "
                                          "resources keep their identity through aliases)"))
            else:
                changes.append(NameChange(kind, name, "added", ""))
        changes += [NameChange(kind, name, "removed", "") for name in sorted(old.keys() - new.keys())
                    if name not in renamed]
    return changes


def _has_reputation(ip: IpPlan, as_of: dt.date) -> bool:
    """Warmed, or warming since before the plan date: the address has a sending history receivers know."""
    return ip.warmup.warmed or (ip.warmup.start is not None and ip.warmup.start <= as_of)


def _diff_ips(base: Plan | None, head: Plan) -> list[IpChange]:
    old = {ip.name: ip for ip in base.ips} if base else {}
    new = {ip.name: ip for ip in head.ips}
    renamed = {prev: ip.name for ip in head.ips for prev in ip.previous_names}
    changes = []
    for name in sorted(old.keys() | new.keys()):
        before, after = old.get(name), new.get(name)
        if before is None and after is not None:
            if name in renamed.values() and any(p in old for p in after.previous_names):
                continue  # a rename with an alias: the same EIP under a new name
            changes.append(IpChange(after.pool, name, "added",
                                    f"new address on {after.host}, warmup {_warmup_text(after.warmup)}", False))
        elif after is None and before is not None:
            if name in renamed:
                continue
            warm = _has_reputation(before, base.as_of if base else head.as_of)
            # What `up` really does (components/ip_pool.py: protect + retain_on_delete): it stops at the
            # protected EIP; once unprotected, the EIP leaves the stack but stays allocated (and billed).
            history = ("a warmed address" if before.warmup.warmed else
                       f"an address warming since {before.warmup.start}" if warm else "an address")
            detail = (f"{history} leaves the stack: `pulumi up` fails on the protected EIP until it is unprotected "
                      "(`pulumi state unprotect`); then the EIP stays allocated in the account (retained, still "
                      "billed) but sends nothing and loses its A/PTR records"
                      + ("; its reputation fades without traffic" if warm else ""))
            changes.append(IpChange(before.pool, name, "removed", f"{before.address}: {detail}", warm))
        elif before is not None and after is not None:
            if (before.adopted and (before.address, before.allocation_id) != (after.address, after.allocation_id)) or (
                    before.adopted and not after.adopted):
                target = "a new allocation" if after.placeholder else after.address
                changes.append(IpChange(after.pool, name, "reallocated", f"{before.address} -> {target}",
                                        _has_reputation(before, base.as_of if base else head.as_of)))
            if before.pool != after.pool or before.host != after.host:
                changes.append(IpChange(after.pool, name, "moved",
                                        f"{before.pool}@{before.host} -> {after.pool}@{after.host}", False,
                                        risky=before.host != after.host))
    return changes


def _warmup_text(spec: WarmupSpec) -> str:
    return "warmed" if spec.warmed else f"{spec.schedule} from {spec.start}"


def _diff_warmup(base: Plan | None, head: Plan) -> list[WarmupChange]:
    if base is None:
        return []
    old = {ip.name: ip for ip in base.ips}
    return [WarmupChange(ip.name, _warmup_text(old[ip.name].warmup), _warmup_text(ip.warmup))
            for ip in head.ips if ip.name in old and old[ip.name].warmup != ip.warmup]


def _find_mid_ramp_starts(base: Plan | None, head: Plan) -> list[WarmupFinding]:
    """New IPs already past day 1 of their schedule on the plan date.

    A pool's warmup start is inherited by every IP added to it later; for an address with no sending
    history that means starting at a volume receivers throttle or block (a new IP ramps from its own
    day 1). Only new IPs: an existing IP past day 1 is simply warming. `base` None (a new stack) is
    checked too: its IPs are all new.
    """
    old = {ip.name for ip in base.ips} if base else set()
    limits = {lim.ip: lim for lim in head.warmup}
    found = []
    for ip in head.ips:
        if ip.name in old or old.intersection(ip.previous_names) or ip.warmup.warmed or ip.warmup.start is None:
            continue
        lim = limits.get(ip.name)
        if ip.warmup.start < head.as_of and lim is not None and lim.day is not None and lim.day > 1:
            found.append(WarmupFinding(ip.name, ip.pool, ip.warmup.start, lim.day, lim.daily_cap))
    return found


def find_cap_cuts(base: Plan, head: Plan, base_schedules: Mapping[str, WarmupSchedule],
                  head_schedules: Mapping[str, WarmupSchedule]) -> list[CapCut]:
    """IPs on both sides whose daily cap is lower at head on any day from the plan date on.

    Both sides are re-planned with `mailinfra.warmup.plan_warmup` for each day (the one place caps are
    computed), until every IP of both is warmed. Removed IPs are `IpChange`s, not cuts.
    """
    shared = {ip.name for ip in base.ips} & {ip.name for ip in head.ips}
    pools = {ip.name: ip.pool for ip in head.ips}
    lower: dict[str, list[tuple[dt.date, int, int]]] = {}
    for offset in range(CAP_HORIZON_DAYS):
        day = head.as_of + dt.timedelta(days=offset)
        old = {lim.ip: lim for lim in plan_warmup(base.ips, base.streams, base_schedules, day)}
        new = {lim.ip: lim for lim in plan_warmup(head.ips, head.streams, head_schedules, day)}
        for name in sorted(shared):
            if new[name].daily_cap < old[name].daily_cap:
                lower.setdefault(name, []).append((day, old[name].daily_cap, new[name].daily_cap))
        if all(lim.status == "warmed" for lim in (*old.values(), *new.values())):
            break
    return [CapCut(name, pools[name], cuts[0][0], len(cuts), cuts[0][1], cuts[0][2])
            for name, cuts in sorted(lower.items())]


def _diff_keys(base: Plan | None, head: Plan) -> list[KeyChange]:
    old = {(k.domain, k.selector): k for k in base.dkim_keys} if base else {}
    new = {(k.domain, k.selector): k for k in head.dkim_keys}
    changes = []
    for ident in sorted(old.keys() | new.keys()):
        before, after = old.get(ident), new.get(ident)
        domain, selector = ident
        if before is None and after is not None:
            # Staged rotation (M3AAWG DKIM key rotation): publish as pending, sign once the record resolves.
            # A new selector that signs at once signs before its record has propagated: receivers fail it.
            skips = base is not None and after.signing
            changes.append(KeyChange(domain, selector, "added",
                                     f"{after.algorithm}, {after.state}" + (
                                         ": added straight as a signing key, without the `pending` step (mail is "
                                         "signed before the record propagates; add it as `pending` first)"
                                         if skips else ""), False, risky=skips))
        elif after is None and before is not None:
            # Dropping a signing key at once breaks every message still in flight (M3AAWG: retire first).
            changes.append(KeyChange(domain, selector, "removed", f"was {before.state}", before.signing))
        elif before is not None and after is not None:
            if before.public_key != after.public_key and before.published and not before.placeholder:
                changes.append(KeyChange(domain, selector, "rekeyed",
                                         "a published selector gets a new key: signatures made with the old key "
                                         "fail until caches expire; rotate to a new selector instead", True))
            if before.state != after.state:
                changes.append(KeyChange(domain, selector, "state", f"{before.state} -> {after.state}", False))
    return changes


def _diff_isolations(base: Plan | None, head: Plan) -> list[IsolationChange]:
    """What each added or lifted isolation moves today (head's limits: both sides are planned on one date)."""
    old = {i.target: i for i in base.isolations} if base else {}
    new = {i.target: i for i in head.isolations}
    moves = {m.isolation.target: m for m in plan_capacity_moves(tuple(old.values()) + tuple(new.values()),
                                                                head.warmup)}
    changes = []
    for target in sorted(old.keys() | new.keys()):
        before, after = old.get(target), new.get(target)
        move = moves[target]
        if after is not None and before is None:
            headroom = ("" if move.destination_headroom is None else
                        f"; they have {move.destination_headroom:,}/day of their own caps for it, so up to "
                        f"{max(move.messages_per_day - move.destination_headroom, 0):,}/day wait in the queue")
            changes.append(IsolationChange(target, "added", after.describe() + headroom, move.messages_per_day,
                                           move.destination))
        elif before is not None and after is None:
            changes.append(IsolationChange(target, "lifted", f"{before.describe()}: back in rotation",
                                           move.messages_per_day, f"pool {before.pool}"))
        elif before is not None and after is not None and before != after:
            changes.append(IsolationChange(target, "changed", f"{before.describe()} -> {after.describe()}",
                                           move.messages_per_day, move.destination))
    return changes
