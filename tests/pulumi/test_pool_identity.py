"""A pool rename or an IP moving to another pool keeps every EIP, A record and PTR: the same URN, or an
alias that resolves to the old one — also for a deployment made before EIPs were named by their IP.

URNs are computed here as the Pulumi engine does (pkg/resource/urn.go `NewURN`, step_generator.go):
`urn:pulumi:<stack>::<project>::<parent type chain>$<type>::<name>`, the chain being the parent's qualified
type (the root Stack left out); a `pulumi.Alias(name=...)` keeps the resource's parent, hence its chain.
So a URN holds a parent's *type*, never its name: naming a resource by its pool made the pool part of it.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.dns_records import record_slug
from mailinfra.model.load import STACKS_DIR, validate_config
from mailinfra.plan import build_plan
from mailinfra.review.resources import diff_resources
from tests.pulumi.conftest import ROOT

STACK = "dev"
PROJECT = yaml.safe_load((ROOT / "Pulumi.yaml").read_text(encoding="utf-8"))["name"]
POOL = "mailinfra:ip_pool:IpPool"
EIP, RECORD, PTR = "aws:ec2/eip:Eip", "aws:route53/record:Record", "aws:ec2/eipDomainName:EipDomainName"
DEV = yaml.safe_load((STACKS_DIR / f"Pulumi.{STACK}.yaml").read_text(encoding="utf-8"))

Edit = Callable[[dict[str, Any]], None]


def _config(edit: Edit | None) -> dict[str, Any]:
    data = copy.deepcopy(DEV)
    if edit is not None:
        edit(data["config"])
    return dict(data)


def _run(tmp: Path, edit: Edit | None = None) -> dict[str, Any]:
    """dev as the review runs it (the program under mocks), its `config:` passed through `edit`."""
    (tmp / f"Pulumi.{STACK}.yaml").write_text(yaml.safe_dump(_config(edit)), encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "mailinfra.review.program", STACK, str(tmp)], cwd=ROOT,
                          capture_output=True, text=True, timeout=180, check=False)
    run = json.loads(done.stdout.strip().splitlines()[-1])
    assert "error" not in run, run.get("error")
    return dict(run)


def _urn(chain: str, name: str) -> str:
    return f"urn:pulumi:{STACK}::{PROJECT}::{chain}::{name}"


def _chains(run: dict[str, Any]) -> dict[str, str]:
    """Recorded URN -> the qualified type the engine gives the resource (parent chain, root Stack left out)."""
    by_urn = {r["urn"]: r for r in run["resources"]}

    def chain(resource: dict[str, Any]) -> str:
        parent = by_urn.get(resource.get("parent_urn") or "")
        return f"{chain(parent)}${resource['type']}" if parent else str(resource["type"])

    return {urn: chain(r) for urn, r in by_urn.items()}


def _claims(run: dict[str, Any]) -> dict[str, set[str]]:
    """Engine URN of each per-IP resource -> the URNs it answers to: its own and its aliases'."""
    chains = _chains(run)
    return {_urn(chains[r["urn"]], r["name"]): {_urn(chains[r["urn"]], n) for n in (r["name"], *r["aliases"])}
            for r in run["resources"] if chains[r["urn"]] in {f"{POOL}${t}" for t in (EIP, RECORD, PTR)}}


def _legacy_urns(edit: Edit | None) -> set[str]:
    """What a deployment made before this change holds: `pool-<pool>-<ip>` (EIP), `...-<type>-<helo>`
    (A record), `...-ptr` (PTR), each under its IpPool (the old components/ip_pool.py naming)."""
    stack = validate_config({k.removeprefix("mailinfra:"): v for k, v in _config(edit)["config"].items()
                             if k.startswith("mailinfra:")}, STACK, "test")
    plan = build_plan(stack)
    records = {r.key: r for r in plan.records}
    urns = set()
    for ip in plan.ips:
        prefix = f"pool-{ip.pool}-{ip.name}"
        urns |= {_urn(f"{POOL}${EIP}", prefix), _urn(f"{POOL}${PTR}", f"{prefix}-ptr"),
                 _urn(f"{POOL}${RECORD}", f"{prefix}-{record_slug(records[f'A:{ip.helo}'])}")}
    return urns


def _rename_tx(config: dict[str, Any]) -> None:
    pools = config["mailinfra:pools"]
    pools["transactional"] = {**pools.pop("tx"), "previous_names": ["tx"]}
    for stream in config["mailinfra:streams"].values():  # the streams name their pool: the same change
        if stream.get("pool") == "tx":
            stream["pool"] = "transactional"


def _move_ma3(config: dict[str, Any]) -> None:
    # mkt-active -> mkt-winback: tiers of one stream, so its default HELO (ma3.<sending domain>) stays.
    pools = config["mailinfra:pools"]
    pools["mkt-winback"]["ips"]["ma3"] = pools["mkt-active"]["ips"].pop("ma3")


CHANGES: dict[str, Edit] = {"pool-rename": _rename_tx, "ip-move": _move_ma3}


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _run(tmp_path_factory.mktemp("pool-identity-base"))


def test_the_engine_urn_formula_reproduces_the_recorded_urns(base):
    """The URNs this file computes are the ones the run records (so the legacy URNs below are real)."""
    chains = _chains(base)
    eips = [r for r in base["resources"] if r["type"] == EIP]
    assert eips and {chains[r["urn"]] for r in eips} == {f"{POOL}${EIP}"}
    assert all(r["urn"].endswith(f"::{r['name']}") for r in eips)


def test_an_existing_deployment_keeps_every_per_ip_resource(base):
    """GIVEN a deployment named `pool-<pool>-<ip>` WHEN the IP-named program runs on the same config THEN
    every EIP, A record and PTR of it is claimed by exactly one resource's alias (nothing replaced)."""
    claims = _claims(base)
    for urn in _legacy_urns(None):
        assert sum(urn in c for c in claims.values()) == 1, urn


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_legacy_deployment_survives_the_change(change, tmp_path):
    """GIVEN a deployment named `pool-<pool>-<ip>` WHEN a pool is renamed (previous_names) or an IP moves
    to another pool THEN every old EIP, A record and PTR is claimed by one resource of the new run."""
    claims = _claims(_run(tmp_path, CHANGES[change]))
    unclaimed = [u for u in sorted(_legacy_urns(None)) if sum(u in c for c in claims.values()) != 1]
    assert not unclaimed


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_the_change_keeps_every_urn(base, change, tmp_path):
    """GIVEN dev WHEN a pool is renamed or an IP moves to another pool THEN every EIP, A record and PTR keeps
    its URN: nothing of them is added, removed or replaced, and no EIP is even renamed."""
    head = _run(tmp_path, CHANGES[change])
    assert set(_claims(head)) == set(_claims(base))
    changes = [c for c in diff_resources(base["resources"], head["resources"]) if c.type in {EIP, RECORD, PTR}]
    assert not [c for c in changes if c.change in {"added", "removed", "replaced"} or c.old_name]


def test_a_renamed_pool_aliases_its_component(tmp_path):
    """The IpPool component of a renamed pool aliases its old name (the parent the old children had)."""
    head = _run(tmp_path, _rename_tx)
    pool = next(r for r in head["resources"] if r["type"] == POOL and r["name"] == "pool-transactional")
    assert pool["aliases"] == ["pool-tx"]
