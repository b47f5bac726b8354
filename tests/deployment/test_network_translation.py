"""Security groups, network interfaces and Elastic IPs read from resources with AWS's semantics, and the
nftables ruleset the lab builds from them (mailinfra.deployment.security_groups, .ec2, mailinfra.lab.firewall)."""

from __future__ import annotations

from typing import Any

import pytest

from mailinfra.deployment.ec2 import eip_mappings, interface_addresses
from mailinfra.deployment.program import Deployment, Resource
from mailinfra.deployment.security_groups import security_groups
from mailinfra.lab.firewall import plan_filters, render_ruleset

SG = "aws:ec2/securityGroup:SecurityGroup"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
ENI = "aws:ec2/networkInterface:NetworkInterface"
EIP = "aws:ec2/eip:Eip"
ASSOCIATION = "aws:ec2/eipAssociation:EipAssociation"


def _resource(type_: str, name: str, inputs: dict[str, Any], outputs: dict[str, Any] | None = None) -> Resource:
    return Resource(type=type_, name=name, urn=f"urn:{name}", parent=None, inputs=inputs,
                    outputs={"id": f"{name}-id", **(outputs or {})})


def _host(*rules: Resource, association: dict[str, Any] | None = None) -> Deployment:
    return Deployment("t", (
        _resource(SG, "sg", {"vpcId": "vpc-1"}),
        *rules,
        _resource(ENI, "eni", {"securityGroups": ["sg-id"], "privateIps": ["10.0.0.5", "10.0.0.9"]},
                  {"privateIps": ["10.0.0.5", "10.0.0.9"], "privateIp": "10.0.0.5"}),
        _resource(EIP, "eip", {"domain": "vpc"}, {"allocationId": "eipalloc-1", "publicIp": "203.0.113.7"}),
        _resource(ASSOCIATION, "assoc", {"allocationId": "eipalloc-1", "networkInterfaceId": "eni-id",
                                         **(association if association is not None else
                                            {"privateIpAddress": "10.0.0.9"})}),
    ))


def _rule(type_: str, name: str, **inputs: Any) -> Resource:
    return _resource(type_, name, {"securityGroupId": "sg-id", **inputs})


def test_a_group_without_egress_rules_admits_nothing_out() -> None:
    """The provider revokes AWS's default allow-all egress rule on create: no egress rule, no traffic out."""
    group = security_groups(_host())["sg-id"]
    assert group.ingress == () and group.egress == ()
    ruleset = render_ruleset(plan_filters(_host()), [], unfiltered=[], present=())
    egress = ruleset.split("chain egress_0 {")[1].split("}")[0]
    assert "tcp dport" not in egress and "counter drop" in egress


def test_protocol_minus_one_is_every_protocol_and_port() -> None:
    """ipProtocol "-1": all protocols, fromPort/toPort ignored (provider docs, "semantically equivalent to
    all ports")."""
    deployment = _host(_rule(EGRESS, "all-out", ipProtocol="-1", fromPort=0, toPort=0, cidrIpv4="0.0.0.0/0"))
    (rule,) = security_groups(deployment)["sg-id"].egress
    assert (rule.protocol, rule.from_port, rule.to_port) == ("-1", None, None)
    ruleset = render_ruleset(plan_filters(deployment), [], unfiltered=[], present=())
    assert 'accept comment "all-out"' in ruleset and "dport 0" not in ruleset


@pytest.mark.parametrize(("protocol", "name"), [("6", "tcp"), ("tcp", "tcp"), ("17", "udp")])
def test_protocol_numbers_name_the_same_protocol(protocol: str, name: str) -> None:
    deployment = _host(_rule(INGRESS, "in", ipProtocol=protocol, fromPort=10025, toPort=10029,
                             cidrIpv4="10.20.0.0/16"))
    (rule,) = security_groups(deployment)["sg-id"].ingress
    assert (rule.protocol, rule.from_port, rule.to_port) == (name, 10025, 10029)
    assert f"ip saddr 10.20.0.0/16 {name} dport 10025-10029 accept" in render_ruleset(
        plan_filters(deployment), [], unfiltered=[], present=())


def test_a_rule_naming_a_group_admits_that_groups_members() -> None:
    deployment = _host(_rule(INGRESS, "self", ipProtocol="tcp", fromPort=25, toPort=25,
                             referencedSecurityGroupId="sg-id"))
    (host,) = plan_filters(deployment)
    assert {r.cidr for r in host.ingress} == {"10.0.0.5/32", "10.0.0.9/32", "203.0.113.7/32"}


def test_an_eip_maps_to_the_private_address_its_association_names() -> None:
    (mapping,) = eip_mappings(_host())
    assert (mapping.public, mapping.private) == ("203.0.113.7", "10.0.0.9")
    assert interface_addresses(_host())["eni-id"] == ("10.0.0.5", "10.0.0.9", "203.0.113.7")


def test_an_association_without_private_address_takes_the_primary() -> None:
    """AWS associates the EIP with the interface's primary private address when none is given."""
    (mapping,) = eip_mappings(_host(association={}))
    assert mapping.private == "10.0.0.5"


def test_nat_translates_only_private_addresses_that_are_there() -> None:
    """DNAT EIP -> private only while the private address is on the lab interface; SNAT matches a private
    source only, so a host that binds its EIP directly is untouched."""
    deployment = _host()
    absent = render_ruleset(plan_filters(deployment), eip_mappings(deployment), unfiltered=[], present=())
    assert "dnat to" not in absent
    assert "ip saddr 10.0.0.9 ct original ip daddr != @private snat to 203.0.113.7" in absent
    present = render_ruleset(plan_filters(deployment), eip_mappings(deployment), unfiltered=[],
                             present={"10.0.0.9"})
    assert "ip daddr 203.0.113.7 dnat to 10.0.0.9" in present


PREFIX_LIST = "aws:ec2/managedPrefixList:ManagedPrefixList"


def test_a_rule_naming_a_prefix_list_admits_each_of_its_entries() -> None:
    """A rule with `prefixListId` admits every CIDR of that managed prefix list's entries (VPC User Guide,
    "Managed prefix lists": a set of CIDR blocks referenced by security group rules); the old reading
    dropped such a rule (the peers of a hosts route were refused)."""
    peers = _resource(PREFIX_LIST, "peers", {"addressFamily": "IPv4", "maxEntries": 2, "entries": [
        {"cidr": "198.51.100.20/32", "description": "ma1"}, {"cidr": "198.51.100.30/32", "description": "ma3"}]})
    deployment = _host(peers, _rule(INGRESS, "peer", ipProtocol="tcp", fromPort=25, toPort=25,
                                    prefixListId="peers-id"))
    (host,) = plan_filters(deployment)
    assert {(r.cidr, r.from_port) for r in host.ingress} == {("198.51.100.20/32", 25), ("198.51.100.30/32", 25)}
    ruleset = render_ruleset(plan_filters(deployment), [], unfiltered=[], present=())
    assert "ip saddr 198.51.100.30/32 tcp dport 25 accept" in ruleset


def test_a_prefix_list_the_deployment_does_not_declare_admits_nothing() -> None:
    """An AWS-managed list (com.amazonaws.<region>.s3, ...) is not ours to emulate: nothing admitted."""
    deployment = _host(_rule(INGRESS, "aws-list", ipProtocol="tcp", fromPort=443, toPort=443,
                             prefixListId="pl-63a5400a"))
    (host,) = plan_filters(deployment)
    assert host.ingress == ()
