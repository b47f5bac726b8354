"""The suppression resources under the mocks: the DynamoDB table (prod, store: dynamodb), the VERP secret
delivered to each Postfix host, and the hosts' suppression permissions (nothing more)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from components.suppression import LOOKUP_TABLE_ACTIONS, PROCESSOR_TABLE_ACTIONS, QUEUE_ACTIONS
from mailinfra.mta.enforcement import LOOKUP_UNIT
from mailinfra.mta.intake import PROCESSOR_UNIT, VERP_SECRET_FILE
from mailinfra.plan.model import Plan
from tests.pulumi.conftest import generate_keys, manifest_of, resources_of, run_mock
from tests.pulumi.test_program import _with_keys

TABLE = "aws:dynamodb/table:Table"


def test_prod_s_table_matches_the_store_and_is_protected(mock_runs: Callable[[str], dict[str, Any]]) -> None:
    """The table mailinfra.suppression.dynamodb_store reads and writes: partition key `pk` (S) only, TTL on
    `expires_at` (soft entries lapse), on-demand, point-in-time recovery, encrypted; protected and retained
    (pulumi destroy must never delete who may not be mailed)."""
    tables = resources_of(mock_runs("prod"), TABLE)
    assert len(tables) == 1
    table = tables[0]
    inputs = table["inputs"]
    assert inputs["name"] == "mailinfra-prod-suppression"
    assert inputs["hashKey"] == "pk" and "rangeKey" not in inputs
    assert inputs["attributes"] == [{"name": "pk", "type": "S"}]
    assert inputs["billingMode"] == "PAY_PER_REQUEST"
    assert inputs["ttl"] == {"attributeName": "expires_at", "enabled": True}
    assert inputs["pointInTimeRecovery"] == {"enabled": True}
    assert inputs["serverSideEncryption"] == {"enabled": True}
    assert table["protect"] and table["retain_on_delete"]


def test_an_embedded_store_has_no_table(mock_runs: Callable[[str], dict[str, Any]]) -> None:
    assert resources_of(mock_runs("dev"), TABLE) == []


def _suppression_policy(run: dict[str, Any], host: str) -> dict[str, Any] | None:
    for policy in resources_of(run, "aws:iam/rolePolicy:RolePolicy"):
        if policy["name"] == f"host-{host}-suppression":
            return dict(json.loads(policy["inputs"]["policy"]))
    return None


@pytest.fixture(scope="module")
def keyed_prod(plans: Callable[[str], Plan], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """prod as `pulumi up` (policies are computed from ARNs known only then)."""
    plan = plans("prod")
    config, secret_keys = _with_keys("prod", plan, generate_keys(plan))
    run = run_mock("prod", tmp_path_factory.mktemp("keyed-prod"), config, secret_keys, up=True)
    assert "error" not in run, run.get("error")
    return run


def test_hosts_may_use_the_table_and_queues_and_nothing_more(keyed_prod: dict[str, Any],
                                                             plans: Callable[[str], Plan]) -> None:
    """Bounce hosts: the processor's item actions on the table and the SES queues' drain actions, on those
    ARNs only; every other host: reads of the table only. No wildcard action or resource."""
    run, plan = keyed_prod, plans("prod")
    for host in plan.hosts:
        policy = _suppression_policy(run, host.name)
        assert policy is not None, host.name
        by_sid = {s["Sid"]: s for s in policy["Statement"]}
        table = by_sid.pop("SuppressionTable")
        assert table["Resource"] == "arn:aws:dynamodb:us-east-1:123456789012:table/mailinfra-prod-suppression"
        expected = PROCESSOR_TABLE_ACTIONS if host.accepts_bounces else LOOKUP_TABLE_ACTIONS
        assert set(table["Action"]) == set(expected), host.name
        if host.accepts_bounces:
            queues = by_sid.pop("SesEventQueues")
            assert set(queues["Action"]) == set(QUEUE_ACTIONS)
            assert queues["Resource"] and not any("*" in r for r in queues["Resource"])
        assert by_sid == {}, host.name
        for statement in policy["Statement"]:
            assert not any("*" in a for a in statement["Action"])
            assert "dynamodb:DeleteTable" not in statement["Action"]


def test_each_postfix_host_gets_its_own_verp_secret_and_runs_the_services(
        mock_runs: Callable[[str], dict[str, Any]], plans: Callable[[str], Plan]) -> None:
    """The stack secret reaches every Postfix host from an SSM parameter of its own (its role reads only
    its own), readable by the services' user; the lookup runs on every host, the processor on bounce hosts,
    both before Postfix."""
    for stack in ("dev", "prod"):
        run, plan = mock_runs(stack), plans(stack)
        for host in (h for h in plan.hosts if h.mta == "postfix"):
            manifest = manifest_of(run, host.name)
            secret = next(s for s in manifest["secrets"] if s["path"] == VERP_SECRET_FILE)
            assert secret["parameter"] == f"/mailinfra/{stack}/{host.name}/suppression/verp-secret"
            assert (secret["owner"], secret["mode"]) == ("root:postfix", "0640")
            services = manifest["services"]
            assert services.index(LOOKUP_UNIT) < services.index("postfix")
            assert (PROCESSOR_UNIT in services) == host.accepts_bounces
