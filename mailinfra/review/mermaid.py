"""The topology as a Mermaid flowchart GitHub renders: domains -> streams -> tiers -> pools -> hosts -> routes.

With the base plan, what the change adds, removes or alters is marked (classes `added`, `removed`,
`changed`, and a legend), so a reviewer sees the change and not only the new topology.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from mailinfra.plan.model import Plan

CLASSES = {
    "added": "fill:#e6ffed,stroke:#2da44e,stroke-width:2px",
    "removed": "fill:#ffebe9,stroke:#cf222e,stroke-width:2px,stroke-dasharray:5 3",
    "changed": "fill:#fff8c5,stroke:#bf8700,stroke-width:2px",
}


def _id(kind: str, name: str) -> str:
    return f"{kind}_{re.sub(r'[^A-Za-z0-9_]', '_', name)}"


@dataclass
class Graph:
    """Nodes (id -> label) and edges of one plan's topology."""

    nodes: dict[str, str] = field(default_factory=dict)
    edges: list[str] = field(default_factory=list)

    def node(self, kind: str, name: str, label: str) -> str:
        ident = _id(kind, name)
        self.nodes.setdefault(ident, label)
        return ident

    def edge(self, text: str) -> None:
        if text not in self.edges:
            self.edges.append(text)


def plan_graph(plan: Plan) -> Graph:
    graph = Graph()
    for stream in plan.streams:
        domain = graph.node("d", stream.org_domain, stream.org_domain)
        s = graph.node("s", stream.name, f"{stream.name}<br/>{stream.kind} · {stream.sending_domain}")
        graph.edge(f"{domain} --> {s}")
        for tier, pool_name in stream.pools:
            pool = plan.pool(pool_name)
            p = graph.node("p", pool_name, f"pool {pool_name}<br/>{len(pool.ips)} IPs")
            graph.edge(f"{s} -->|{tier}| {p}")
            for host in sorted({plan.ip(i).host for i in pool.ips}):
                h = graph.node("h", host, f"{host}<br/>{plan.host(host).mta}")
                graph.edge(f"{p} --> {h}")
        if stream.route:
            route = plan.route(stream.route)
            target = route.smtp_host or ", ".join(route.hosts)
            r = graph.node("r", route.name, f"route {route.name}<br/>{route.kind}: {target}")
            graph.edge(f"{s} -.->|secondary| {r}")
    return graph


def render_mermaid(plan: Plan, base: Plan | None = None) -> str:
    head = plan_graph(plan)
    old = plan_graph(base) if base is not None else None
    nodes = dict(head.nodes)
    edges = list(head.edges)
    marks: dict[str, str] = {}
    if old is not None:
        for ident, label in head.nodes.items():
            if ident not in old.nodes:
                marks[ident] = "added"
            elif old.nodes[ident] != label:
                marks[ident] = "changed"
        for ident, label in old.nodes.items():
            if ident not in head.nodes:
                nodes[ident] = f"{label}<br/>(removed)"
                marks[ident] = "removed"
        edges += [f"{e.replace(' --> ', ' -.-x ').replace(' -.-> ', ' -.-x ')}" for e in old.edges
                  if e not in head.edges and all(part in nodes for part in _ends(e))]
        for ident in {i for e in head.edges if e not in old.edges for i in _ends(e)} - marks.keys():
            marks[ident] = "changed"  # a node whose connections changed (a pool moved to another host)
    lines = ["```mermaid", "flowchart LR"]
    lines += [f'    {ident}["{label}"]' for ident, label in nodes.items()]
    lines += [f"    {edge}" for edge in edges]
    if marks:
        lines += [f"    classDef {name} {style}" for name, style in CLASSES.items()]
        for name in CLASSES:
            members = sorted(i for i, m in marks.items() if m == name)
            if members:
                lines.append(f"    class {','.join(members)} {name}")
    lines.append("```")
    legend = ""
    if marks:
        legend = "Marked: green added, yellow changed, red dashed removed (against the base).\n"
    return "\n".join(lines) + "\n" + legend


def _ends(edge: str) -> tuple[str, ...]:
    """The two node ids of an edge line (`a --> b`, `a -->|tier| b`, `a -.->|secondary| b`)."""
    parts = edge.split()
    return (parts[0], parts[-1])
