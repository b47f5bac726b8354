"""AWS drift against a moto server: a world provisioned as the plan says, then changed one way at a time."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import stat
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from mailinfra.cli import drift_cmd
from mailinfra.drift.aws_check import check_aws, expected_eip_tags, expected_ingress
from mailinfra.drift.model import Status
from mailinfra.drift.pulumi_check import check_pulumi
from mailinfra.model.load import load_stack
from mailinfra.plan.build import build_plan
from mailinfra.plan.model import Plan
from tests.drift.knot import free_port

PLAN = build_plan(load_stack("dev"), dt.date(2026, 12, 1))
REGION = "us-east-1"


@pytest.fixture(scope="module")
def moto_server() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def moto_endpoint(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh, empty AWS per test (moto keeps its state per process, so it is reset through its API)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    urllib.request.urlopen(urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST"), timeout=10)
    return moto_server


def tags(values: dict[str, str], kind: str) -> list[dict[str, Any]]:
    return [{"ResourceType": kind, "Tags": [{"Key": k, "Value": v} for k, v in values.items()]}]


def provision(ec2: Any, plan: Plan) -> dict[str, str]:
    """What `pulumi up` would have made (per components/): returns ip name -> allocation id."""
    subnet = ec2.describe_subnets()["Subnets"][0]
    allocations = {}
    for host in plan.hosts:
        host_tags = {"Name": host.fqdn, "host": host.name, "environment": plan.environment, "stack": plan.stack}
        group = ec2.create_security_group(
            GroupName=f"{host.name}-sg",
            Description="mta",
            VpcId=subnet["VpcId"],
            TagSpecifications=tags(host_tags, "security-group"),
        )["GroupId"]
        ec2.authorize_security_group_ingress(
            GroupId=group,
            IpPermissions=[
                {"IpProtocol": p, "FromPort": lo, "ToPort": hi, "IpRanges": [{"CidrIp": cidr}]}
                for p, lo, hi, cidr in sorted(expected_ingress(plan, host))
            ],
        )
        eni = ec2.create_network_interface(
            SubnetId=subnet["SubnetId"], Groups=[group], TagSpecifications=tags(host_tags, "network-interface")
        )
        ec2.run_instances(
            ImageId="ami-12c6146b",
            MinCount=1,
            MaxCount=1,
            InstanceType=host.instance_type,
            NetworkInterfaces=[{"DeviceIndex": 0, "NetworkInterfaceId": eni["NetworkInterface"]["NetworkInterfaceId"]}],
            TagSpecifications=tags(host_tags, "instance"),
        )
        for ip in (plan.ip(n) for n in host.ips):
            allocation = ec2.allocate_address(
                Domain="vpc", TagSpecifications=tags(expected_eip_tags(plan, ip), "elastic-ip")
            )["AllocationId"]
            ec2.associate_address(
                AllocationId=allocation, NetworkInterfaceId=eni["NetworkInterface"]["NetworkInterfaceId"]
            )
            allocations[ip.name] = allocation
    return allocations


def host_instance(ec2: Any) -> str:
    reservations = ec2.describe_instances(Filters=[{"Name": "tag:host", "Values": ["mta1"]}])["Reservations"]
    return str(reservations[0]["Instances"][0]["InstanceId"])


def host_group(ec2: Any) -> str:
    return str(
        ec2.describe_security_groups(Filters=[{"Name": "tag:host", "Values": ["mta1"]}])["SecurityGroups"][0]["GroupId"]
    )


Change = Callable[[Any, dict[str, str]], None]
CASES: list[tuple[str, Change, str, Status, str]] = [
    ("EIP released", lambda ec2, a: ec2.release_address(AllocationId=a["tx1"]), "eip:tx1", Status.MISSING, "tx1"),
    (
        "EIP retagged to another pool",
        lambda ec2, a: ec2.create_tags(Resources=[a["ma1"]], Tags=[{"Key": "pool", "Value": "mkt-cold"}]),
        "eip:ma1",
        Status.CHANGED,
        "tag pool: mkt-active -> mkt-cold",
    ),
    (
        "EIP disassociated",
        lambda ec2, a: ec2.disassociate_address(
            AssociationId=ec2.describe_addresses(AllocationIds=[a["bk2"]])["Addresses"][0]["AssociationId"]
        ),
        "eip:bk2",
        Status.CHANGED,
        "associated with mta1 -> nothing",
    ),
    (
        "instance stopped",
        lambda ec2, a: ec2.stop_instances(InstanceIds=[host_instance(ec2)]),
        "instance:mta1",
        Status.CHANGED,
        "state running -> stopped",
    ),
    (
        "submission opened to the world",
        lambda ec2, a: ec2.authorize_security_group_ingress(
            GroupId=host_group(ec2),
            IpPermissions=[
                {"IpProtocol": "tcp", "FromPort": 587, "ToPort": 587, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
            ],
        ),
        "sg:mta1",
        Status.EXTRA,
        "+tcp/587 from 0.0.0.0/0",
    ),
    (
        "unplanned EIP",
        lambda ec2, a: ec2.allocate_address(
            Domain="vpc", TagSpecifications=tags({"ip": "rogue", "environment": "dev", "stack": "dev"}, "elastic-ip")
        ),
        "eip:rogue",
        Status.EXTRA,
        "not in the plan",
    ),
]


def test_provisioned_world_has_no_drift(moto_endpoint: str) -> None:
    ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=moto_endpoint)
    provision(ec2, PLAN)
    results, failures = check_aws(PLAN, region=REGION, endpoint=moto_endpoint)
    assert failures == []
    assert [r for r in results if r.status is not Status.OK] == []
    assert len(results) == len(PLAN.ips) + 2 * len(PLAN.hosts)


def test_a_copied_stack_does_not_take_its_originals_resources(moto_endpoint: str) -> None:
    """GIVEN dev deployed (its resources tagged stack=dev, environment=dev) WHEN a stack copied from it
    (`pulumi stack init dev-copy --copy-config-from dev`: same config, so the same `environment`) checks
    drift THEN it finds none of dev's EIPs, hosts or groups: they are another stack's. By `environment`,
    the copy reported dev's world as its own (no drift)."""
    ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=moto_endpoint)
    provision(ec2, PLAN)
    copy = dataclasses.replace(PLAN, stack="dev-copy")
    results, failures = check_aws(copy, region=REGION, endpoint=moto_endpoint)
    assert failures == []
    assert {r.key: r.status for r in results} == {
        **{f"eip:{ip.name}": Status.MISSING for ip in PLAN.ips},
        **{f"instance:{h.name}": Status.MISSING for h in PLAN.hosts},
        **{f"sg:{h.name}": Status.MISSING for h in PLAN.hosts}}


