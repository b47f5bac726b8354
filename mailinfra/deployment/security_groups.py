"""AWS security groups as the deployment declares them: which traffic each group admits.

Semantics (Amazon VPC User Guide, "Security groups" and "Security group rules",
https://docs.aws.amazon.com/vpc/latest/userguide/vpc-security-groups.html):
- A group holds allow rules only. Inbound: nothing is admitted that no ingress rule allows.
- Outbound: AWS gives a new group an allow-all egress rule, but the Pulumi AWS provider (the Terraform
  provider underneath) revokes it on create (terraform-provider-aws, website/docs/r/security_group
  "NOTE on Egress rules": "Terraform will remove this default rule"); so egress is exactly the egress
  rules declared, inline (`egress`) or as `aws:vpc/securityGroupEgressRule` resources.
- Stateful: the replies of an admitted connection pass in the other direction whatever the rules say.
- `aws:vpc/securityGroupIngressRule` / `...EgressRule` (the provider's `aws_vpc_security_group_*_rule`):
  `securityGroupId`, `ipProtocol` ("tcp", "udp", "icmp", a number, or "-1" = every protocol and port,
  fromPort/toPort then ignored), `fromPort`/`toPort` (a range, inclusive), and one peer: `cidrIpv4`,
  `referencedSecurityGroupId` (the members of another group), `cidrIpv6` or `prefixListId`.
- A rule naming a prefix list (`prefixListId`) admits every CIDR of the list's entries, as if each were a
  rule of its own (VPC User Guide, "Managed prefix lists": "a set of one or more CIDR blocks ... you can
  reference in your security group rules"); the list is an `aws:ec2/managedPrefixList:ManagedPrefixList`
  (`entries[].cidr`). A list the deployment does not declare (an AWS-managed one) admits nothing here.
- Several groups on one network interface: the union of their rules.
- Not filtered at all: the Amazon DNS server, DHCP, instance metadata, the Time Sync Service and the
  VPC router's reserved addresses ("Security groups don't filter traffic destined to and from ...").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from mailinfra.deployment.program import Deployment, Resource

GROUP = "aws:ec2/securityGroup:SecurityGroup"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS_RULE = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
# The older single-resource form (aws_security_group_rule): `type` ingress|egress, `cidrBlocks`.
LEGACY_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
PREFIX_LIST = "aws:ec2/managedPrefixList:ManagedPrefixList"
ALL_PROTOCOLS = "-1"
# ipProtocol may be given by number (IANA protocol numbers); the rules compare by name.
PROTOCOL_NAMES = {"6": "tcp", "17": "udp", "1": "icmp"}

Direction = Literal["ingress", "egress"]


@dataclass(frozen=True, slots=True)
class GroupRule:
    """One allow rule: `protocol` ("tcp", "udp", "icmp" or "-1" for all) on ports `from_port`..`to_port`
    (None: every port) from/to `cidr` or the members of group `group`."""

    direction: Direction
    protocol: str
    from_port: int | None
    to_port: int | None
    cidr: str | None = None
    group: str | None = None  # referencedSecurityGroupId
    name: str = ""  # the resource that declared it


@dataclass(frozen=True, slots=True)
class SecurityGroup:
    id: str
    name: str
    ingress: tuple[GroupRule, ...]
    egress: tuple[GroupRule, ...]


def security_groups(deployment: Deployment) -> dict[str, SecurityGroup]:
    """Group id -> the group with every rule the deployment gives it (inline and separate resources)."""
    groups: dict[str, tuple[Resource, list[GroupRule], list[GroupRule]]] = {}
    for resource in deployment.of_type(GROUP):
        group_id = str(resource.outputs.get("id") or resource.name)
        ingress = [_inline(resource.name, "ingress", r) for r in resource.inputs.get("ingress") or ()]
        egress = [_inline(resource.name, "egress", r) for r in resource.inputs.get("egress") or ()]
        groups[group_id] = (resource, [r for rs in ingress for r in rs], [r for rs in egress for r in rs])
    lists = prefix_lists(deployment)
    for resource in deployment.of_type(INGRESS_RULE, EGRESS_RULE, LEGACY_RULE):
        inputs = resource.inputs
        group_id = str(inputs.get("securityGroupId", ""))
        if group_id not in groups:
            continue  # a group this deployment does not declare (not ours to emulate)
        rule = _rule(resource, inputs)
        _, ingress_rules, egress_rules = groups[group_id]
        listed = lists.get(str(inputs.get("prefixListId")), ()) if inputs.get("prefixListId") else ()
        expanded = [replace(rule, cidr=cidr) for cidr in listed] if listed else [rule]
        (ingress_rules if rule.direction == "ingress" else egress_rules).extend(expanded)
    return {gid: SecurityGroup(gid, res.name, tuple(ingress), tuple(egress))
            for gid, (res, ingress, egress) in groups.items()}


def prefix_lists(deployment: Deployment) -> dict[str, tuple[str, ...]]:
    """Prefix list id -> the CIDRs of its entries, for every managed prefix list the deployment declares."""
    return {str(r.outputs.get("id") or r.name): tuple(str(e["cidr"]) for e in r.inputs.get("entries") or ()
                                                       if e.get("cidr"))
            for r in deployment.of_type(PREFIX_LIST)}


def _rule(resource: Resource, inputs: Mapping[str, Any]) -> GroupRule:
    if resource.type == LEGACY_RULE:
        direction: Direction = "ingress" if inputs.get("type") == "ingress" else "egress"
        cidrs = list(inputs.get("cidrBlocks") or ())
        protocol = _protocol(inputs.get("protocol"))
        return GroupRule(direction, protocol, *_range(protocol, inputs), cidr=cidrs[0] if cidrs else None,
                         group=inputs.get("sourceSecurityGroupId"), name=resource.name)
    direction = "ingress" if resource.type == INGRESS_RULE else "egress"
    protocol = _protocol(inputs.get("ipProtocol"))
    return GroupRule(direction, protocol, *_range(protocol, inputs), cidr=inputs.get("cidrIpv4"),
                     group=inputs.get("referencedSecurityGroupId"), name=resource.name)


def _inline(name: str, direction: Direction, block: Mapping[str, Any]) -> list[GroupRule]:
    """An inline `ingress`/`egress` block: one rule per CIDR (or per referenced group)."""
    protocol = _protocol(block.get("protocol"))
    ports = _range(protocol, block)
    peers = [(c, None) for c in block.get("cidrBlocks") or ()]
    peers += [(None, g) for g in block.get("securityGroups") or ()]
    return [GroupRule(direction, protocol, *ports, cidr=c, group=g, name=name) for c, g in peers]


def _protocol(value: Any) -> str:
    text = str(value if value is not None else ALL_PROTOCOLS).lower()
    return PROTOCOL_NAMES.get(text, text)


def _range(protocol: str, inputs: Mapping[str, Any]) -> tuple[int | None, int | None]:
    # "-1" covers every protocol and port whatever fromPort/toPort say (provider docs: "ip_protocol -1
    # ... semantically equivalent to all ports").
    if protocol == ALL_PROTOCOLS or inputs.get("fromPort") is None:
        return None, None
    return int(inputs["fromPort"]), int(inputs.get("toPort", inputs["fromPort"]))


def rules_of(groups: Mapping[str, SecurityGroup], group_ids: Iterable[str]) -> tuple[list[GroupRule], list[GroupRule]]:
    """(ingress, egress) of an interface carrying these groups: the union of their rules."""
    ingress: list[GroupRule] = []
    egress: list[GroupRule] = []
    for group_id in group_ids:
        if group_id in groups:
            ingress += groups[group_id].ingress
            egress += groups[group_id].egress
    return ingress, egress
