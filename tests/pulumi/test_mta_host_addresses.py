"""MtaHost user data and config manifest under the mock runtime: transports bind the private address paired
with their EIP, and the manifest (not the user data) carries those addresses and the postmulti instances."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from components.mta_host import bind_private_addresses
from mailinfra.errors import PlanError
from mailinfra.mta import opendkim
from mailinfra.mta.postfix import plan_instances
from tests.pulumi.conftest import manifest_files, manifest_of, resources_of, user_data_of

BIND = re.compile(r"-o smtp_bind_address=(\S+)")


def _cloud_config(run: dict[str, Any], host: str) -> dict[str, Any]:
    return dict(yaml.safe_load(user_data_of(run, host)))


def _bundle(run: dict[str, Any], host: str) -> dict[str, str]:
    """Path -> content of the rendered files in the host's config manifest."""
    return {path: f["content"] for path, f in manifest_files(run, host).items()}


@pytest.fixture(scope="module")
def dev_mta1(mock_runs, plans):
    run = mock_runs("dev")
    return plans("dev"), run, _cloud_config(run, "mta1")


def test_each_transport_binds_the_private_address_its_eip_is_associated_with(dev_mta1):
    plan, run, _ = dev_mta1
    associated = {a["name"].removeprefix("host-mta1-"): a["inputs"]["privateIpAddress"]
                  for a in resources_of(run, "aws:ec2/eipAssociation:EipAssociation")
                  if a["parent"] == "host-mta1"}
    assert set(associated) == set(plan.host("mta1").ips)
    assert len(set(associated.values())) == len(associated), "one private address per EIP"
    written = _bundle(run, "mta1")
    checked = 0
    for instance in plan_instances(plan, plan.host("mta1")):
        master = written[f"{instance.config_dir}/master.cf"]
        for transport in instance.transports:
            # GIVEN transport T of IP X WHEN the host boots THEN T binds the private address X's EIP maps to.
            service = re.search(rf"^{transport.name} unix .*\n((?:\s+-o .*\n)+)", master, re.MULTILINE)
            assert service, transport.name
            assert BIND.findall(service[1]) == [associated[transport.ip]], transport.name
            checked += 1
    assert checked


def test_no_planned_address_is_left_in_a_bind_position(dev_mta1):
    plan, run, _ = dev_mta1
    planned = {ip.address for ip in plan.ips}
    bound = [a for content in _bundle(run, "mta1").values() for a in BIND.findall(content)]
    assert bound
    assert not planned & set(bound)
    assert all(a.startswith("10.") for a in bound), bound  # the mock ENI's private range


def test_the_manifest_lists_every_postmulti_instance_and_each_ip_s_private_address(dev_mta1):
    """The instances the default main.cf registers and the addresses the transports bind are in the
    manifest (applied at boot and by mailinfra-refresh-config), not in the user data."""
    plan, run, _ = dev_mta1
    main_cf = _bundle(run, "mta1")["/etc/postfix/main.cf"]
    directories = re.search(r"^multi_instance_directories =(.*)$", main_cf, re.MULTILINE)
    assert directories and directories[1].split()
    manifest = manifest_of(run, "mta1")
    assert [i["config_dir"] for i in manifest["postfix_instances"]] == directories[1].split()
    associated = {a["inputs"]["privateIpAddress"] for a in resources_of(run, "aws:ec2/eipAssociation:EipAssociation")
                  if a["parent"] == "host-mta1"}
    assert set(manifest["addresses"]) == associated
    assert len(manifest["addresses"]) == len(plan.host("mta1").ips)
    text = user_data_of(run, "mta1")
    assert not [a for a in associated if a in text]
    assert "postfix-tx" not in text


def test_the_manifest_is_applied_after_the_packages_and_before_the_limits(dev_mta1):
    """runcmd runs after cloud-init installed the packages (their users own the keys); the warmup limits
    apply to the files the manifest wrote, once the services run."""
    _, run, cloud_config = dev_mta1
    assert not [f for f in cloud_config["write_files"] if f["path"] in _bundle(run, "mta1")]
    commands = [str(c) for c in cloud_config["runcmd"]]
    applied = next(i for i, c in enumerate(commands) if c.startswith("/usr/local/sbin/mailinfra-apply-config "))
    assert commands[applied].endswith(" --services start")
    assert applied < commands.index("systemctl start mailinfra-limits.service")
    assert applied > commands.index(f"usermod -aG {opendkim.SOCKET_GROUP} postfix")


def test_peers_keep_their_public_address_and_own_sources_bind_private():
    """PowerMTA: smtp-source-host binds the private address; a peer's <source/32> is the peer's EIP."""
    config = ("<source 127.0.0.1/32>\n</source>\n<source 198.51.100.7/32>\n</source>\n"
              "<virtual-mta a>\n    smtp-source-host 203.0.113.5 a.example.com\n</virtual-mta>\n")
    result = bind_private_addresses(config, {"203.0.113.5": "10.0.0.11"}, {"198.51.100.7": "54.1.2.3"})
    assert "smtp-source-host 10.0.0.11 a.example.com" in result
    assert "<source 54.1.2.3/32>" in result and "<source 127.0.0.1/32>" in result
    assert "203.0.113.5" not in result and "198.51.100.7" not in result


def test_a_bind_to_an_address_of_another_host_is_refused():
    with pytest.raises(PlanError, match=r"198\.51\.100\.9"):
        bind_private_addresses("x unix - - n - - smtp\n  -o smtp_bind_address=198.51.100.9\n",
                               {"203.0.113.5": "10.0.0.11"}, {})


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_each_eni_s_addresses_are_salted_with_project_and_stack(mock_runs, plans, stack):
    """Two stacks in one account and subnet must not derive the same private addresses: the ENI asks for
    the addresses derived with salt `<project>/<stack>` (the mock subnet is 10.0.0.0/20)."""
    from mailinfra.deployment.mock_runtime import PROJECT
    from mailinfra.plan.private_addresses import private_addresses, subnet_address_keys

    plan, run = plans(stack), mock_runs(stack)
    for host in plan.hosts:
        eni = next(r for r in resources_of(run, "aws:ec2/networkInterface:NetworkInterface")
                   if r["name"] == f"host-{host.name}-eni")
        keys = subnet_address_keys(plan, host.name)
        salted = private_addresses("10.0.0.0/20", keys, host.ips, f"{PROJECT}/{stack}")
        assert sorted(eni["inputs"]["privateIps"]) == sorted(salted.values()), host.name
        assert salted != private_addresses("10.0.0.0/20", keys, host.ips), host.name
