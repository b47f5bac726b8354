"""Each host's instance role, as the deployment declares it, against moto's IAM enforcement: a host reads its own
SSM parameters and its own config manifest, and is refused every other host's (prod: 8 hosts).

The roles, their RolePolicy documents and instance profiles, the parameters and the bundle objects are the
resources `pulumi up` would create (mailinfra.deployment.program), loaded into a moto server that checks each
request signed with a role session's keys against that role's policies (moto docs/iam.rst). An AWS request
that no statement allows is denied: implicit deny (IAM User Guide, "Policy evaluation logic"); S3 answers
GetObject with 403 AccessDenied, SSM GetParameter with 403 (AccessDeniedException on AWS).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from mailinfra.deployment import aws_world
from mailinfra.deployment.program import Deployment, Resource

pytestmark = pytest.mark.slow
REGION = "us-east-1"


def _deploy(stack: str, keys_dir: Path) -> Deployment:
    from mailinfra.lab.deployment import deploy_lab
    from mailinfra.lab.keys import generate_lab_keys
    from mailinfra.lab.lab import route_credentials
    from mailinfra.model.load import load_stack
    from mailinfra.plan.build import build_plan

    plan = build_plan(load_stack(stack), dt.date(2026, 12, 1))
    markers, _ = route_credentials(plan)
    return deploy_lab(plan, generate_lab_keys(plan, keys_dir), markers)


@pytest.fixture(scope="module")
def prod(tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    return _deploy("prod", tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A moto server for the module, stopped by its PID."""
    started = aws_world.start_moto(tmp_path_factory.mktemp("moto") / "moto.log")
    try:
        yield started
    finally:
        aws_world.stop_moto(started.pid)


@pytest.fixture
def world(server: Any) -> Any:
    """The server emptied and unchecked; the test loads a deployment into it."""
    aws_world.reset_world(server)
    return server


def _reads(server: Any, access: aws_world.HostAccess, deployment: Deployment) -> dict[str, str]:
    """What each SSM parameter and bundle object read with the host's role gives: 'ok' or the error code."""
    ssm = aws_world._client("ssm", server.url, REGION, access.credentials)
    s3 = aws_world._client("s3", server.url, REGION, access.credentials)
    result = {}
    for parameter in deployment.of_type("aws:ssm/parameter:Parameter"):
        name = parameter.inputs["name"]
        try:
            value = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
            result[name] = "ok" if value == parameter.inputs["value"] else "wrong value"
        except ClientError as error:
            result[name] = str(error.response["ResponseMetadata"]["HTTPStatusCode"])
    for obj in deployment.of_type("aws:s3/bucketObjectv2:BucketObjectv2"):
        try:
            body = s3.get_object(Bucket=obj.inputs["bucket"], Key=obj.inputs["key"])["Body"].read()
            result[obj.inputs["key"]] = "ok" if body.decode() == obj.inputs["content"] else "wrong content"
        except ClientError as error:
            result[obj.inputs["key"]] = error.response["Error"]["Code"]
    return result


def _own(host: str, name: str) -> bool:
    # Parameters: /mailinfra/<env>/<host>/...; objects: hosts/<host>/bundle.json (the deployment's names), and
    # the host services' code/<sha256>.json, which every host reads (ConfigBundle, mailinfra.mta.host_code).
    if name.startswith("code/"):
        return True
    return name.split("/")[3] == host if name.startswith("/") else name.split("/")[1] == host


def test_every_host_reads_its_own_secrets_and_manifest_and_no_other_hosts(world: Any, prod: Deployment) -> None:
    hosts = aws_world.load_world(world, prod, REGION)
    assert len(hosts) == 8
    for host, access in hosts.items():
        reads = _reads(world, access, prod)
        own = {n: r for n, r in reads.items() if _own(host, n)}
        other = {n: r for n, r in reads.items() if not _own(host, n)}
        assert own and set(own.values()) == {"ok"}, (host, own)
        assert other and set(other.values()) <= {"403", "AccessDenied"}, (host, other)


def _widened(deployment: Deployment) -> Deployment:
    """The deployment with each own-secrets policy granting the environment's whole parameter path."""
    def widen(resource: Resource) -> Resource:
        if resource.type != "aws:iam/rolePolicy:RolePolicy" or not resource.name.endswith("-own-secrets"):
            return resource
        document = json.loads(resource.inputs["policy"])
        document["Statement"][0]["Resource"] = "arn:aws:ssm:us-east-1:123456789012:parameter/mailinfra/prod/*"
        return replace(resource, inputs={**resource.inputs, "policy": json.dumps(document)})

    return replace(deployment, resources=tuple(widen(r) for r in deployment.resources))


def test_a_policy_granting_the_whole_path_lets_a_host_read_another_hosts_key(world: Any, prod: Deployment) -> None:
    """The check above is moto's enforcement of the policies' resources, not a refusal of everything: with the
    own-secrets policy widened to /mailinfra/prod/*, tx-a reads tx-b's DKIM key (and still not tx-b's object)."""
    access = aws_world.load_world(world, _widened(prod), REGION)["tx-a"]
    reads = _reads(world, access, prod)
    tx_b = {n: r for n, r in reads.items() if _own("tx-b", n)}
    assert {r for n, r in tx_b.items() if n.startswith("/")} == {"ok"}
    assert tx_b["hosts/tx-b/bundle.json"] == "AccessDenied"
