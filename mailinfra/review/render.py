"""The review diff as Markdown fit for a PR comment (GitHub renders the Mermaid block)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from mailinfra.markdown import abbreviate_keys, code_span, escape_markdown
from mailinfra.plan.model import Plan
from mailinfra.review.diff import PlanDiff, RecordChange
from mailinfra.review.mermaid import render_mermaid

# GitHub refuses a comment body over 65,536 characters; what is appended after the review (the audit) is
# subtracted by the caller (`review --append`).
GITHUB_COMMENT_LIMIT = 65_536


def render_review_diff(stack: str, base_ref: str, head: Plan, diff: PlanDiff, *, base_missing: bool = False,
                       base: Plan | None = None, max_chars: int = GITHUB_COMMENT_LIMIT,
                       artifact: str = "the preview artifact") -> str:
    """The comment: summary first, then each section; details fold (and say so) until it fits `max_chars`."""
    head_part = _render_summary(stack, base_ref, diff, base_missing)
    topology = ["### Topology", "", render_mermaid(head, base)]
    for level in range(len(FOLDS) + 1):
        body = _render_body(diff, folded=FOLDS[:level], artifact=artifact)
        text = "\n".join([*head_part, *body, *topology])
        if len(text) <= max_chars:
            return text
        if level == len(FOLDS):
            break
    note = (f"\n\n_Cut at {max_chars:,} characters (GitHub's comment limit): the full review is in {artifact}._\n")
    return text[: max_chars - len(note)] + note


# What folds first when the comment is too long: the least-read, longest sections.
FOLDS = ("host_files", "resources", "records")


def _render_summary(stack: str, base_ref: str, diff: PlanDiff, base_missing: bool) -> list[str]:
    out = [f"## mailinfra review: `{stack}` against `{base_ref}`", ""]
    if base_missing:
        out += [f"The stack file does not exist at `{base_ref}`: everything below is new.", ""]
    classes = diff.classes()
    out += ["**" + " · ".join(f"{count} {cls}" for cls, count in classes.items()) + "**"
            + " (`mailinfra review --fail-on destructive|risky|any`)", ""]
    if diff.destructive:
        out += ["### ⛔ Destructive changes", ""]
        out += [f"- {escape_markdown(line)}" for line in diff.destructive] + [""]
    if diff.risky:
        out += ["### ⚠️ Risky changes", ""]
        out += [f"- {escape_markdown(line)}" for line in diff.risky] + [""]
    if diff.empty:
        checked = "Pulumi resources, " if diff.resources_compared else ""
        out += [f"No changes to streams, pools, DNS records (values and TTLs), IPs, warmup, DKIM keys, {checked}"
                "audit findings or rendered MTA files.", ""]
    return out


def _render_body(diff: PlanDiff, *, folded: Sequence[str], artifact: str) -> list[str]:
    return [*_isolations_section(diff), *_names_section(diff),
            *_records_section(diff, "records" in folded, artifact), *_ips_section(diff),
            *_warmup_section(diff), *_keys_section(diff),
            *_render_resources(diff, folded="resources" in folded, artifact=artifact), *_audit_section(diff),
            *_host_files_section(diff, "host_files" in folded, artifact)]


def _isolations_section(diff: PlanDiff) -> list[str]:
    if not diff.isolations:
        return []
    out = ["### Isolations", "", "| isolation | change | moves today | to | detail |", "|---|---|---|---|---|"]
    out += [f"| `{c.target}` | {c.change} | {c.messages_per_day:,} messages/day | {c.destination} | "
            f"{escape_markdown(c.detail)} |" for c in diff.isolations]
    return [*out, ""]


def _names_section(diff: PlanDiff) -> list[str]:
    if not diff.names:
        return []
    out = ["### Streams and pools", "", "| kind | name | change | detail |", "|---|---|---|---|"]
    return [*out, *(f"| {c.kind} | {c.name} | {c.change} | {escape_markdown(c.detail)} |" for c in diff.names), ""]


def _records_section(diff: PlanDiff, folded: bool, artifact: str) -> list[str]:
    if not diff.records:
        return []
    out = [f"### DNS records ({_count(diff.records, 'added')} added, {_count(diff.records, 'removed')} removed, "
           f"{_count(diff.records, 'changed')} changed)", ""]
    if folded:
        listed = ", ".join(f"`{c.key}` ({c.change})" for c in diff.records[:40])
        more = f" and {len(diff.records) - 40} more" if len(diff.records) > 40 else ""
        return [*out, f"Listed in {artifact} (folded to fit GitHub's comment limit): {listed}{more}", ""]
    out += ["| change | record | old | new | TTL | purpose |", "|---|---|---|---|---|---|"]
    out += [f"| {c.change} | `{c.key}` | {_values(c.old)} | {_values(c.new)} | {_ttl(c)} | "
            f"{escape_markdown(c.purpose)} |" for c in diff.records]
    return [*out, ""]


def _ips_section(diff: PlanDiff) -> list[str]:
    if not diff.ips:
        return []
    out = ["### Sending IPs", "", "| pool | IP | change | detail |", "|---|---|---|---|"]
    out += [f"| {c.pool} | {c.ip} | {_mark(c.change, c.destructive, c.risky)} | {escape_markdown(c.detail)} |"
            for c in diff.ips]
    return [*out, ""]


def _warmup_section(diff: PlanDiff) -> list[str]:
    out: list[str] = []
    if diff.warmup:
        out += ["### Warmup", "", "| IP | before | after |", "|---|---|---|"]
        out += [f"| {c.ip} | {c.old} | {c.new} |" for c in diff.warmup] + [""]
    if diff.warmup_findings:
        out += ["### ⚠️ Warmup findings", ""]
        out += [f"- new IP `{f.pool}/{f.ip}` inherits warmup start {f.start}, already past: it would start "
                f"mid-ramp on day {f.day} ({f.daily_cap:,} messages/day) with no reputation. Give it its own "
                "`warmup.start` (today or later)." for f in diff.warmup_findings]
        out.append("")
    return out


def _keys_section(diff: PlanDiff) -> list[str]:
    if not diff.keys:
        return []
    out = ["### DKIM keys", "", "| domain | selector | change | detail |", "|---|---|---|---|"]
    out += [f"| {c.domain} | {c.selector} | {_mark(c.change, c.destructive, c.risky)} | "
            f"{escape_markdown(c.detail)} |" for c in diff.keys]
    return [*out, ""]


def _audit_section(diff: PlanDiff) -> list[str]:
    if not (diff.findings_introduced or diff.findings_fixed):
        return []
    out = ["### Audit", ""]
    out += [f"- introduced **{f.severity}** {code_span(f.code)} at {code_span(f.where)}: {escape_markdown(f.why)}"
            for f in diff.findings_introduced]
    out += [f"- fixed {code_span(f.code)} at {code_span(f.where)}" for f in diff.findings_fixed]
    return [*out, ""]


def _host_files_section(diff: PlanDiff, folded: bool, artifact: str) -> list[str]:
    if not diff.host_files:
        return []
    out = [f"### Rendered MTA files ({len(diff.host_files)} changed, secrets redacted)", ""]
    for host in sorted({f.host for f in diff.host_files}):
        files = [f for f in diff.host_files if f.host == host]
        names = escape_markdown(", ".join(f"{f.path} ({f.change})" for f in files))
        if folded:
            out.append(f"- `{host}`: {names}")
            continue
        # A four-backtick fence: a config line holding ``` cannot close it.
        out += [f"<details><summary><code>{host}</code>: {names}</summary>", "", "````diff",
                "".join(f.diff for f in files).rstrip("\n"), "````", "", "</details>", ""]
    if folded:
        out += ["", f"The diffs are in {artifact} (folded to fit GitHub's comment limit).", ""]
    return out


def _render_resources(diff: PlanDiff, *, folded: bool = False, artifact: str = "") -> list[str]:
    if not diff.resources_compared:
        return ["### Pulumi resources", "", "Not compared (`--no-resources`).", ""]
    if not diff.resources:
        return []
    counts = ", ".join(f"{_count(diff.resources, kind)} {kind}" for kind in ("added", "replaced", "updated",
                                                                              "renamed", "removed"))
    if folded:
        by_type = Counter(f"{c.change} `{c.type}`" for c in diff.resources)
        return [f"### Pulumi resources ({counts})", "", "By type (inputs in " + artifact + ", folded to fit GitHub's "
                "comment limit): " + ", ".join(f"{n} {what}" for what, n in sorted(by_type.items())), ""]
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
        mark = _mark(c.change, c.destructive, c.stop_start or bool(c.adopts))
        # The cell holds our own markup (code spans, <br/>): only a newline would break the row.
        out.append(f"| {mark} | `{c.type}` | {c.name} | {'<br/>'.join(detail).replace(chr(10), ' ')} |")
    return [*out, ""]


def _mark(change: str, destructive: bool, risky: bool = False) -> str:
    return f"**{change}** ⛔" if destructive else f"**{change}** ⚠️" if risky else change


def _count(changes: Sequence[object], kind: str) -> int:
    return sum(1 for c in changes if getattr(c, "change", None) == kind)


def _values(values: tuple[str, ...]) -> str:
    if not values:
        return "—"
    return "<br/>".join(code_span(abbreviate_keys(v)) for v in values)


def _ttl(change: RecordChange) -> str:
    if change.old_ttl is not None and change.new_ttl is not None and change.old_ttl != change.new_ttl:
        return f"**{change.old_ttl} → {change.new_ttl}**"
    return str(change.new_ttl if change.new_ttl is not None else change.old_ttl)


def _short(value: str) -> str:
    # Only key material is abbreviated (its start and end tell two keys apart); a policy is shown whole.
    return abbreviate_keys(value).replace("|", "\\|").replace("`", "'")

