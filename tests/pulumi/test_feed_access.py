"""The suppression change feed's port: the bounce hosts' groups admit it from the polling hosts' groups only
(private addresses), the pollers' egress allows it to them, and the hosts' manifests poll each other's feed
at the private address the bounce host's ENI carries, from their own (prod: two bounce hosts, tx-a and tx-b,
poll each other; bulk1 polls both; PowerMTA hosts run no lookup)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mailinfra.deployment.program import Deployment, deployment_config, run_deployment
from mailinfra.lab.firewall import plan_filters
from mailinfra.model.load import load_stack
from mailinfra.mta.enforcement import LOOKUP_CONFIG
from mailinfra.mta.intake import FEED_PORT
from mailinfra.plan import build_plan
from tests.pulumi.conftest import generate_keys

INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
SG = "aws:ec2/securityGroup:SecurityGroup"
BUNDLE = "aws:s3/bucketObjectv2:BucketObjectv2"


@pytest.fixture(scope="module")
def prod() -> Deployment:
    plan = build_plan(load_stack("prod"))
    keys = [(d, s, public, pem) for (d, s), (pem, public) in generate_keys(plan).items()]
    secrets = {r.password_secret: "test" for r in plan.routes if r.password_secret}
    config, secret_keys = deployment_config("prod", dkim_keys=keys, secrets=secrets)
    return run_deployment("prod", config, secret_keys)


def _group(deployment: Deployment, host: str) -> str:
    return str(deployment.named(f"host-{host}-sg").outputs["id"])


def _manifest(deployment: Deployment, host: str) -> dict[str, Any]:
    return dict(json.loads(deployment.named(f"host-{host}-bundle").inputs["content"]))


def test_the_feed_port_is_open_between_the_hosts_groups_only(prod: Deployment) -> None:
    """Every rule on 8425 names another host's group (never a CIDR: not from the Internet), an ingress on the
    bounce host's group paired with an egress on the poller's (AWS egress is exactly the rules)."""
    on_port = [r for r in prod.of_type(INGRESS, EGRESS) if r.inputs.get("fromPort") == FEED_PORT]
    assert all(r.inputs.get("cidrIpv4") is None and r.inputs.get("prefixListId") is None for r in on_port)
    pairs = {(r.type, r.inputs["securityGroupId"], r.inputs["referencedSecurityGroupId"]) for r in on_port}
    expected = set()
    for bounce, client in [("tx-a", "tx-b"), ("tx-a", "bulk1"), ("tx-b", "tx-a"), ("tx-b", "bulk1")]:
        expected.add((INGRESS, _group(prod, bounce), _group(prod, client)))
        expected.add((EGRESS, _group(prod, client), _group(prod, bounce)))
    assert pairs == expected
    assert len(on_port) == len(expected)
    assert prod.named("feed-tx-a-from-bulk1").inputs["toPort"] == FEED_PORT


def test_hosts_poll_the_feeds_at_the_bounce_hosts_private_addresses_from_their_own(prod: Deployment) -> None:
    """bulk1's lookup config names tx-a's and tx-b's first private addresses (the ones their manifests put on
    their ENIs), and its own first private address as the poll's source."""
    lookup = json.loads(next(f["content"] for f in _manifest(prod, "bulk1")["files"]
                             if f["path"] == f"/{LOOKUP_CONFIG}"))
    tx_a, tx_b = _manifest(prod, "tx-a")["addresses"][0], _manifest(prod, "tx-b")["addresses"][0]
    assert sorted(lookup["feeds"]) == sorted(f"http://{a}:{FEED_PORT}/v1/changes" for a in (tx_a, tx_b))
    assert lookup["source_address"] == _manifest(prod, "bulk1")["addresses"][0]
    own = json.loads(next(f["content"] for f in _manifest(prod, "tx-a")["files"] if f["path"] == f"/{LOOKUP_CONFIG}"))
    assert f"http://127.0.0.1:{FEED_PORT}/v1/changes" in own["feeds"]
    assert f"http://{tx_b}:{FEED_PORT}/v1/changes" in own["feeds"]


def test_the_lab_firewall_admits_the_feed_from_the_pollers_private_addresses_only(prod: Deployment) -> None:
    """The lab's translation of the groups (mailinfra.lab.firewall): tx-a's ingress on 8425 is exactly the
    private addresses of tx-b's and bulk1's ENIs, no PowerMTA host's and no CIDR wider than /32."""
    filters = {f.name: f for f in plan_filters(prod)}
    tx_a = filters["host-tx-a-eni"]
    admitted = {r.cidr for r in tx_a.ingress if r.from_port == FEED_PORT}
    expected = {f"{a}/32" for h in ("tx-b", "bulk1") for a in filters[f"host-{h}-eni"].addresses}
    assert admitted == expected
    pmta = {f"{a}/32" for h in ("pmta1", "pmta2", "pmta3", "pmta4", "bulk2")
            for a in filters[f"host-{h}-eni"].addresses}
    assert not admitted & pmta
