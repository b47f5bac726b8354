"""The terminal summary `mailinfra preview` prints: one line per stream, then totals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mailinfra.plan.model import Plan
from mailinfra.preview.model import Preview


def format_table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    return lines


def print_summary(plan: Plan, preview: Preview, out: Path) -> None:
    print(f"mailinfra plan for stack {plan.stack} ({plan.environment}) from {plan.source}, as of {plan.as_of}")
    print()
    rows = []
    for stream in plan.streams:
        ips = [ip for ip in plan.ips if ip.stream == stream.name]
        records = [r for r in plan.records if r.stream == stream.name]
        rows.append([stream.name, stream.kind, stream.sending_domain, stream.return_path,
                     " ".join(f"{t}:{p}" for t, p in stream.pools), str(len(ips)),
                     ",".join(sorted({ip.host for ip in ips})), stream.route or "NONE", str(len(records))])
    for line in format_table(["stream", "kind", "sending domain", "return-path", "pools", "IPs", "hosts",
                              "route", "records"], rows):
        print(line)
    print()
    by_type: dict[str, int] = {}
    for record in plan.records:
        by_type[str(record.type)] = by_type.get(str(record.type), 0) + 1
    print(f"{len(plan.records)} DNS records ({', '.join(f'{n} {t}' for t, n in sorted(by_type.items()))}) "
          f"in {sum(1 for z in plan.zones if not z.reverse)} zones + "
          f"{sum(1 for z in plan.zones if z.reverse)} reverse zones")
    print(f"{len(plan.ips)} IPs in {len(plan.pools)} pools on {len(plan.hosts)} hosts; "
          f"{len(plan.dkim_keys)} DKIM keys")
    resources = preview.extras.get("resources")
    if isinstance(resources, list):
        print(f"{resource_count(resources)} (mock runtime; review.md lists the resources)")
    for note in plan.placeholders:
        print(f"placeholder: {note}")
    print(f"wrote {len(preview.files)} files to {out}/ (plan.json, review.md, dns/*.zone"
          + (", hosts/" if any(f.kind == "host" for f in preview.files) else "") + ")")


def resource_count(resources: list[dict[str, Any]]) -> str:
    """One wording of the count for the terminal and review.md: cloud resources and components apart."""
    components = sum(1 for r in resources if r.get("component"))
    return f"{len(resources) - components} Pulumi resources and {components} components"
