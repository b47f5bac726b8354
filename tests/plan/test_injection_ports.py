"""A pool's injection port is a contract with the apps: stable when other pools come, go or move.

The apps connect to a pool's port on each of its hosts, and the security groups open exactly those ports
(mailinfra.mta.network): a port that moves breaks every app injecting there until it is reconfigured.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from mailinfra.errors import ConfigErrors
from mailinfra.model.load import STACKS_DIR, load_stack
from mailinfra.mta.postfix import injection_ports
from mailinfra.plan import build_plan
from mailinfra.plan.injection_ports import INJECTION_PORT_BASE, PORT_SPAN, plan_injection_ports

DEV = yaml.safe_load((STACKS_DIR / "Pulumi.dev.yaml").read_text())


def _ports(tmp: Path, mutate: Any) -> dict[str, int]:
    data = copy.deepcopy(DEV)
    mutate(data["config"]["mailinfra:pools"])
    path = tmp / "Pulumi.t.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return injection_ports(build_plan(load_stack(str(path))))


def _undeclared(pools: dict[str, Any]) -> None:
    for pool in pools.values():
        pool.pop("injection_port", None)


def test_moving_a_pool_first_leaves_every_port_where_it_was(tmp_path: Path) -> None:
    """GIVEN dev's pools without declared ports WHEN the last pool is moved to the top of the stack file (as
    an inserted pool would be) THEN no pool's port changes. Before, ports were 10025 + the position."""
    before = _ports(tmp_path, _undeclared)

    def last_first(pools: dict[str, Any]) -> None:
        _undeclared(pools)
        name = list(pools)[-1]
        moved = {name: pools.pop(name), **pools}
        pools.clear()
        pools.update(moved)

    assert _ports(tmp_path, last_first) == before
    assert len(set(before.values())) == len(before)


def test_a_new_pool_moves_no_other_pools_port() -> None:
    """Derived ports depend on the pool's own name (its first name: a rename keeps the port)."""
    pools = {name: (name, None) for name in ("tx", "mkt-active", "bulk")}
    before = plan_injection_ports(pools)
    after = plan_injection_ports({"aaa-new": ("aaa-new", None), **pools})
    assert {name: after[name] for name in pools} == before
    assert all(INJECTION_PORT_BASE <= port < INJECTION_PORT_BASE + PORT_SPAN for port in after.values())
    assert plan_injection_ports({"tx-renamed": ("tx", None)})["tx-renamed"] == before["tx"]


def test_a_declared_port_is_kept_and_derived_ports_avoid_it() -> None:
    derived = plan_injection_ports({"tx": ("tx", None)})["tx"]
    ports = plan_injection_ports({"tx": ("tx", None), "pinned": ("pinned", derived)})
    assert ports["pinned"] == derived and ports["tx"] != derived


def test_shipped_stacks_keep_the_ports_they_had() -> None:
    """dev/staging/prod declare the ports their apps already use (10025 + the position they had)."""
    for stack in ("dev", "staging", "prod"):
        plan = build_plan(load_stack(stack))
        assert injection_ports(plan) == {pool.name: 10025 + i for i, pool in enumerate(plan.pools)}


@pytest.mark.parametrize(("port", "expected"), [
    (10025, "a port no other pool uses (pool tx has it)"),
    (587, "a whole number of at least 1024"),  # the schema: clear of the primary's 25, 465 and 587
])
def test_a_colliding_or_reserved_port_is_one_line(port: int, expected: str, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    data = copy.deepcopy(DEV)
    data["config"]["mailinfra:pools"]["bulk"]["injection_port"] = port
    Path("Pulumi.t.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(ConfigErrors) as caught:
        load_stack("Pulumi.t.yaml")
    (line,) = str(caught.value).splitlines()
    assert line.endswith(f"mailinfra:pools.bulk.injection_port: received {port}, expected {expected}"), line
