"""Every tagged resource names its Pulumi stack: what drift finds a stack's resources by (aws_check.py)."""

from __future__ import annotations

from typing import Any

import pytest

from mailinfra.drift.aws_check import STACK_TAG


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_tagged_resource_carries_the_stack_tag(stack: str, mock_runs: Any) -> None:
    """Tags are per resource in AWS (EC2 DescribeAddresses filters `tag:<key>` match the resource's own
    tags): a resource without the tag is invisible to a drift filter on it."""
    tagged = [r for r in mock_runs(stack)["resources"] if isinstance(r["inputs"].get("tags"), dict)]
    assert tagged
    assert [r["name"] for r in tagged if r["inputs"]["tags"].get(STACK_TAG) != stack] == []
