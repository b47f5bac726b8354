"""Sinks for audit findings, chosen at the edge: terminal table, JSON, Markdown."""

from __future__ import annotations

import json
from collections.abc import Sequence

from mailinfra.audit.findings import Finding, Severity
from mailinfra.markdown import code_span, escape_markdown

FORMATS = ("table", "json", "markdown")


def summarize(findings: Sequence[Finding]) -> str:
    counts = {s: sum(1 for f in findings if f.severity is s) for s in Severity}
    return ", ".join(f"{counts[s]} {s}{'s' if counts[s] != 1 else ''}" for s in Severity)


def render_table(stack: str, findings: Sequence[Finding]) -> str:
    lines = [f"audit {stack}: {summarize(findings)}"]
    if not findings:
        return lines[0] + "\n"
    width = max(len(f.code) for f in findings)
    for f in findings:
        lines.append(f"{f.severity.upper():7} {f.code:{width}}  {f.where}")
        lines.append(f"{'':7} {'':{width}}  why: {f.why}")
        lines.append(f"{'':7} {'':{width}}  fix: {f.fix}")
    return "\n".join(lines) + "\n"


def render_json(stack: str, findings: Sequence[Finding]) -> str:
    return (
        json.dumps(
            {"stack": stack, "summary": summarize(findings), "findings": [f.as_dict() for f in findings]},
            indent=2,
        )
        + "\n"
    )


def render_markdown(stack: str, findings: Sequence[Finding]) -> str:
    lines = [f"### Audit of `{stack}`: {summarize(findings)}", ""]
    if not findings:
        return "\n".join([*lines, "No findings."]) + "\n"
    lines += ["| severity | code | where | why | fix |", "|---|---|---|---|---|"]
    lines += [
        f"| {f.severity} | `{f.code}` | {code_span(f.where)} | {_cell(f.why)} | {_cell(f.fix)} |" for f in findings
    ]
    return "\n".join(lines) + "\n"


def render(fmt: str, stack: str, findings: Sequence[Finding]) -> str:
    renderers = {"table": render_table, "json": render_json, "markdown": render_markdown}
    return renderers[fmt](stack, findings)


def _cell(text: str) -> str:
    # A pipe would end the cell early; `fbl@<your domain>` would be an HTML tag GitHub drops.
    return escape_markdown(text)
