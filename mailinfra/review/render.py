"""The review diff as Markdown fit for a PR comment (GitHub renders the Mermaid block)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from mailinfra.plan.model import Plan
from mailinfra.review.diff import PlanDiff
from mailinfra.review.mermaid import render_mermaid

_KEY = re.compile(r"p=([A-Za-z0-9+/=]{48,})")


def render_review_diff(stack: str, base_ref: str, head: Plan, diff: PlanDiff, *, base_missing: bool = False) -> str:
    out = [f"## mailinfra review: `{stack}` against `{base_ref}`", ""]
    if base_missing:
        out += [f"The stack file does not exist at `{base_ref}`: everything below is new.", ""]
    if diff.destructive:
        out += ["### ⛔ Destructive changes", ""]
        out += [f"- {line}" for line in diff.destructive] + [""]
    if diff.risky:
        out += ["### ⚠️ Risky changes (a sending IP's cap is lowered)", ""]
        out += [f"- {line}" for line in diff.risky] + [""]
    if diff.empty:
        checked = "Pulumi resources, " if diff.resources_compared else ""
        out += [f"No changes to DNS records, IPs, warmup, DKIM keys, {checked}audit findings or rendered MTA "
                "files.", ""]
    if diff.records:
        out += [f"### DNS records ({_count(diff.records, 'added')} added, {_count(diff.records, 'removed')} removed, "
                f"{_count(diff.records, 'changed')} changed)", "",
                "| change | record | old | new | purpose |", "|---|---|---|---|---|"]
        out += [f"| {c.change} | `{c.key}` | {_values(c.old)} | {_values(c.new)} | {_cell(c.purpose)} |"
                for c in diff.records]
        out.append("")
    if diff.ips:
        out += ["### Sending IPs", "", "| pool | IP | change | detail |", "|---|---|---|---|"]
        out += [f"| {c.pool} | {c.ip} | {_mark(c.change, c.destructive)} | {_cell(c.detail)} |" for c in diff.ips]
        out.append("")
    if diff.warmup:
        out += ["### Warmup", "", "| IP | before | after |", "|---|---|---|"]
        out += [f"| {c.ip} | {c.old} | {c.new} |" for c in diff.warmup] + [""]
    if diff.warmup_findings:
        out += ["### ⚠️ Warmup findings", ""]
        out += [f"- new IP `{f.pool}/{f.ip}` inherits warmup start {f.start}, already past: it would start "
                f"mid-ramp on day {f.day} ({f.daily_cap:,} messages/day) with no reputation. Give it its own "
                "`warmup.start` (today or later)." for f in diff.warmup_findings]
        out.append("")
    if diff.keys:
        out += ["### DKIM keys", "", "| domain | selector | change | detail |", "|---|---|---|---|"]
        out += [f"| {c.domain} | {c.selector} | {_mark(c.change, c.destructive)} | {_cell(c.detail)} |"
                for c in diff.keys]
        out.append("")
    out += _render_resources(diff)
    if diff.findings_introduced or diff.findings_fixed:
        out += ["### Audit", ""]
        out += [f"- introduced **{f.severity}** `{f.code}` at `{f.where}`: {f.why}" for f in diff.findings_introduced]
        out += [f"- fixed `{f.code}` at `{f.where}`" for f in diff.findings_fixed]
        out.append("")
    if diff.host_files:
        out += [f"### Rendered MTA files ({len(diff.host_files)} changed, secrets redacted)", ""]
        for host in sorted({f.host for f in diff.host_files}):
            files = [f for f in diff.host_files if f.host == host]
            names = ", ".join(f"{f.path} ({f.change})" for f in files)
            # A four-backtick fence: a config line holding ``` cannot close it.
            out += [f"<details><summary><code>{host}</code>: {names}</summary>", "", "````diff",
                    "".join(f.diff for f in files).rstrip("\n"), "````", "", "</details>", ""]
    out += ["### Topology", "", render_mermaid(head)]
    return "\n".join(out)


def _render_resources(diff: PlanDiff) -> list[str]:
    if not diff.resources_compared:
        return ["### Pulumi resources", "", "Not compared (`--no-resources`).", ""]
    if not diff.resources:
        return []
    counts = ", ".join(f"{_count(diff.resources, kind)} {kind}" for kind in ("added", "replaced", "updated",
                                                                              "renamed", "removed"))
    out = [f"### Pulumi resources ({counts})", "",
           "From the program under Pulumi's mock runtime; `pulumi preview` remains the authority. "
           "Replacements follow the provider schemas' ForceNew inputs.", "",
           "| change | type | name | inputs (old → new) |", "|---|---|---|---|"]
    for c in diff.resources:
        detail = [f"renamed from {c.old_name} (alias)"] if c.old_name else []
        detail += [f"{'**' if i.replaces else ''}{i.key}{' (forces replacement)**' if i.replaces else ''}: "
                   f"`{_short(i.old)}` → `{_short(i.new)}`" for i in c.inputs]
        if c.stop_start:
            detail.append("the instance stops and starts")
        if c.adopts:
            detail.append(f"**{c.adopts}**")
        if c.protect and c.change in {"added", "removed", "replaced"}:
            detail.append("protected")
        out.append(f"| {_mark(c.change, c.destructive)} | `{c.type}` | {c.name} | {_cell('<br/>'.join(detail))} |")
    return [*out, ""]


def _mark(change: str, destructive: bool) -> str:
    return f"**{change}** ⛔" if destructive else change


def _count(changes: Sequence[object], kind: str) -> int:
    return sum(1 for c in changes if getattr(c, "change", None) == kind)


def _values(values: tuple[str, ...]) -> str:
    if not values:
        return "—"
    return "<br/>".join(f"`{_short(v)}`" for v in values)


def _short(value: str) -> str:
    # Only key material is abbreviated (its start and end tell two keys apart); a policy is shown whole.
    text = _KEY.sub(lambda m: f"p={m.group(1)[:24]}…{m.group(1)[-12:]}", value)
    return text.replace("|", "\\|").replace("`", "'")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
