"""A lab host is provisioned with its own instance role's permissions, as on EC2: a role policy the deployment
lacks fails `lab up` in one line.

An identity-based policy is the only grant a role session has here; with the host's own-secrets RolePolicy
gone, no statement allows ssm:GetParameter on its parameters, so AWS denies the read (implicit deny: IAM
User Guide, "Policy evaluation logic"), and the host's mailinfra-apply-config stops before writing a file.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import pytest

from mailinfra.lab import lab as lab_module
from mailinfra.lab.deployment import deploy_lab
from mailinfra.lab.keys import generate_lab_keys
from mailinfra.lab.layout import plan_layout
from mailinfra.lab.namespace import LabError, namespace_exists
from mailinfra.model.load import load_stack
from mailinfra.plan.build import build_plan
from tests.lab.conftest import require_lab

pytestmark = [pytest.mark.lab, pytest.mark.slow]
NAMESPACE = "mi-test-iam"


def test_a_host_whose_role_lost_its_own_secrets_policy_fails_provisioning_in_one_line(tmp_path: Path) -> None:
    require_lab()
    as_of = lab_module.first_day("dev", "warmed", start=dt.date(2026, 11, 29))
    plan = build_plan(load_stack("dev"), as_of)
    markers, _ = lab_module.route_credentials(plan)
    deployment = deploy_lab(plan, generate_lab_keys(plan, tmp_path / "keys"), markers)
    policy = deployment.named("host-mta1-own-secrets")
    assert policy.type == "aws:iam/rolePolicy:RolePolicy"
    broken = replace(deployment, resources=tuple(r for r in deployment.resources if r is not policy))
    layout = plan_layout(plan, tmp_path / "build", Path("/run/mailinfra-lab-test-iam"), namespace=NAMESPACE)
    with pytest.raises(LabError) as caught:
        lab_module.up(lab_module.Lab(plan, layout), deployment=broken)
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message
    assert message.startswith("host mta1: provisioning with role host-mta1-role failed: "), message
    assert "SSM parameter /mailinfra/dev/mta1/" in message, message
    # The failed lab is torn down (no MAILINFRA_LAB_KEEP): nothing of it stays.
    assert not namespace_exists(NAMESPACE)
    assert not layout.runtime_dir.exists()
