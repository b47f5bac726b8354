"""The topology as a Mermaid flowchart GitHub renders: domains -> streams -> tiers -> pools -> hosts -> routes."""

from __future__ import annotations

import re

from mailinfra.plan.model import Plan


def _id(kind: str, name: str) -> str:
    return f"{kind}_{re.sub(r'[^A-Za-z0-9_]', '_', name)}"


def render_mermaid(plan: Plan) -> str:
    lines = ["```mermaid", "flowchart LR"]
    edges: list[str] = []
    nodes: dict[str, str] = {}

    def node(kind: str, name: str, label: str) -> str:
        ident = _id(kind, name)
        nodes.setdefault(ident, f'    {ident}["{label}"]')
        return ident

    for stream in plan.streams:
        domain = node("d", stream.org_domain, stream.org_domain)
        s = node("s", stream.name, f"{stream.name}<br/>{stream.kind} · {stream.sending_domain}")
        edges.append(f"    {domain} --> {s}")
        for tier, pool_name in stream.pools:
            pool = plan.pool(pool_name)
            p = node("p", pool_name, f"pool {pool_name}<br/>{len(pool.ips)} IPs")
            edges.append(f"    {s} -->|{tier}| {p}")
            for host in sorted({plan.ip(i).host for i in pool.ips}):
                h = node("h", host, f"{host}<br/>{plan.host(host).mta}")
                edges.append(f"    {p} --> {h}")
        if stream.route:
            route = plan.route(stream.route)
            target = route.smtp_host or ", ".join(route.hosts)
            r = node("r", route.name, f"route {route.name}<br/>{route.kind}: {target}")
            edges.append(f"    {s} -.->|secondary| {r}")
    lines += list(nodes.values()) + sorted(set(edges), key=edges.index) + ["```"]
    return "\n".join(lines) + "\n"
