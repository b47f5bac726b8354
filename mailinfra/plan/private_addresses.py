"""The private address each sending IP's EIP is associated with, derived from the IP's name (pure).

On EC2 an Elastic IP is NAT-mapped to one private address of an ENI, and the MTA binds that private
address. Taking addresses by position in the ENI's address list made them shift whenever an IP was
added or removed, replacing every later EipAssociation. Here each IP's address is a hash of its
*first* name (a rename with `previous_names` keeps it) into the usable range of its host's subnet,
with linear probing against every other IP of the stack in the same subnet, so adding or removing
an IP leaves every other IP's address unchanged unless their probe sequences meet.

The hash is salted with what tells stacks apart (the caller passes `<project>/<stack>`): two stacks in
one account and subnet (prod and staging with the same IP names) would otherwise derive the same
addresses, and AWS refuses an address another ENI of the subnet holds (CreateNetworkInterface:
PrivateIpAddressInUse). An empty salt is the unsalted derivation of earlier versions.

AWS reserves the first four addresses of every subnet and the last one (VPC User Guide, "Subnet
CIDR blocks"): they are never handed out.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable, Mapping

from mailinfra.errors import PlanError
from mailinfra.plan.model import IpPlan, Plan

AWS_RESERVED_FIRST = 4  # network address, VPC router, DNS, reserved for future use
AWS_RESERVED_LAST = 1  # the broadcast address (AWS does not support broadcast in a VPC)


def address_key(ip: IpPlan) -> str:
    """The name an IP's private address derives from: its first name (previous_names lists the oldest
    first), so a rename keeps the address and its EipAssociation."""
    return ip.previous_names[0] if ip.previous_names else ip.name


def subnet_key(plan: Plan, host_name: str) -> str:
    """Hosts with the same key share a subnet: the configured subnet id, else the default subnet of the AZ."""
    host = plan.host(host_name)
    return host.subnet_id or f"default subnet of {host.availability_zone or 'the default AZ'}"


def subnet_address_keys(plan: Plan, host_name: str) -> dict[str, str]:
    """IP name -> address key for every IP of the stack whose host shares `host_name`'s subnet
    (the set that competes for addresses in that subnet)."""
    subnet = subnet_key(plan, host_name)
    return {ip.name: address_key(ip) for ip in plan.ips if subnet_key(plan, ip.host) == subnet}


def assign_private_addresses(cidr: str, keys: Iterable[str], salt: str = "") -> dict[str, str]:
    """Address key -> private address inside `cidr`. The same (cidr, keys, salt) always give the same
    result; a key's address depends only on the keys whose probe sequences meet its own. `salt`: what
    distinguishes the stack (`<project>/<stack>`), so two stacks sharing a subnet probe differently."""
    network = ipaddress.IPv4Network(cidr, strict=False)
    usable = network.num_addresses - AWS_RESERVED_FIRST - AWS_RESERVED_LAST
    ordered = sorted(set(keys))
    if len(ordered) > usable:
        raise PlanError(f"subnet {cidr}: received {len(ordered)} sending IPs, expected at most {usable} "
                        "(its usable addresses)")
    first = int(network.network_address) + AWS_RESERVED_FIRST
    taken: set[int] = set()
    result: dict[str, str] = {}
    # Sorted keys probe in a fixed order, so the outcome never depends on config or dict order.
    for key in ordered:
        # "\0" cannot occur in a stack or IP name: salt "a", key "b/c" and salt "a/b", key "c" differ.
        material = f"{salt}\0{key}" if salt else key
        slot = int.from_bytes(hashlib.sha256(material.encode()).digest()[:8], "big") % usable
        while slot in taken:
            slot = (slot + 1) % usable
        taken.add(slot)
        result[key] = str(ipaddress.IPv4Address(first + slot))
    return result


def private_addresses(cidr: str, subnet_keys: Mapping[str, str], ip_names: Iterable[str],
                      salt: str = "") -> dict[str, str]:
    """IP name -> private address for `ip_names` (one host's IPs), allocated among all of `subnet_keys`
    (IP name -> address key, every IP in the subnet), salted with the stack's identity `salt`."""
    assigned = assign_private_addresses(cidr, subnet_keys.values(), salt)
    return {name: assigned[subnet_keys[name]] for name in ip_names}
