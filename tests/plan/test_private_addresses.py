"""Private addresses derive from IP names inside the subnet: AWS's reserved addresses are never used,
collisions probe onward, and adding or removing one IP moves no other IP."""

from __future__ import annotations

import ipaddress
import random

import pytest

from mailinfra.errors import PlanError
from mailinfra.plan.private_addresses import assign_private_addresses


def test_addresses_avoid_the_four_first_and_the_last_address_of_the_subnet():
    """/29: 8 addresses, AWS keeps .0-.3 and .7, so 3 keys fill exactly .4-.6."""
    assigned = assign_private_addresses("10.1.2.0/29", ["a", "b", "c"])
    assert sorted(assigned.values(), key=ipaddress.IPv4Address) == ["10.1.2.4", "10.1.2.5", "10.1.2.6"]


def test_a_full_subnet_is_a_plan_error_naming_it():
    with pytest.raises(PlanError, match=r"subnet 10\.1\.2\.0/29: received 4 sending IPs, expected at most 3"):
        assign_private_addresses("10.1.2.0/29", ["a", "b", "c", "d"])


def test_the_result_does_not_depend_on_key_order():
    keys = [f"ip{i}" for i in range(40)]
    shuffled = random.Random(7).sample(keys, len(keys))
    assert assign_private_addresses("10.0.0.0/24", keys) == assign_private_addresses("10.0.0.0/24", shuffled)


@pytest.mark.parametrize("cidr", ["10.0.0.0/20", "172.31.16.0/20"])
def test_adding_or_removing_one_ip_moves_no_other(cidr):
    """GIVEN 60 IPs in a /20 WHEN one is added or one removed THEN every other keeps its address."""
    keys = [f"ip{i}" for i in range(60)]
    before = assign_private_addresses(cidr, keys)
    assert len(set(before.values())) == len(keys)
    network = ipaddress.IPv4Network(cidr)
    assert all(ipaddress.IPv4Address(a) in network for a in before.values())
    added = assign_private_addresses(cidr, [*keys, "ip-new"])
    assert {k: added[k] for k in keys} == before
    removed = assign_private_addresses(cidr, keys[1:])
    assert removed == {k: before[k] for k in keys[1:]}


def test_a_collision_probes_to_the_next_free_address():
    """In a /28 (11 usable) 11 keys must all land somewhere distinct: probing resolves every collision."""
    keys = [f"k{i}" for i in range(11)]
    assigned = assign_private_addresses("10.9.0.0/28", keys)
    assert sorted(assigned.values(), key=ipaddress.IPv4Address) == [f"10.9.0.{i}" for i in range(4, 15)]


def test_without_a_salt_the_derivation_is_the_earlier_one():
    """An empty salt is the unsalted hash of earlier versions (sha256 of the key): pinned, so an existing
    deployment that keeps it keeps its addresses."""
    assert assign_private_addresses("10.0.0.0/20", ["tx1", "tx2", "mk1"]) == {
        "mk1": "10.0.0.32", "tx1": "10.0.2.20", "tx2": "10.0.3.174"}


def test_two_stacks_sharing_a_subnet_and_ip_names_get_different_addresses():
    """GIVEN prod and staging with the same IP names in one subnet WHEN salted with <project>/<stack>
    THEN their addresses differ (unsalted they were equal, and AWS refuses an address another ENI of the
    subnet holds: PrivateIpAddressInUse)."""
    keys = ["tx1", "tx2", "mk1", "mk2", "bk1", "bk2", "ma1", "mc1"]
    assert assign_private_addresses("10.0.0.0/20", keys) == assign_private_addresses("10.0.0.0/20", keys)
    prod = assign_private_addresses("10.0.0.0/20", keys, "mailinfra/prod")
    staging = assign_private_addresses("10.0.0.0/20", keys, "mailinfra/staging")
    # A chance collision stays possible (two hashes meeting in 4,091 addresses); AWS then refuses the
    # second stack's `up` rather than silently sharing an address. These names do not meet.
    assert not set(prod.values()) & set(staging.values())


@pytest.mark.parametrize("salt", ["", "mailinfra/prod"])
def test_a_salt_keeps_adding_or_removing_one_ip_from_moving_another(salt):
    keys = [f"ip{i}" for i in range(60)]
    before = assign_private_addresses("10.0.0.0/20", keys, salt)
    assert {k: v for k, v in assign_private_addresses("10.0.0.0/20", [*keys, "new"], salt).items()
            if k != "new"} == before
    assert assign_private_addresses("10.0.0.0/20", keys[1:], salt) == {k: before[k] for k in keys[1:]}
