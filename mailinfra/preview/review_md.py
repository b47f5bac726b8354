"""review.md: the plan as a reviewer reads it in a PR — topology first, then every record and why."""

from __future__ import annotations

from mailinfra.dns.txt import split_txt
from mailinfra.markdown import abbreviate_keys, code_span, escape_markdown
from mailinfra.plan.model import Plan
from mailinfra.preview.model import Preview

PLACEHOLDER_MARK = "⚠ placeholder"


def _cell(text: str) -> str:
    return text.replace("\n", " ")  # cells arrive escaped (mailinfra.markdown)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def _warmup_text(plan: Plan, ip_name: str) -> str:
    ip = plan.ip(ip_name)
    if ip.warmup.warmed:
        return "warmed"
    return f"{ip.warmup.schedule} from {ip.warmup.start}"


def render_review(plan: Plan, preview: Preview) -> str:
    out = [
        f"# mailinfra plan: `{plan.stack}` ({plan.environment})",
        "",
        f"Source: `{plan.source}` · plan date {plan.as_of} · DNS provider {plan.dns_provider} · "
        f"{len(plan.records)} records · {len(plan.ips)} IPs · {len(plan.hosts)} hosts",
        "",
    ]
    if plan.placeholders:
        out += ["## Placeholders", "", "Values marked ⚠ exist only after `pulumi up` (or a real key):", ""]
        out += [f"- {note}" for note in plan.placeholders] + [""]
    out += ["## Streams", ""]
    out += [
        *_table(
            ["stream", "kind", "sending domain", "return-path", "tiers → pools", "DKIM", "secondary route"],
            [
                [
                    s.name,
                    s.kind,
                    s.sending_domain,
                    s.return_path,
                    ", ".join(f"{t}→{p}" for t, p in s.pools),
                    s.dkim_selector + (f" + {s.ed25519_selector}" if s.ed25519_selector else ""),
                    s.route or "**none**",
                ]
                for s in plan.streams
            ],
        ),
        "",
    ]
    out += ["## Pools and IPs", ""]
    for stream in plan.streams:
        for tier, pool_name in stream.pools:
            pool = plan.pool(pool_name)
            out += [f"### {stream.name} / {tier}: pool `{pool.name}` on {', '.join(pool.hosts)}", ""]
            out += [
                *_table(
                    ["ip", "address", "HELO / PTR", "host", "warmup", "allocation"],
                    [
                        [
                            ip.name,
                            ip.address + (f" {PLACEHOLDER_MARK}" if ip.placeholder else ""),
                            ip.helo,
                            ip.host,
                            _warmup_text(plan, ip.name),
                            f"adopted {ip.allocation_id}" if ip.adopted else "new Elastic IP",
                        ]
                        for ip in plan.ips
                        if ip.pool == pool.name
                    ],
                ),
                "",
            ]
    out += ["## Hosts", ""]
    out += [
        *_table(
            ["host", "MTA", "type", "IPs", "streams", "bounces", "injection from"],
            [
                [
                    h.name,
                    h.mta,
                    h.instance_type,
                    f"{len(h.ips)}/{h.max_ips}",
                    ", ".join(h.streams),
                    f"yes ({h.fqdn})" if h.accepts_bounces else "no",
                    ", ".join(h.injection_cidrs),
                ]
                for h in plan.hosts
            ],
        ),
        "",
    ]
    if plan.routes:
        out += ["## Secondary routes", ""]
        out += [
            *_table(
                ["route", "kind", "next hop", "used by"],
                [
                    [
                        r.name,
                        r.kind,
                        f"{r.smtp_host}:{r.port}" if r.smtp_host else ", ".join(r.hosts),
                        ", ".join(r.streams) or "—",
                    ]
                    for r in plan.routes
                ],
            ),
            "",
        ]
    out += ["## DNS records", ""]
    groups: dict[str, list[list[str]]] = {}
    for r in plan.records:
        # Every value whole (a reviewer checks each SPF mechanism), except key material: its start and end
        # tell two keys apart, and the zone file under dns/ has it in full.
        value = " / ".join(abbreviate_keys(v) for v in r.values)
        notes = []
        if r.type == "TXT" and any(len(split_txt(v)) > 1 for v in r.values):
            notes.append(f"_(published as {max(len(split_txt(v)) for v in r.values)} strings of ≤ 255 bytes)_")
        if r.placeholder:
            notes.append(PLACEHOLDER_MARK)
        groups.setdefault(r.stream or "shared", []).append(
            [f"`{r.name}`", str(r.type), " ".join([code_span(value), *notes]),
             escape_markdown(f"{r.purpose} — {r.requirement}, {r.rule}")]
        )
    for group, rows in groups.items():
        out += [f"### {group}", "", *_table(["name", "type", "value", "why"], rows), ""]
    files = [f for f in preview.files if f.kind in {"zone", "host"}]
    if files:
        out += ["## Files", ""] + [f"- `{f.path}`" for f in files] + [""]
    for section in preview.extras.get("review_sections", []):
        out += [section, ""]
    return "\n".join(out).rstrip() + "\n"
