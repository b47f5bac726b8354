"""Upgrading hosts that are already deployed: their addresses and bootstrap change only when the operator says so.

Pulumi facts these rest on: the AWS provider replaces an ENI whose primary private address leaves its
`private_ips` (terraform-provider-aws vpc_network_interface.go, CustomizeDiff ForceNewIf "private_ips"),
and the instance bound to it with it; and the engine builds a replacement from the old values of ignored
inputs (pulumi/pulumi#2657), so an instance that ignores its user data relaunches with the old one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mailinfra.model.load import decode_pulumi_config, validate_config
from mailinfra.plan.build import build_plan
from mailinfra.plan.private_addresses import private_addresses, subnet_address_keys
from tests.pulumi.conftest import preview_config, resources_of, run_mock

INSTANCE = "aws:ec2/instance:Instance"
ENI = "aws:ec2/networkInterface:NetworkInterface"


def _run_with_host(tmp_path: Path, **settings: Any) -> tuple[Any, dict[str, Any]]:
    config, secret_keys = preview_config("dev")
    hosts = json.loads(config["mailinfra:hosts"])
    hosts["mta1"].update(settings)
    config["mailinfra:hosts"] = json.dumps(hosts)
    raw = decode_pulumi_config(lambda key: config.get(f"mailinfra:{key}"))
    plan = build_plan(validate_config(raw, "dev", "test"))
    return plan, run_mock("dev", tmp_path, config, secret_keys)


def test_an_unsalted_host_keeps_the_addresses_it_was_deployed_with(tmp_path: Path) -> None:
    """GIVEN mta1 deployed before the salt (`address_salt: ""`) WHEN planned now THEN its ENI asks for exactly
    the unsalted addresses, so no address leaves the set and the provider replaces nothing."""
    plan, run = _run_with_host(tmp_path, address_salt="")
    host = plan.host("mta1")
    eni = next(r for r in resources_of(run, ENI) if r["name"] == "host-mta1-eni")
    old = private_addresses("10.0.0.0/20", subnet_address_keys(plan, "mta1"), host.ips)
    assert sorted(eni["inputs"]["privateIps"]) == sorted(old.values())


def test_a_launched_host_ignores_bootstrap_changes(mock_runs: Any) -> None:
    """The default: user data and its tag are ignored, and never a replace-on-change."""
    instance = next(r for r in resources_of(mock_runs("dev"), INSTANCE) if r["name"] == "host-mta1-instance")
    assert {"userData", "userDataBase64"} <= set(instance["ignore_changes"])
    assert not instance["inputs"].get("userDataReplaceOnChange")


def test_a_host_set_to_the_current_bootstrap_is_replaced_by_a_change(tmp_path: Path) -> None:
    """GIVEN `bootstrap: current` on mta1 THEN its user data is not ignored and a change replaces it (a first
    boot that runs the new bootstrap), instead of the stop/start cloud-init would not act on."""
    _, run = _run_with_host(tmp_path, bootstrap="current")
    instance = next(r for r in resources_of(run, INSTANCE) if r["name"] == "host-mta1-instance")
    assert not {"userData", "userDataBase64"} & set(instance["ignore_changes"])
    assert instance["inputs"]["userDataReplaceOnChange"] is True
