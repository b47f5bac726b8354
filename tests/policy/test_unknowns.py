"""Values Pulumi cannot know during preview are "cannot judge yet", never an error or a skipped policy.

The engine sends an unknown input as a sentinel string (pulumi/pulumi plugin/rpc.go
`marshalUnknownProperty`); pulumi-policy's proxy raises UnknownValueError on reading one and turns it
into an advisory "can't run policy ... during preview", skipping the whole policy for the resource
(pulumi-policy policy.py `Analyze`; its integration test tests/integration/unknown_values expects that
message). These tests go through that same servicer.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
from mailinfra_policy.values import UNKNOWN, plain

from tests.policy.conftest import CANT_RUN, UNKNOWN_STRING, analyze, analyze_stack

SG = "aws:ec2/securityGroup:SecurityGroup"
SG_INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every property path: each object key and list item, containers and leaves."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield (*prefix, key)
            yield from paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield (*prefix, index)
            yield from paths(item, (*prefix, index))


def with_unknown(props: dict[str, Any], path: tuple[Any, ...]) -> dict[str, Any]:
    changed = copy.deepcopy(props)
    target: Any = changed
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = UNKNOWN_STRING
    return changed


def test_every_input_of_every_dev_resource_may_be_unknown(stack_resources: Any) -> None:
    """GIVEN each resource of dev, WHEN any one of its inputs (at any depth) is unknown, THEN every
    policy still runs (no "can't run policy") and reports nothing the known resource did not."""
    checked = 0
    for resource in stack_resources("dev"):
        for path in paths(resource["inputs"]):
            found = analyze(resource["type"], with_unknown(resource["inputs"], path), name=resource["name"],
                            protect=resource["protect"])
            assert found == [], (resource["name"], path, found)
            checked += 1
    assert checked > 500


def test_a_preview_with_every_string_unknown_still_runs_the_stack_policies(stack_resources: Any) -> None:
    def unknown_strings(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: unknown_strings(v) for k, v in value.items()}
        if isinstance(value, list):
            return [unknown_strings(v) for v in value]
        return UNKNOWN_STRING if isinstance(value, str) else value

    resources = stack_resources("dev")
    for resource in resources:
        resource["inputs"] = unknown_strings(resource["inputs"])
    assert analyze_stack(resources) == []
    for index in range(len(resources)):  # and each resource's inputs unknown as a whole object
        one = copy.deepcopy(stack_resources("dev"))
        one[index]["inputs"] = dict.fromkeys(one[index]["inputs"], UNKNOWN_STRING)
        assert analyze_stack(one) == [], one[index]["name"]


def test_known_rules_are_judged_beside_an_unknown_one() -> None:
    """One ingress rule's CIDR is not known yet; the known rule open on 587 is still reported.
    (Before, reading the unknown CIDR raised and the whole group went unjudged.)"""
    props = {"ingress": [
        {"protocol": "tcp", "fromPort": 25, "toPort": 25, "cidrBlocks": [UNKNOWN_STRING]},
        {"protocol": "tcp", "fromPort": 587, "toPort": 587, "cidrBlocks": ["0.0.0.0/0"]},
    ]}
    found = analyze(SG, props, name="sg")
    assert [f.policy for f in found] == ["smtp-ingress"]
    assert not any(CANT_RUN in f.message for f in found)


@pytest.mark.parametrize(("resource_type", "props"), [
    (SG_INGRESS, {"ipProtocol": UNKNOWN_STRING, "fromPort": 22, "toPort": 22, "cidrIpv4": "0.0.0.0/0"}),
    (SG_INGRESS, {"ipProtocol": "tcp", "fromPort": UNKNOWN_STRING, "toPort": 22, "cidrIpv4": "0.0.0.0/0"}),
    ("aws:iam/rolePolicy:RolePolicy", {"role": "r", "policy": UNKNOWN_STRING}),
    ("aws:iam/rolePolicy:RolePolicy", {"role": "r", "policy": json.dumps(
        {"Statement": [{"Effect": "Allow", "Action": "ssm:GetParameter", "Resource": UNKNOWN_STRING}]})}),
    ("aws:route53/record:Record", {"name": "_dmarc.example.com", "type": "TXT", "records": UNKNOWN_STRING}),
    ("aws:route53/record:Record", {"name": UNKNOWN_STRING, "type": "TXT", "records": ['"v=DMARC1; p=no"']}),
    ("aws:ssm/parameter:Parameter", {"name": "/a/dkim/b", "type": UNKNOWN_STRING}),
    ("aws:ec2/instance:Instance", {"rootBlockDevice": UNKNOWN_STRING, "metadataOptions": UNKNOWN_STRING}),
    ("aws:ebs/volume:Volume", {"encrypted": UNKNOWN_STRING}),
])
def test_an_unknown_that_decides_is_not_judged_yet(resource_type: str, props: dict[str, Any]) -> None:
    assert analyze(resource_type, props) == []


def test_plain_marks_every_sentinel_and_leaves_the_rest() -> None:
    from pulumi_policy.proxy import UNKNOWN_NUMBER_VALUE, unknown_checking_proxy

    proxied = unknown_checking_proxy({"a": [1, UNKNOWN_STRING], "b": {"c": UNKNOWN_NUMBER_VALUE, "d": "x"}})
    assert plain(proxied) == {"a": [1, UNKNOWN], "b": {"c": UNKNOWN, "d": "x"}}
    assert plain({"a": UNKNOWN_STRING}) == {"a": UNKNOWN}  # plain dicts carrying sentinels too
