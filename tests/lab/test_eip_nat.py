"""The lab's EIP NAT from the deployment's EipAssociation resources (no lab needed): AWS maps each Elastic IP
1:1 to the private address it is associated with ("Elastic IP addresses", Amazon EC2 User Guide): what leaves
from the private address carries the EIP, what is sent to the EIP arrives at the private address."""

from __future__ import annotations

from mailinfra.deployment.program import Deployment, Resource
from mailinfra.lab.firewall import eip_pairs, nat_rules


def _resource(type_: str, name: str, parent: str | None, **inputs: object) -> Resource:
    return Resource(type=type_, name=name, urn=f"urn:{name}", parent=parent, inputs=inputs)


DEPLOYMENT = Deployment("dev", (
    _resource("aws:ec2/eip:Eip", "pool-tx-tx1", "pool-tx", tags={"ip": "tx1"}, domain="vpc"),
    _resource("aws:ec2/eip:Eip", "pool-tx-tx2", "pool-tx", tags={"ip": "tx2"}, domain="vpc"),
    _resource("aws:ec2/eipAssociation:EipAssociation", "host-mta1-tx1", "host-mta1",
              allocationId="eipalloc-1", networkInterfaceId="eni-1", privateIpAddress="10.0.2.20"),
    _resource("aws:ec2/eipAssociation:EipAssociation", "host-mta1-tx2", "host-mta1",
              allocationId="eipalloc-2", networkInterfaceId="eni-1", privateIpAddress="10.0.3.174"),
))
PLANNED = {"tx1": "203.0.113.98", "tx2": "198.51.100.243"}


def test_each_association_pairs_its_private_address_with_its_eip() -> None:
    assert eip_pairs(DEPLOYMENT, PLANNED) == [("10.0.2.20", "203.0.113.98"), ("10.0.3.174", "198.51.100.243")]


def test_rules_translate_both_ways_and_only_the_associated_addresses() -> None:
    rules = nat_rules(DEPLOYMENT, PLANNED)
    assert "ip daddr 203.0.113.98 dnat to 10.0.2.20" in rules
    assert "ip saddr 10.0.2.20 snat to 203.0.113.98" in rules
    assert "ip daddr 198.51.100.243 dnat to 10.0.3.174" in rules
    assert "ip saddr 10.0.3.174 snat to 198.51.100.243" in rules
    assert rules.count("dnat to") == rules.count("snat to") == 2
