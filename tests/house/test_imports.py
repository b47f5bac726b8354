"""The package's import graph has no cycles, and the pure core imports neither pulumi nor a network library."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "mailinfra"
CORE = ("mailinfra.model", "mailinfra.plan", "mailinfra.dns", "mailinfra.mta", "mailinfra.warmup", "mailinfra.cost")
IMPURE = ("pulumi", "pulumi_aws", "pulumi_cloudflare", "boto3", "botocore", "socket", "smtplib", "requests",
          "dns.resolver", "urllib.request")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module `path` imports anywhere (top level, TYPE_CHECKING blocks and lazy imports in functions)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {m for m in _imports(path) if m in modules and m != name} for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    result: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph[node]):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return result


def test_no_import_cycles() -> None:
    """No two modules of mailinfra import each other, directly or through others (lazy imports included)."""
    graph = _graph()
    # A package's __init__ importing its own submodules is not a cycle of concepts.
    for name in graph:
        graph[name] = {m for m in graph[name] if not (name.startswith(m + ".") and m in graph)}
    assert _cycles(graph) == []


def test_core_is_pure() -> None:
    """The planning core imports no Pulumi SDK and no network library."""
    offenders = {
        name: sorted(m for m in _imports(PACKAGE.parent / Path(*name.split("."))
                                          .with_suffix(".py")) if m.startswith(IMPURE))
        for name in _graph() if name.startswith(CORE) and (ROOT / Path(*name.split("."))).with_suffix(".py").is_file()
    }
    assert {k: v for k, v in offenders.items() if v} == {}
