"""The cost's quantities are what the program really creates: its EC2 instances, EBS volumes and Elastic IPs."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from mailinfra.cost import cost_plan, usage_of
from mailinfra.model.load import load_stack
from mailinfra.plan import Plan
from tests.pulumi.conftest import resources_of

HOURS = 730  # AWS prices an always-on month as 730 hours


@pytest.mark.parametrize("stack", ["dev"])
def test_cost_quantities_match_the_programs_resources(stack: str, mock_runs: Callable[[str], dict[str, Any]],
                                                      plans: Callable[[str], Plan]) -> None:
    """EC2 instance-hours by type, EBS GB (spool volumes + root block devices) and EIP-hours equal the resources."""
    run = mock_runs(stack)
    loaded = load_stack(stack)
    lines = cost_plan(loaded, plans(stack), usage_of(loaded)).estimate.lines
    instances = resources_of(run, "aws:ec2/instance:Instance")
    by_type = Counter(r["inputs"]["instanceType"] for r in instances)
    ec2 = {line.item.split(" x ")[0]: line.quantity for line in lines if line.component == "EC2"}
    assert ec2 == {t: n * HOURS for t, n in by_type.items()}
    spool = sum(r["inputs"]["size"] for r in resources_of(run, "aws:ebs/volume:Volume"))
    root = sum(r["inputs"]["rootBlockDevice"]["volumeSize"] for r in instances)
    assert [line.quantity for line in lines if line.component == "EBS"] == [spool + root]
    eips = resources_of(run, "aws:ec2/eip:Eip")
    assert [line.quantity for line in lines if line.component == "Public IPv4"] == [len(eips) * HOURS]
