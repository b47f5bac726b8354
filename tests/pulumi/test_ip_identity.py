"""An IP's resources are keyed by its name: adding, removing or renaming one IP leaves every other IP's
resources (above all its EipAssociation, whose private address is ForceNew) exactly as they were."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from mailinfra.model.load import STACKS_DIR
from mailinfra.review.resources import ResourceChange, diff_resources
from tests.pulumi.conftest import ROOT, resources_of

EIP = "aws:ec2/eip:Eip"
ASSOCIATION = "aws:ec2/eipAssociation:EipAssociation"
PER_IP_TYPES = {EIP, ASSOCIATION, "aws:ec2/eipDomainName:EipDomainName", "aws:route53/record:Record"}


def _run(tmp: Path, edit: Any = None) -> dict[str, Any]:
    """dev as the review runs it (mock ids included), its `mailinfra:pools` passed through `edit` first."""
    data = yaml.safe_load((STACKS_DIR / "Pulumi.dev.yaml").read_text(encoding="utf-8"))
    if edit is not None:
        edit(data["config"]["mailinfra:pools"])
    (tmp / "Pulumi.dev.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "mailinfra.review.program", "dev", str(tmp)], cwd=ROOT,
                          capture_output=True, text=True, timeout=180, check=False)
    run = json.loads(done.stdout.strip().splitlines()[-1])
    assert "error" not in run, run.get("error")
    return dict(run)


def _associations(run: dict[str, Any]) -> dict[str, str]:
    return {a["name"]: a["inputs"]["privateIpAddress"] for a in resources_of(run, ASSOCIATION)}


def _own(resource: dict[str, Any] | ResourceChange, ip: str) -> bool:
    """The resource belongs to IP `ip`: named `<pool or host>-<ip>[-...]`, or a DNS record of its
    default HELO name `<ip>.<sending domain>` (the HELO's SPF TXT, keyed by DNS name)."""
    name = resource["name"] if isinstance(resource, dict) else resource.name
    return name.endswith(f"-{ip}") or f"-{ip}-" in name or f"-{ip}." in name


def _adopt_mc2(pools: dict[str, Any]) -> None:
    # A warmed IP with reputation: adopted by allocation id, its address known.
    pools["mkt-cold"]["ips"]["mc2"] = {"address": "192.0.2.77", "allocation_id": "eipalloc-0a1b2c3d4e5f60099",
                                       "warmup": {"warmed": True}}


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _run(tmp_path_factory.mktemp("ip-identity-base"), _adopt_mc2)


def test_adding_an_ip_changes_no_other_ips_private_address(base, tmp_path):
    """GIVEN dev WHEN tx3 joins the tx pool THEN every existing association keeps its private address
    and only tx3's own resources are added."""
    def add_tx3(pools: dict[str, Any]) -> None:
        _adopt_mc2(pools)
        pools["tx"]["ips"]["tx3"] = {}

    head = _run(tmp_path, add_tx3)
    before, after = _associations(base), _associations(head)
    assert set(after) - set(before) == {"host-mta1-tx3"}
    assert {name: after[name] for name in before} == before
    assert after["host-mta1-tx3"] not in before.values()
    changes = diff_resources(base["resources"], head["resources"])
    assert {c.name for c in changes if c.change == "added"} == {
        r["name"] for r in head["resources"] if _own(r, "tx3") and not r["component"]}
    assert not [c for c in changes if c.change in {"replaced", "removed"}]


def test_removing_a_warmed_ip_removes_only_its_own_resources(base, tmp_path):
    """GIVEN dev with warmed, adopted mc2 WHEN mc2 leaves the stack THEN only mc2's resources go (its EIP
    is protected and retained, never released) and every other association is unchanged."""
    head = _run(tmp_path, lambda pools: pools["mkt-cold"]["ips"].pop("mc2"))
    eip = next(r for r in resources_of(base, EIP) if r["name"] == "ip-mc2")
    assert eip["protect"] and eip["retain_on_delete"] and eip["import_id"] == "eipalloc-0a1b2c3d4e5f60099"
    before, after = _associations(base), _associations(head)
    assert set(before) - set(after) == {"host-mta1-mc2"}
    assert after == {name: address for name, address in before.items() if name != "host-mta1-mc2"}
    changes = diff_resources(base["resources"], head["resources"])
    removed = {c.name for c in changes if c.change == "removed"}
    assert removed == {r["name"] for r in base["resources"] if _own(r, "mc2") and not r["component"]}
    assert {"ip-mc2", "host-mta1-mc2", "ip-mc2-ptr"} <= removed
    assert not [c for c in changes if c.change in {"replaced", "added"}]


def test_a_renamed_ip_keeps_every_per_ip_resource_through_aliases(base, tmp_path):
    """GIVEN dev WHEN bk2 becomes bulk2 (previous_names: [bk2]) THEN each per-IP resource of bulk2 aliases
    bk2's URN, nothing of it is added or removed, and its association keeps its private address."""
    def rename(pools: dict[str, Any]) -> None:
        _adopt_mc2(pools)
        ips = pools["bulk"]["ips"]
        ips["bulk2"] = {**ips.pop("bk2"), "previous_names": ["bk2"]}

    head = _run(tmp_path, rename)
    old_urns = {r["urn"] for r in base["resources"]}
    new_urns = {r["urn"] for r in head["resources"]}
    renamed = [r for r in head["resources"]
               if _own(r, "bulk2") and r["type"] in PER_IP_TYPES and not r["name"].startswith("dns-")]
    assert {r["type"] for r in renamed} == PER_IP_TYPES
    for resource in renamed:
        scope = resource["urn"].rsplit("::", 1)[0]
        resolved = {f"{scope}::{alias}" for alias in resource["aliases"]} & (old_urns - new_urns)
        assert len(resolved) == 1, (resource["name"], resource["aliases"])
        assert next(iter(resolved)).rsplit("::", 1)[1].replace("bk2", "bulk2") == resource["name"]
    changes = diff_resources(base["resources"], head["resources"])
    # The default HELO follows the name (bk2.<domain> -> bulk2.<domain>): its SPF TXT is another RRset.
    assert {(c.change, c.name) for c in changes if c.change in {"added", "removed"}} == {
        ("removed", "dns-txt-bk2.reengage.example.com"), ("added", "dns-txt-bulk2.reengage.example.com")}
    by_name = {c.name: c for c in changes}
    assert by_name["ip-bulk2"].old_name == "ip-bk2"
    assert by_name["host-mta1-bulk2"].change == "renamed"  # same EIP, same private address
    assert _associations(head)["host-mta1-bulk2"] == _associations(base)["host-mta1-bk2"]
    assert not [c for c in changes if c.change == "replaced" and c.type != "aws:route53/record:Record"]
