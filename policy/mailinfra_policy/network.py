"""Security groups: who may reach a host, and where a host may go.

Each rule is read in the three shapes the AWS provider offers: inline `ingress`/`egress` on
aws:ec2/securityGroup, aws:ec2/securityGroupRule (`type`), and the aws:vpc per-rule resources.
AWS semantics (EC2 User Guide, "Security group rules"): protocol "-1" means every protocol and every
port, whatever fromPort/toPort say; a prefix length of 0 is the whole internet.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .dns import CLOUDFLARE_RECORD, ROUTE53_RECORD, record_texts
from .values import UNKNOWN, Unknown, as_int, items_of, mapping_of

SG = "aws:ec2/securityGroup:SecurityGroup"
SG_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
SG_INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
SG_EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
RULE_TYPES = (SG, SG_RULE, SG_INGRESS, SG_EGRESS)

SMTP_PORT = 25
ALL_PROTOCOLS = ("-1", "all")
PORT_RANGE = (0, 65535)


@dataclass(frozen=True)
class SgRule:
    """One rule; any field may be UNKNOWN during preview."""

    direction: str
    protocol: str | Unknown
    from_port: int | Unknown | None
    to_port: int | Unknown | None
    cidrs: tuple[Any, ...]

    def opens_to_world(self) -> bool:
        return any(_is_world(c) for c in self.cidrs)

    def all_traffic(self) -> bool | None:
        """True on every protocol or every port; None when that is not known yet."""
        if self.protocol is UNKNOWN:
            return None
        if str(self.protocol).lower() in ALL_PROTOCOLS:
            return True
        if self.from_port is UNKNOWN or self.to_port is UNKNOWN:
            return None
        return (self.from_port, self.to_port) == PORT_RANGE

    def is_only(self, port: int) -> bool | None:
        """True when the rule admits exactly tcp/port; None when that is not known yet."""
        if self.protocol is UNKNOWN:
            return None
        if str(self.protocol).lower() in ALL_PROTOCOLS:
            return False
        if self.from_port is UNKNOWN or self.to_port is UNKNOWN:
            return None
        return str(self.protocol).lower() in ("tcp", "6") and (self.from_port, self.to_port) == (port, port)

    def covers(self, port: int) -> bool | None:
        """True when tcp/port passes this rule; None when that is not known yet."""
        if self.protocol is UNKNOWN:
            return None
        protocol = str(self.protocol).lower()
        if protocol in ALL_PROTOCOLS:
            return True
        if protocol not in ("tcp", "6"):
            return False
        if self.from_port is UNKNOWN or self.to_port is UNKNOWN:
            return None
        return self.from_port is not None and self.to_port is not None and self.from_port <= port <= self.to_port

    def describe(self) -> str:
        protocol = "?" if self.protocol is UNKNOWN else str(self.protocol)
        return f"{self.direction} {protocol} ports {self.from_port}-{self.to_port}"


def sg_rules(resource_type: str, props: dict[str, Any]) -> Iterator[SgRule]:
    """The rules a resource declares. A rule list not known yet yields nothing (cannot judge yet)."""
    if resource_type == SG:
        for direction in ("ingress", "egress"):
            entries = items_of(props.get(direction))
            if entries is UNKNOWN:
                continue
            for entry in entries:
                rule = mapping_of(entry)
                if rule is not UNKNOWN:
                    yield _rule(direction, rule, "protocol", ("cidrBlocks", "ipv6CidrBlocks"))
    elif resource_type == SG_RULE:
        kind = props.get("type")
        if kind in ("ingress", "egress"):
            yield _rule(str(kind), props, "protocol", ("cidrBlocks", "ipv6CidrBlocks"))
    elif resource_type in (SG_INGRESS, SG_EGRESS):
        direction = "ingress" if resource_type == SG_INGRESS else "egress"
        yield _rule(direction, props, "ipProtocol", ("cidrIpv4", "cidrIpv6"))


def _rule(direction: str, rule: dict[str, Any], protocol_key: str, cidr_keys: tuple[str, ...]) -> SgRule:
    cidrs: list[Any] = []
    for key in cidr_keys:
        values = items_of(rule.get(key))
        cidrs += [UNKNOWN] if values is UNKNOWN else values
    protocol = rule.get(protocol_key)
    return SgRule(
        direction=direction,
        protocol=UNKNOWN if protocol is UNKNOWN else str(protocol or ""),
        from_port=as_int(rule.get("fromPort")),
        to_port=as_int(rule.get("toPort")),
        cidrs=tuple(cidrs),
    )


def _is_world(cidr: object) -> bool:
    if not isinstance(cidr, str):
        return False  # unknown or absent: cannot judge yet
    try:
        return ipaddress.ip_network(cidr, strict=False).prefixlen == 0
    except ValueError:
        return False


def check_public_ingress(resource_type: str, props: dict[str, Any]) -> Iterator[str]:
    """Only tcp/25 may be open to the internet (bounces and FBL reports arrive from anywhere,
    RFC 5321 §4.5.5); injection ports, SSH or all traffic open to the world make an open relay or an
    attack surface."""
    for rule in sg_rules(resource_type, props):
        if rule.direction == "ingress" and rule.opens_to_world() and rule.is_only(SMTP_PORT) is False:
            yield (f"{rule.describe()} is open to the internet; only tcp/{SMTP_PORT} (inbound bounces) "
                   "may be, injection ports take the hosts' injection_cidrs")


def check_open_egress(resource_type: str, props: dict[str, Any]) -> Iterator[str]:
    """No egress to the whole internet on every protocol or port: a host leaves only on the ports its
    routes use (SMTP, submission, HTTPS), so a compromised host cannot reach anything else."""
    for rule in sg_rules(resource_type, props):
        if rule.direction == "egress" and rule.opens_to_world() and rule.all_traffic():
            yield (f"{rule.describe()} allows all traffic to the internet; open only the ports the host's "
                   "routes need")


def mail_hosts(resources: list[tuple[str, dict[str, Any]]]) -> set[str] | None:
    """Host names that MX records point at (they receive bounces), or None if some MX is not known yet."""
    hosts: set[str] = set()
    for resource_type, props in resources:
        if resource_type not in (ROUTE53_RECORD, CLOUDFLARE_RECORD):
            continue
        for _, value in record_texts(resource_type, props, "MX"):
            if value is None:
                return None
            # Route53 MX value: "preference exchange"; Cloudflare content: the exchange alone.
            hosts.add(value.split()[-1].lower().rstrip(".") if value.split() else "")
    return hosts


def group_host(group_props: dict[str, Any]) -> str | Unknown | None:
    """The host a security group guards: its Name tag (the host's FQDN, as the program tags it)."""
    tags = mapping_of(group_props.get("tags"))
    if tags is UNKNOWN:
        return UNKNOWN
    name = tags.get("Name")
    if name is UNKNOWN:
        return Unknown.UNKNOWN
    return str(name).lower().rstrip(".") if isinstance(name, str) and name else None
