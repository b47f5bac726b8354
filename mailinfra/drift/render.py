"""Sinks for a drift report, chosen at the edge: terminal table, JSON, JUnit XML, Markdown."""

from __future__ import annotations

import json
from collections import Counter
from xml.etree import ElementTree as ET

from mailinfra.drift.model import DriftReport, Status

FORMATS = ("table", "json", "junit", "markdown")


def summarize(report: DriftReport) -> str:
    counts = {s: sum(1 for r in report.results if r.status is s) for s in Status}
    return ", ".join(f"{counts[s]} {s}" for s in Status)


# More UNKNOWN rows than this with one cause (a dead server) are one line: the cause, not the list.
MAX_UNKNOWN_ROWS_PER_CAUSE = 3


def render_table(report: DriftReport, *, show_ok: bool = False) -> str:
    lines = [f"drift {report.stack}: {summarize(report)}"]
    lines += [f"COULD NOT CHECK  {line}" for line in report.failures]
    rows = [r for r in report.results if show_ok or r.status is not Status.OK]
    by_cause = Counter(r.detail for r in rows if r.status is Status.UNKNOWN)
    folded = {cause for cause, count in by_cause.items() if count > MAX_UNKNOWN_ROWS_PER_CAUSE}
    for cause in sorted(folded):
        lines.append(f"{Status.UNKNOWN.upper():8} {by_cause[cause]} records: {cause}")
    rows = [r for r in rows if not (r.status is Status.UNKNOWN and r.detail in folded)]
    if rows:
        width = max(len(r.key) for r in rows)
        for r in rows:
            lines.append(f"{r.status.upper():8} {r.key:{width}}  {r.detail}")
            if r.status in (Status.CHANGED, Status.EXTRA):
                lines.append(f"{'':8} {'':{width}}  expected {r.expected}")
                lines.append(f"{'':8} {'':{width}}  found    {r.actual}")
    return "\n".join(lines) + "\n"


def render_json(report: DriftReport) -> str:
    return (
        json.dumps(
            {
                "stack": report.stack,
                "exit_code": report.exit_code(),
                "summary": summarize(report),
                "could_not_check": report.failures,
                "results": [r.as_dict() for r in report.results],
            },
            indent=2,
        )
        + "\n"
    )


def render_junit(report: DriftReport) -> str:
    """One testcase per checked thing: drift is a failure, unknown an error (CI shows both)."""
    suite = ET.Element(
        "testsuite",
        name=f"mailinfra-drift-{report.stack}",
        tests=str(len(report.results) + len(report.failures)),  # each failure line is a testcase too
        failures=str(len(report.drifted)),
        errors=str(len(report.unknown) + len(report.failures)),
    )
    for r in report.results:
        case = ET.SubElement(suite, "testcase", classname=f"drift.{r.source}", name=r.key)
        if r.status is Status.UNKNOWN:
            ET.SubElement(case, "error", message=f"unknown: {r.detail}")
        elif r.status is not Status.OK:
            failure = ET.SubElement(case, "failure", message=f"{r.status}: {r.detail}")
            failure.text = f"expected: {r.expected}\nfound: {r.actual}\npurpose: {r.purpose}"
    for line in report.failures:
        case = ET.SubElement(suite, "testcase", classname="drift.servers", name=line.split(":", 1)[0])
        ET.SubElement(case, "error", message=line)
    text: str = ET.tostring(suite, encoding="unicode", xml_declaration=True)
    return text + "\n"


def render_markdown(report: DriftReport) -> str:
    lines = [f"### Drift of `{report.stack}`: {summarize(report)}", ""]
    lines += [f"- **could not check:** {line}" for line in report.failures]
    rows = [r for r in report.results if r.status is not Status.OK]
    if not rows:
        return "\n".join([*lines, "No drift." if not report.failures else ""]) + "\n"
    lines += ["", "| status | record | detail | expected | found |", "|---|---|---|---|---|"]
    lines += [f"| {r.status} | `{r.key}` | {_cell(r.detail)} | {_cell(r.expected)} | {_cell(r.actual)} |" for r in rows]
    return "\n".join(lines) + "\n"


def render(fmt: str, report: DriftReport) -> str:
    if fmt == "json":
        return render_json(report)
    if fmt == "junit":
        return render_junit(report)
    if fmt == "markdown":
        return render_markdown(report)
    return render_table(report)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
