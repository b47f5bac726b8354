"""Benchmark: the Pulumi program under the mock runtime for prod and topologies 4x and 16x larger.

    .venv/bin/python bench/pulumi_mock.py [--write docs/BENCHMARKS.md]

The synthetic topologies are prod copied N times: every domain, stream, pool, IP and host gets a
suffixed twin (example.com -> example2.com, pool com-tx -> com-tx-s2, IP tx1 -> tx1s2); shared routes
stay shared. Each run is its own process (the mock runtime's state is global), so wall time includes
interpreter start and imports, exactly as `mailinfra preview` pays them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mailinfra.deployment.mock_runtime import preview_config  # noqa: E402 - after the path fix above

HEADING = "## Pulumi mock evaluation"


def scale(config: dict[str, str], factor: int) -> dict[str, str]:
    """prod's config with every domain, stream, pool, IP and host present `factor` times."""
    load = {k: json.loads(config[k]) for k in ("mailinfra:domains", "mailinfra:streams", "mailinfra:pools",
                                              "mailinfra:hosts", "mailinfra:dns", "mailinfra:routes")}
    domains, streams = load["mailinfra:domains"], load["mailinfra:streams"]
    pools, hosts = load["mailinfra:pools"], load["mailinfra:hosts"]
    zones = load["mailinfra:dns"].setdefault("zones", {})
    routes = load.get("mailinfra:routes", {})
    base = (dict(domains), dict(streams), dict(pools), dict(hosts), dict(zones))
    secrets: dict[str, str] = {}
    for k in range(2, factor + 1):
        def dom(name: str, k: int = k) -> str:
            label, _, rest = name.partition(".")
            return f"{label}{k}.{rest}"

        def key(name: str, k: int = k) -> str:
            return f"{name}-s{k}"

        for name, domain in base[0].items():
            domains[dom(name)] = domain
            # The twin domain's DKIM secrets: placeholders like the original's (a preview run).
            old, new = (f"mailinfra:dkim_{d.replace('.', '_').replace('-', '_')}_" for d in (name, dom(name)))
            secrets.update({k.replace(old, new, 1): config[k].replace(old, new, 1)
                            for k in config if k.startswith(old)})
        for name in base[4]:
            zones[dom(name)] = {}  # looked up by name: a copied zone id would point at the original zone
        for name, host in base[3].items():
            hosts[key(name)] = host
        for name, pool in base[2].items():
            pools[key(name)] = {**pool, "hosts": [key(h) for h in pool["hosts"]],
                                "ips": {f"{ip}s{k}": _new_ip(spec, pool, key) for ip, spec in pool["ips"].items()}}
        for name, stream in base[1].items():
            copy = {**stream, "domain": dom(stream["domain"])}
            if "pool" in copy:
                copy["pool"] = key(copy["pool"])
            if "tiers" in copy:
                copy["tiers"] = {tier: key(pool) for tier, pool in copy["tiers"].items()}
            if copy.get("route") and routes.get(copy["route"], {}).get("kind") == "hosts":
                twin = key(copy["route"])
                routes[twin] = {**routes[copy["route"]], "hosts": [key(h) for h in routes[copy["route"]]["hosts"]]}
                copy["route"] = twin
            streams[key(name)] = copy
    return {**config, **secrets, **{k: json.dumps(v) for k, v in load.items()}}


def _new_ip(spec: dict[str, Any], pool: dict[str, Any], key: Callable[[str], str]) -> dict[str, Any]:
    # Twins of adopted IPs are new IPs (an allocation id exists once); they warm like the pool.
    copy = {k: v for k, v in spec.items() if k not in ("address", "allocation_id", "helo")}
    if "host" in copy:
        copy["host"] = key(copy["host"])
    if "warmup" not in copy and "warmup" not in pool:
        copy["warmup"] = {"warmed": True}
    return copy


def measure(stack: str, config: dict[str, str] | None, secret_keys: list[str]) -> dict[str, Any]:
    command = [sys.executable, "-m", "mailinfra.deployment.mock_runtime", stack]
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        if config is not None:
            json.dump({"config": config, "secret_keys": secret_keys}, handle)
            command += ["--config-json", handle.name]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    Path(handle.name).unlink()
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if "error" in result:
        raise SystemExit(f"{stack}: {result['error'][:600]}")
    custom = [r for r in result["resources"] if not r["component"]]
    return {"resources": len(result["resources"]), "custom": len(custom), "program_s": result["seconds"],
            "wall_s": wall, "ips": sum(1 for r in custom if r["type"] == "aws:ec2/eip:Eip")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", type=Path, help="replace the section in this Markdown file")
    parser.add_argument("--factors", default="1,4,16")
    args = parser.parse_args()
    config, secret_keys = preview_config("prod")
    rows = []
    for factor in (int(f) for f in args.factors.split(",")):
        scaled = scale(config, factor)
        keys = secret_keys + [k for k in scaled if k not in config]
        result = measure("prod", None if factor == 1 else scaled, keys)
        label = "prod" if factor == 1 else f"prod x{factor}"
        rows.append((label, result))
        print(f"{label:10} {result['resources']:5} resources ({result['ips']} IPs)  program {result['program_s']:.2f} s"
              f"  wall {result['wall_s']:.2f} s  {1000 * result['program_s'] / result['resources']:.2f} ms/resource")
    if args.write:
        write_section(args.write, rows)
    return 0


def write_section(path: Path, rows: list[tuple[str, dict[str, Any]]]) -> None:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    compiled = any((ROOT / "mailinfra").glob("__pycache__/*.pyc"))
    bytecode = "compiled (as `make install` does)" if compiled else "compiled for site-packages only"
    lines = [
        HEADING, "",
        "`bench/pulumi_mock.py`: `__main__.py` run under the Pulumi SDK mock runtime "
        "(`python -m mailinfra.deployment.mock_runtime`, one process per run, dry run). "
        "*program* = from `set_mocks` to the last resolved output; *wall* = the whole process "
        "(interpreter, imports, stack load, plan, program, JSON). Synthetic topologies copy prod's domains, "
        "streams, pools, IPs and hosts N times.", "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"load average {load:.1f} at start, bytecode {bytecode}.", "",
        "| topology | IPs | resources (incl. components) | program s | wall s | ms / resource (program) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, r in rows:
        lines.append(f"| {label} | {r['ips']} | {r['resources']} | {r['program_s']:.2f} | {r['wall_s']:.2f} | "
                     f"{1000 * r['program_s'] / r['resources']:.2f} |")
    lines.append("")
    section = "\n".join(lines)
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n\n"
    pattern = re.compile(rf"^{re.escape(HEADING)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = pattern.sub(lambda _: section + "\n", text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
