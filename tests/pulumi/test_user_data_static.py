"""Plan changes reach a host through its config manifest, never its EC2 user data: changing user data stops
and starts the instance (a sending host down), and cloud-init would not re-run to apply it anyway."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest

from mailinfra.deployment.mock_runtime import SECRET_MARKER
from mailinfra.dns.dkim import dkim_secret_key
from tests.pulumi.conftest import STACKS, manifest_of, preview_config, resources_of, run_mock, user_data_of

NEW_SELECTOR = "z2099a"


def add_ip_on_every_host(config: dict[str, str], secret_keys: list[str]) -> None:
    """One new IP per host, in the first pool that host serves."""
    pools = json.loads(config["mailinfra:pools"])
    for host in json.loads(config["mailinfra:hosts"]):
        pool = next(p for p in pools.values() if host in p["hosts"])
        pool["ips"][f"{host}-new1"] = {"host": host} if len(pool["hosts"]) > 1 else {}
    config["mailinfra:pools"] = json.dumps(pools)


def add_dkim_selector(config: dict[str, str], secret_keys: list[str]) -> None:
    """A new pending selector (the first step of a rotation) on every domain: a new key for the hosts."""
    domains = json.loads(config["mailinfra:domains"])
    for domain, settings in domains.items():
        settings["dkim"]["selectors"][NEW_SELECTOR] = {"state": "pending", "algorithm": "rsa-2048"}
        key = f"mailinfra:{dkim_secret_key(domain, NEW_SELECTOR)}"
        config[key] = f"{SECRET_MARKER} {key}"
        secret_keys.append(key)
    config["mailinfra:domains"] = json.dumps(domains)


def move_warmup_dates(config: dict[str, str], secret_keys: list[str]) -> None:
    """Every pool's warmup starts a week later: every host's limits calendar changes."""
    pools = json.loads(config["mailinfra:pools"])
    for pool in pools.values():
        start = dt.date.fromisoformat(pool["warmup"]["start"])
        pool["warmup"]["start"] = (start + dt.timedelta(days=7)).isoformat()
    config["mailinfra:pools"] = json.dumps(pools)


CHANGES = {"add-ip": add_ip_on_every_host, "add-dkim-selector": add_dkim_selector,
           "move-warmup": move_warmup_dates}


def _hosts(run: dict[str, Any]) -> list[str]:
    return sorted(r["name"].removeprefix("host-").removesuffix("-instance")
                  for r in resources_of(run, "aws:ec2/instance:Instance"))


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_plan_change_leaves_every_user_data_byte_identical_and_changes_the_manifest(
        stack: str, change: str, mock_runs: Callable[[str], dict[str, Any]], tmp_path) -> None:
    """GIVEN a stack WHEN an IP is added on each host / a DKIM selector is added / the warmup dates move
    THEN every host's user data is byte-identical, and the manifests carry the change."""
    before = mock_runs(stack)
    config, secret_keys = preview_config(stack)
    CHANGES[change](config, secret_keys)
    after = run_mock(stack, tmp_path, config, secret_keys)
    assert "error" not in after, after.get("error")
    hosts = _hosts(before)
    assert hosts and _hosts(after) == hosts
    for host in hosts:
        assert user_data_of(after, host) == user_data_of(before, host), host
    manifests = {host: (manifest_of(before, host), manifest_of(after, host)) for host in hosts}
    if change == "add-ip":
        for host, (old, new) in manifests.items():
            # The new IP's private address is to be put on the interface; the transports bind it.
            assert len(new["addresses"]) == len(old["addresses"]) + 1, host
            assert set(old["addresses"]) < set(new["addresses"]), host
    elif change == "add-dkim-selector":
        fetching = [h for h, (_, new) in manifests.items()
                    if any("/dkim/" in s["parameter"] and s["parameter"].endswith(f"/{NEW_SELECTOR}")
                           for s in new["secrets"])]
        assert fetching, "some host receives the new key"
        for host in fetching:
            old, new = manifests[host]
            assert len(new["secrets"]) > len(old["secrets"]), host
    else:
        for host, (old, new) in manifests.items():
            assert old["files"] != new["files"], host


@pytest.mark.parametrize("stack", STACKS)
def test_every_user_data_is_cloud_config_that_writes_the_same_apply_program(
        stack: str, mock_runs: Callable[[str], dict[str, Any]]) -> None:
    """Each host's user data parses as cloud-config, writes the repository's apply program and runs it at boot
    against the host's own manifest object."""
    import yaml

    from components.config_bundle import bundle_key
    from components.mta_host import apply_program

    run = mock_runs(stack)
    for host in _hosts(run):
        text = user_data_of(run, host)
        assert text.startswith("#cloud-config\n"), host
        cloud_config = yaml.safe_load(text)
        program = next(f for f in cloud_config["write_files"]
                       if f["path"] == "/usr/local/sbin/mailinfra-apply-config")
        assert program["content"] == apply_program(), host
        boot = [str(c) for c in cloud_config["runcmd"] if str(c).startswith("/usr/local/sbin/mailinfra-apply-config")]
        assert len(boot) == 1 and f" --key {bundle_key(host)} " in boot[0], (host, boot)
