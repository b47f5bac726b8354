"""The delivery metrics in the lab: each host's exporter and a real Prometheus run inside the namespace.

- What Prometheus scrapes per pool and provider equals the lab's ground truth: the messages the simulated
  providers stored (their .json verdicts under mail/<provider>/), traced back to their pool by the sent log.
- The exporter port is reachable only from the monitoring host's security group, through the lab's
  firewall built from the deployment's security groups (mailinfra.lab.firewall): the Internet is dropped.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time
from collections import Counter
from typing import Any

import pytest

from mailinfra.deployment.program import Resource
from mailinfra.lab import lab as lab_module
from mailinfra.lab import monitoring as lab_monitoring
from mailinfra.lab.layout import OUTSIDER_ADDRESS
from mailinfra.lab.namespace import in_namespace
from mailinfra.lab.report import read_jsonl
from mailinfra.metrics.labels import EXPORTER_PORT, provider_domains
from tests.lab.test_lab_firewall import _deploy

pytestmark = [pytest.mark.lab, pytest.mark.slow]

SETTLE_SECONDS = 30.0


def _require_prometheus(lab: Any) -> None:
    state = lab_module.require_running(lab)
    if "prometheus" not in state.processes:
        pytest.fail("the lab started no Prometheus (Debian package prometheus): the lab tests need it")


def _ground_truth(lab: Any) -> Counter[tuple[str, str]]:
    """(pool, provider) -> messages the simulated providers stored, by the pool the sent log says sent them."""
    pools = {s["lab_id"]: s["pool"] for s in read_jsonl(lab.layout.sent_log)}
    providers = provider_domains(lab.plan)
    by_dir = {p.name: providers.get(p.domain, "default") for p in lab.layout.providers}
    counts: Counter[tuple[str, str]] = Counter()
    for path in sorted(lab.layout.mail_dir.glob("*/*.json")):
        lab_id = json.loads(path.read_text()).get("lab_id")
        if lab_id in pools:
            counts[(pools[lab_id], by_dir[path.parent.name])] += 1
    return counts


def _scraped(lab: Any) -> Counter[tuple[str, str]]:
    result = lab_monitoring.query(lab.layout.namespace,
                                  'sum by (pool, provider) (mailinfra_deliveries_total{status="delivered"})')
    return Counter({(r["metric"]["pool"], r["metric"]["provider"]): int(float(r["value"][1])) for r in result})


def test_scraped_deliveries_per_pool_and_provider_equal_the_lab_ground_truth(lab: Any) -> None:
    """GIVEN two messages per pool and provider WHEN the providers have stored them THEN within a few scrapes
    Prometheus's delivered count per (pool, provider) grew exactly by what the providers stored."""
    _require_prometheus(lab)
    lab_monitoring.wait_for_targets(lab.layout.namespace)
    before_truth, before_scraped = _ground_truth(lab), _scraped(lab)
    sent = [e for e in lab_module.send(lab, count=2) if e["accepted"]]
    assert sent
    lab_module.wait_for_arrivals(lab, [e["lab_id"] for e in sent], timeout=60)
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        truth = _ground_truth(lab) - before_truth
        scraped = _scraped(lab) - before_scraped
        if truth == scraped or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert scraped == truth
    # Every pool that sent shows up, for every simulated provider it sent to.
    assert {(e["pool"]) for e in sent} <= {pool for pool, _ in truth}
    assert len({provider for _, provider in truth}) == len(lab.layout.providers)


def test_queue_gauges_are_scraped_for_every_instance(lab: Any) -> None:
    _require_prometheus(lab)
    lab_monitoring.wait_for_targets(lab.layout.namespace)
    result = lab_monitoring.query(lab.layout.namespace, 'mailinfra_queue_messages{queue="deferred"}')
    instances = {r["metric"]["instance"] for r in result}
    assert {f"postfix-{p.name}" for p in lab.plan.pools if "mta1" in p.hosts} | {"postfix"} <= instances


_HTTP_PROBE = """
import json, socket, sys
source, address, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
try:
    with socket.create_connection((address, port), timeout=2, source_address=(source, 0)) as s:
        s.sendall(b"GET /metrics HTTP/1.0\\r\\nHost: x\\r\\n\\r\\n")
        s.settimeout(5)
        print(json.dumps({"result": "open", "status": s.recv(64).decode(errors="replace").split("\\r\\n")[0]}))
except socket.timeout:
    print(json.dumps({"result": "timeout"}))
except OSError as error:
    print(json.dumps({"result": "error", "error": str(error)}))
"""


def _http_probe(lab: Any, source: str, address: str) -> dict[str, str]:
    done = subprocess.run(in_namespace(lab.layout.namespace, [sys.executable, "-c", _HTTP_PROBE, source, address,
                                                              str(EXPORTER_PORT)]),
                          capture_output=True, text=True, check=False, timeout=30)
    result: dict[str, str] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


MONITORING_ADDRESS = "10.20.250.9"  # what AWS would assign the monitoring host's interface (its subnet's)


def test_the_exporter_port_admits_the_monitoring_host_only(lab: Any) -> None:
    """GIVEN the deployment with a monitoring host (monitoring.host set) as the lab's firewall WHEN a client
    connects to mta1's exporter THEN from the monitoring host's interface it answers HTTP 200, from the
    Internet (the outsider) the SYN is dropped; and without a monitoring host nobody is admitted."""
    exporter = lab_monitoring.exporter_addresses(lab.plan, lab.layout.runtime_dir / "root")["mta1"]
    namespace = lab.layout.namespace
    state = lab_module.require_running(lab)
    plain = _deploy()

    def monitored(config: dict[str, Any]) -> None:
        config["monitoring"] = {**config.get("monitoring", {}), "host": {"instance_type": "t3.small"}}

    with_host = _deploy(monitored)

    def assign(resource: Resource) -> Resource:
        if resource.name != "monitoring-eni":
            return resource
        return dataclasses.replace(resource, outputs={**resource.outputs, "privateIp": MONITORING_ADDRESS,
                                                      "privateIps": [MONITORING_ADDRESS]})

    deployed = dataclasses.replace(with_host, resources=tuple(assign(r) for r in with_host.resources))
    assert any(r.name == "monitoring-eni" for r in deployed.resources)
    subprocess.run(in_namespace(namespace, ["ip", "addr", "add", f"{MONITORING_ADDRESS}/32", "dev",
                                            state.interface]), check=True, capture_output=True)
    try:
        lab_module.install_firewall(lab, deployed)
        assert _http_probe(lab, MONITORING_ADDRESS, exporter) == {"result": "open", "status": "HTTP/1.0 200 OK"}
        assert _http_probe(lab, OUTSIDER_ADDRESS, exporter)["result"] == "timeout"
        lab_module.install_firewall(lab, plain)
        # The deployment without a monitoring host opens the port to nobody.
        assert _http_probe(lab, MONITORING_ADDRESS, exporter)["result"] == "timeout"
    finally:
        lab_module.install_firewall(lab, plain)
        subprocess.run(in_namespace(namespace, ["ip", "addr", "del", f"{MONITORING_ADDRESS}/32", "dev",
                                                state.interface]), check=False, capture_output=True)
