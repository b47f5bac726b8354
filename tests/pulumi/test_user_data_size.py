"""EC2 accepts at most 16 KB of user data (after base64 decoding); bigger hosts fail at `pulumi up`."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest

from tests.pulumi.conftest import STACKS, resources_of

EC2_USER_DATA_LIMIT = 16 * 1024  # EC2 User Guide: "User data is limited to 16 KB, in raw form"


def user_data_bytes(inputs: dict[str, Any]) -> int:
    if inputs.get("userDataBase64"):
        return len(base64.b64decode(inputs["userDataBase64"]))
    return len(str(inputs.get("userData", "")).encode())


# The rendered files and everything else the plan changes travel in each host's config manifest (S3); the
# user data is the static bootstrap and the apply program (gzip-compressed when over the limit raw).
@pytest.mark.parametrize("stack", STACKS)
def test_every_instance_user_data_fits_ec2_limit(stack: str, mock_runs: Callable[[str], dict[str, Any]]) -> None:
    """Every instance's user data, as sent to EC2, is at most 16 KB."""
    instances = resources_of(mock_runs(stack), "aws:ec2/instance:Instance")
    assert instances
    sizes = {r["name"]: user_data_bytes(r["inputs"]) for r in instances}
    assert all(size <= EC2_USER_DATA_LIMIT for size in sizes.values()), sizes
