"""EC2 network interfaces and Elastic IPs as the deployment declares them: which addresses a host has and
how each Elastic IP maps to one of them.

Semantics (Amazon EC2 User Guide, "Elastic IP addresses" and "Elastic network interfaces"; the provider's
aws_eip_association: allocation_id, network_interface_id, private_ip_address):
- An Elastic IP is associated with one private IPv4 address of one network interface. AWS translates
  between them 1:1 at the VPC's Internet gateway: traffic the instance sends from that private address
  leaves with the EIP as source, traffic to the EIP arrives at the private address (VPC User Guide,
  "Internet gateways": "the internet gateway performs network address translation"). The instance itself
  only ever has the private address; it never sees the EIP on an interface.
- Without `privateIpAddress`, the association takes the interface's primary private address; with
  `instanceId` instead of `networkInterfaceId`, the instance's primary network interface.
- A network interface carries its `privateIps` (a set; the first assigned is its primary address) and is
  filtered by the union of its `securityGroups` (mailinfra.deployment.security_groups).
"""

from __future__ import annotations

from dataclasses import dataclass

from mailinfra.deployment.program import Deployment

INTERFACE = "aws:ec2/networkInterface:NetworkInterface"
EIP = "aws:ec2/eip:Eip"
ASSOCIATION = "aws:ec2/eipAssociation:EipAssociation"
INSTANCE = "aws:ec2/instance:Instance"


@dataclass(frozen=True, slots=True)
class NetworkInterface:
    id: str
    name: str
    private_ips: tuple[str, ...]  # primary first
    security_groups: tuple[str, ...]
    host: str | None  # the `host` tag components/ put on it


@dataclass(frozen=True, slots=True)
class EipMapping:
    """One Elastic IP's 1:1 translation: `public` <-> `private` of interface `interface`."""

    public: str
    private: str
    interface: str
    allocation_id: str
    name: str  # the association resource


def network_interfaces(deployment: Deployment) -> dict[str, NetworkInterface]:
    """Interface id -> its addresses and groups (the addresses AWS assigned: the provider's outputs)."""
    result = {}
    for resource in deployment.of_type(INTERFACE):
        interface_id = str(resource.outputs.get("id") or resource.name)
        addresses = resource.outputs.get("privateIps") or resource.inputs.get("privateIps") or ()
        primary = resource.outputs.get("privateIp")
        ordered = ([primary] if primary else []) + [a for a in addresses if a != primary]
        tags = resource.inputs.get("tags") or {}
        result[interface_id] = NetworkInterface(interface_id, resource.name, tuple(str(a) for a in ordered),
                                                tuple(str(g) for g in resource.inputs.get("securityGroups") or ()),
                                                tags.get("host"))
    return result


def eip_mappings(deployment: Deployment) -> list[EipMapping]:
    """Every association of the deployment as a translation public <-> private, in declaration order."""
    interfaces = network_interfaces(deployment)
    eips = {str(r.outputs.get("allocationId") or r.outputs.get("id")): r for r in deployment.of_type(EIP)}
    primary_of_instance = {
        str(r.outputs.get("id")): str((r.inputs.get("primaryNetworkInterface") or {}).get("networkInterfaceId", ""))
        for r in deployment.of_type(INSTANCE)}
    result = []
    for association in deployment.of_type(ASSOCIATION):
        inputs = association.inputs
        eip = eips.get(str(inputs.get("allocationId", "")))
        interface_id = str(inputs.get("networkInterfaceId") or primary_of_instance.get(str(inputs.get("instanceId"))))
        interface = interfaces.get(interface_id)
        if eip is None or interface is None or not eip.outputs.get("publicIp"):
            continue  # associates something this deployment does not declare
        private = str(inputs.get("privateIpAddress") or interface.private_ips[0])
        result.append(EipMapping(str(eip.outputs["publicIp"]), private, interface_id,
                                 str(eip.outputs.get("allocationId")), association.name))
    return result


def interface_addresses(deployment: Deployment) -> dict[str, tuple[str, ...]]:
    """Interface id -> every address traffic to or from it can carry: its private addresses and the
    EIPs mapped to them (a client addresses the EIP, the host binds the private address)."""
    mapped: dict[str, list[str]] = {}
    for mapping in eip_mappings(deployment):
        mapped.setdefault(mapping.interface, []).append(mapping.public)
    return {iid: tuple(dict.fromkeys([*interface.private_ips, *mapped.get(iid, [])]))
            for iid, interface in network_interfaces(deployment).items()}