@pytest.mark.parametrize(("change", "key", "status", "detail"), [pytest.param(*c[1:], id=c[0]) for c in CASES])
def test_each_aws_change_is_reported_exactly(
    moto_endpoint: str, change: Change, key: str, status: Status, detail: str
) -> None:
    ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=moto_endpoint)
    allocations = provision(ec2, PLAN)
    change(ec2, allocations)
    results, _ = check_aws(PLAN, region=REGION, endpoint=moto_endpoint)
    found = [r for r in results if r.status is not Status.OK]
    assert [(r.key, r.status) for r in found] == [(key, status)]
    assert detail in found[0].detail


def test_unreachable_api_is_could_not_check(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    endpoint = f"http://127.0.0.1:{free_port()}"
    args = argparse.Namespace(
        stack="dev",
        nameserver=None,
        format="json",
        timeout=1.0,
        attempts=1,
        no_dns=True,
        aws=True,
        aws_endpoint=endpoint,
        aws_region=REGION,
        pulumi=False,
    )
    code = drift_cmd.run(args)
    report = json.loads(capsys.readouterr().out)
    assert code == 2
    assert endpoint in report["could_not_check"][0]


def fake_cli(tmp_path: Path, exit_code: int) -> str:
    """The real CLI cannot be installed here; a stand-in with its documented exit codes."""
    path = tmp_path / "pulumi"
    path.write_text(f"#!/bin/sh\necho \"$@\" > {tmp_path}/argv\necho 'resources: 1 to update' >&2\nexit {exit_code}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


@pytest.mark.parametrize(("exit_code", "status"), [(0, Status.OK), (7, Status.CHANGED), (255, Status.UNKNOWN)])
def test_pulumi_refresh_exit_codes(tmp_path: Path, exit_code: int, status: Status) -> None:
    results, failures = check_pulumi("dev", cli=fake_cli(tmp_path, exit_code))
    assert [r.status for r in results] == [status]
    assert bool(failures) == (status is Status.UNKNOWN)
    assert (tmp_path / "argv").read_text().split()[:3] == ["refresh", "--preview-only", "--expect-no-changes"]


def test_pulumi_missing_cli_is_a_clear_line() -> None:
    results, failures = check_pulumi("dev", cli=f"pulumi-not-installed-{os.getpid()}")
    assert results[0].status is Status.UNKNOWN
    assert failures == [results[0].detail]
    assert "pulumi CLI not found" in failures[0]
