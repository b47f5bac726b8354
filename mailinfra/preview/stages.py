"""The stages that add to a preview beyond DNS: rendered MTA files and the Pulumi resource list.

Each stage is optional at import time so the preview keeps working while a stage is being built.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from typing import Any

from mailinfra.plan.model import Plan
from mailinfra.preview.model import Contributor, Preview

# module:function pairs; each function is a Contributor(plan, preview).
STAGES = [
    ("mailinfra.mta.preview_stage", "add_host_files"),
    ("mailinfra.monitoring.preview_stage", "add_monitoring_files"),
]
RESOURCE_STAGE = ("mailinfra.preview.stages", "add_resources")


def preview_contributors(*, include_resources: bool = True) -> list[Contributor]:
    stages = [*STAGES, RESOURCE_STAGE] if include_resources else list(STAGES)
    found: list[Contributor] = []
    for module_name, function in stages:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                continue
            raise
        found.append(getattr(module, function))
    return found


def add_resources(plan: Plan, preview: Preview) -> None:
    """Run __main__.py under Pulumi's mock runtime; list its resources in plan.json and review.md."""
    from mailinfra.deployment.mock_runtime import collect_resources

    resources = collect_resources(plan.source, None, plan)  # the very file planned, wherever it is
    stand_ins = placeholder_values(plan)
    for resource in resources:
        resource["placeholder"] = is_placeholder(resource, stand_ins)
        resource["inputs"] = summarize_large(resource.get("inputs", {}))
    preview.extras["resources"] = resources
    preview.extras.setdefault("review_sections", []).append(render_resources(resources))


def placeholder_values(plan: Plan) -> frozenset[str]:
    """Values in the plan that are preview stand-ins: new EIPs' addresses, placeholder DKIM keys."""
    return frozenset([ip.address for ip in plan.ips if ip.placeholder]
                     + [key.public_key for key in plan.dkim_keys if key.placeholder])


# Inputs longer than this (config bundles, user data) are listed by size and digest: the files themselves are
# under hosts/ in the same preview, and megabytes of JSON would bury plan.json for a reviewer.
LARGE_INPUT_BYTES = 4096


def summarize_large(value: Any) -> Any:
    """`value` with every string over LARGE_INPUT_BYTES replaced by its size and SHA-256 prefix."""
    if isinstance(value, str) and len(value) > LARGE_INPUT_BYTES:
        digest = hashlib.sha256(value.encode()).hexdigest()[:16]
        return f"[{len(value.encode())} bytes, sha256 {digest}…]"
    if isinstance(value, dict):
        return {k: summarize_large(v) for k, v in value.items()}
    if isinstance(value, list):
        return [summarize_large(v) for v in value]
    return value


def is_placeholder(resource: dict[str, Any], stand_ins: frozenset[str]) -> bool:
    """A resource whose inputs carry a stand-in, or a new EIP (its address exists only after `pulumi up`)."""
    if resource.get("type") == "aws:ec2/eip:Eip" and not resource.get("import_id"):
        return True
    text = json.dumps(resource.get("inputs", {}))
    return any(value in text for value in stand_ins)


def render_resources(resources: list[dict[str, Any]]) -> str:
    """review.md section: resources grouped by stream and pool, stand-in values marked (components not listed)."""
    from mailinfra.preview.summary import resource_count

    groups: dict[str, list[dict[str, Any]]] = {}
    for resource in resources:
        if resource.get("component"):
            continue
        stream = resource.get("stream")
        pool = resource.get("pool")
        host = resource.get("host")
        key = (f"stream {stream} / pool {pool}" if stream and pool else f"stream {stream}" if stream
               else f"host {host}" if host else "shared")
        groups.setdefault(key, []).append(resource)
    lines = [f"## Pulumi resources: {resource_count(resources)}, from the mock runtime", "",
             "`pulumi preview` with the CLI remains the authority; ⚠ marks values that are stand-ins until "
             "`pulumi up`.", ""]
    for key in sorted(groups):
        lines += [f"### {key}", "", "| type | name | protect | import |", "|---|---|---|---|"]
        for r in groups[key]:
            mark = " ⚠ placeholder" if r.get("placeholder") else ""
            lines.append(f"| `{r['type']}` | {r['name']}{mark} | {'yes' if r.get('protect') else ''} | "
                         f"{r.get('import_id') or ''} |")
        lines.append("")
    return "\n".join(lines).rstrip()
