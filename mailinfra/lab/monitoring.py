"""The lab's monitoring: the hosts' metrics exporters and a real Prometheus, inside the namespace.

Each Postfix host runs the exporter as its unit would (`python3 -m mailinfra.metrics`, its rendered config
as the host applied it: listening on the host's private address), over the host root's logs and queues.
Prometheus (Debian's `prometheus`) runs the config and rules rendered from the plan, with a short scrape
interval so tests see a count within seconds; it listens on the namespace's loopback only.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
import time
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mailinfra.lab.namespace import LabError, in_namespace
from mailinfra.lab.procs import LabState, start_process
from mailinfra.metrics.labels import EXPORTER_CONFIG, EXPORTER_PORT
from mailinfra.monitoring.render import PROMETHEUS_CONFIG, render_monitoring
from mailinfra.plan.model import Plan

PROMETHEUS_LISTEN = "127.0.0.1:9090"
# The lab's scrape and rule interval: a test waits two of them at most (issue 13: "within two scrape intervals").
LAB_SCRAPE_SECONDS = 2
READY_SECONDS = 30.0


def exporter_addresses(plan: Plan, root: Path) -> dict[str, str]:
    """host -> the private address its exporter listens on, as the host's applied config says."""
    result = {}
    for host in plan.hosts:
        config = root / EXPORTER_CONFIG
        if host.mta != "postfix" or not host.ips or not config.exists():
            continue
        result[host.name] = str(json.loads(config.read_text())["listen_private"])
    return result


def start_exporters(state: LabState, plan: Plan, namespace: str, root: Path, env: Mapping[str, str]) -> None:
    for host in (h for h in plan.hosts if h.mta == "postfix" and h.ips):
        # No --root: the lab's overlay already moved every path of the host's files under its root
        # (mailinfra.lab.mta.relocate). --from-start: the logs began with this lab, every line is this lab's.
        argv = [sys.executable, "-m", "mailinfra.metrics", "--config", str(root / EXPORTER_CONFIG), "--from-start"]
        start_process(state, f"metrics-{host.name}", in_namespace(namespace, argv),
                      root.parent / "log" / f"metrics-{host.name}.log", env=env)


def start_prometheus(state: LabState, plan: Plan, namespace: str, runtime_dir: Path) -> bool:
    """Prometheus with the plan's config (exporters at their private addresses); False when not installed."""
    binary = shutil.which("prometheus")
    if binary is None:
        print("lab: prometheus is not installed (Debian package prometheus); no scraping", file=sys.stderr)
        return False
    # The lab runs Postfix hosts only (PowerMTA is licensed): Prometheus scrapes those.
    lab_plan = dataclasses.replace(plan, hosts=tuple(h for h in plan.hosts if h.mta == "postfix"),
                                   monitoring=dataclasses.replace(plan.monitoring,
                                                                  scrape_interval_seconds=LAB_SCRAPE_SECONDS))
    directory = runtime_dir / "monitoring"
    for item in render_monitoring(lab_plan, exporter_addresses(plan, runtime_dir / "root")):
        (directory / item.path).parent.mkdir(parents=True, exist_ok=True)
        (directory / item.path).write_text(item.content)
    argv = [binary, f"--config.file={directory / PROMETHEUS_CONFIG}",
            f"--storage.tsdb.path={directory / 'data'}", f"--web.listen-address={PROMETHEUS_LISTEN}"]
    start_process(state, "prometheus", in_namespace(namespace, argv), runtime_dir / "log" / "prometheus.log")
    return True


_QUERY = """
import json, sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=10) as answer:
    print(answer.read().decode())
"""


def query(namespace: str, promql: str) -> list[dict[str, Any]]:
    """An instant query against the lab's Prometheus (HTTP API /api/v1/query): its result vector."""
    import subprocess

    url = f"http://{PROMETHEUS_LISTEN}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
    done = subprocess.run(in_namespace(namespace, [sys.executable, "-c", _QUERY, url]), capture_output=True,
                          text=True, check=False, timeout=30)
    if done.returncode != 0:
        raise LabError(f"prometheus query {promql!r}: {done.stderr.strip()[-300:]}")
    answer = json.loads(done.stdout)
    if answer.get("status") != "success":
        raise LabError(f"prometheus query {promql!r}: {answer}")
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


def wait_for_targets(namespace: str, timeout: float = READY_SECONDS) -> None:
    """Until Prometheus has scraped every exporter successfully (up == 1 for each)."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            ups = query(namespace, 'up{job="mailinfra-mta"}')
            if ups and all(float(v["value"][1]) == 1 for v in ups):
                return
            last = ups
        except LabError as error:
            last = error
        time.sleep(0.5)
    raise LabError(f"prometheus: the exporters on :{EXPORTER_PORT} were not scraped within {timeout:.0f} s ({last})")
