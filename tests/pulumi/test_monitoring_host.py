"""The monitoring host under the mock runtime: its instance installs Debian's prometheus and
prometheus-alertmanager with the plan's files, and each MTA host's exporter port is open to the monitoring
host's group only (a rule naming a group admits the interfaces that carry it: VPC User Guide, "Security group
rules"), never to a CIDR, let alone 0.0.0.0/0."""

from __future__ import annotations

import base64
import gzip
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.pulumi.conftest import generate_keys, preview_config, resources_of, run_mock
from tests.pulumi.test_program import _with_keys

INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
GROUP = "aws:ec2/securityGroup:SecurityGroup"
INSTANCE = "aws:ec2/instance:Instance"
EXPORTER_PORT = 9465
MONITORING = {"host": {"instance_type": "t3.small"},
              "routing": {"webhook_urls": ["https://hooks.example.com/mailinfra"]}}


@pytest.fixture(scope="module")
def run(plans: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """`pulumi up` (mock) of dev with real DKIM keys (up refuses placeholders) and a monitoring host."""
    plan = plans("dev")
    config, secret_keys = _with_keys("dev", plan, generate_keys(plan))
    config = {**config, "mailinfra:monitoring": json.dumps(MONITORING)}
    result = run_mock("dev", tmp_path_factory.mktemp("monitoring"), config, secret_keys, up=True)
    assert "error" not in result, result
    return result


def _by_name(run: dict[str, Any], token: str) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in resources_of(run, token)}


def test_the_exporter_port_is_open_only_from_the_monitoring_group(run: dict[str, Any]) -> None:
    groups = _by_name(run, GROUP)
    monitoring_id = groups["monitoring-sg"]["outputs"]["id"]
    mta_id = groups["host-mta1-sg"]["outputs"]["id"]
    exporter_rules = [r for r in resources_of(run, INGRESS)
                      if r["inputs"].get("fromPort") == EXPORTER_PORT or r["inputs"].get("toPort") == EXPORTER_PORT]
    assert exporter_rules, "no rule opens the exporter port"
    for rule in exporter_rules:
        inputs = rule["inputs"]
        assert inputs["securityGroupId"] == mta_id
        assert inputs["referencedSecurityGroupId"] == monitoring_id
        assert "cidrIpv4" not in inputs and "prefixListId" not in inputs
    # Nothing else admits the port: no rule of the MTA's group that covers 9465 by a range or all protocols.
    for rule in resources_of(run, INGRESS):
        inputs = rule["inputs"]
        if inputs["securityGroupId"] != mta_id or rule in exporter_rules:
            continue
        covers = inputs["ipProtocol"] == "-1" or inputs["fromPort"] <= EXPORTER_PORT <= inputs["toPort"]
        assert not covers, rule["name"]


def test_the_monitoring_host_installs_prometheus_with_the_plan_s_files(run: dict[str, Any]) -> None:
    instance = _by_name(run, INSTANCE)["monitoring-instance"]
    document = yaml.safe_load(gzip.decompress(base64.b64decode(instance["inputs"]["userDataBase64"])).decode())
    assert {"prometheus", "prometheus-alertmanager"} <= set(document["packages"])
    files = {f["path"]: f["content"] for f in document["write_files"]}
    config = yaml.safe_load(files["/etc/prometheus/prometheus.yml"])
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "mailinfra-mta")
    targets = {c["labels"]["host"]: c["targets"][0] for c in job["static_configs"]}
    # The exporter's private address: the one the MTA host's manifest makes the exporter listen on.
    assert set(targets) == {"mta1"}
    mta1_eni = _by_name(run, "aws:ec2/networkInterface:NetworkInterface")["host-mta1-eni"]
    assert targets["mta1"].rpartition(":")[0] in mta1_eni["inputs"]["privateIps"]
    assert "/etc/prometheus/mailinfra-rules.yml" in files
    assert "https://hooks.example.com/mailinfra" in files["/etc/prometheus/alertmanager.yml"]


def test_the_monitoring_host_sends_only_to_the_exporters_and_apt(run: dict[str, Any]) -> None:
    monitoring_id = _by_name(run, GROUP)["monitoring-sg"]["outputs"]["id"]
    egress = {(r["inputs"]["fromPort"], r["inputs"]["cidrIpv4"]) for r in resources_of(run, EGRESS)
              if r["inputs"]["securityGroupId"] == monitoring_id}
    assert (443, "0.0.0.0/0") in egress
    scraped = {cidr for port, cidr in egress if port == EXPORTER_PORT}
    assert scraped and all(cidr.endswith("/32") for cidr in scraped)
    assert not [r for r in resources_of(run, INGRESS) if r["inputs"]["securityGroupId"] == monitoring_id]


def test_no_monitoring_host_without_monitoring_host_config(tmp_path: Path) -> None:
    config, secret_keys = preview_config("dev")
    result = run_mock("dev", tmp_path, config, secret_keys)
    assert "error" not in result, result
    assert not [r for r in resources_of(result, INSTANCE) if r["name"].startswith("monitoring")]
