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
