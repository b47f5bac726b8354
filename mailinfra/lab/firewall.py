"""nftables inside the lab namespace: the Elastic IP NAT (a minimal version, see nat_rules).

On EC2 a host binds the private addresses of its ENI, and AWS translates each one 1:1 to the Elastic IP
associated with it (EipAssociation: allocation id, ENI, private address): traffic from the private
address leaves with the EIP as its source, traffic to the EIP arrives at the private address
("Elastic IP addresses", Amazon EC2 User Guide: an EIP is "mapped to the primary or a secondary private
IPv4 address" of the network interface; the instance's OS never sees the public address). So the
providers see the EIP, as SPF and PTR require, and clients reach the host by its EIP (its A record).

nat_rules is kept apart (lab-hosts slice) for the integrator to reconcile with the `network` slice's
translation in mailinfra/deployment/ec2.py: same semantics, from the same EipAssociation resources.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping

from mailinfra.deployment.program import Deployment
from mailinfra.lab.namespace import LabError

NAT_TABLE = "mailinfra-eip-nat"


def eip_pairs(deployment: Deployment, planned: Mapping[str, str]) -> list[tuple[str, str]]:
    """(private address, EIP) of every EipAssociation. `planned`: IP name -> its EIP's address (what the
    mock provider allocates for it: the plan's address). The association's EIP is found by allocation id
    through the Eip's own outputs when the deployment keeps them, else by the IP name the association is
    named after (`<host component>-<ip>`, components/mta_host.py)."""
    by_allocation = {}
    for eip in deployment.of_type("aws:ec2/eip:Eip"):
        outputs = getattr(eip, "outputs", None) or {}
        allocation = outputs.get("allocationId") or outputs.get("id")
        address = outputs.get("publicIp") or planned.get(str((eip.inputs.get("tags") or {}).get("ip", "")))
        if allocation and address:
            by_allocation[str(allocation)] = str(address)
    pairs = []
    for association in deployment.of_type("aws:ec2/eipAssociation:EipAssociation"):
        public = by_allocation.get(str(association.inputs.get("allocationId")))
        if public is None and association.parent:
            public = planned.get(association.name.removeprefix(f"{association.parent}-"))
        private = association.inputs.get("privateIpAddress")
        if public is None or not private:
            raise LabError(f"EipAssociation {association.name}: received allocation "
                           f"{association.inputs.get('allocationId')!r} and private address {private!r}, "
                           "expected an EIP of the deployment and a private address")
        pairs.append((str(private), public))
    return sorted(pairs)


def nat_rules(deployment: Deployment, planned: Mapping[str, str]) -> str:
    """The nftables ruleset of the EIP NAT: DNAT EIP -> private for connections made to the EIP, SNAT
    private -> EIP for connections made from the private address. Every lab connection is local to the
    namespace, so DNAT sits in `output` and SNAT in `postrouting` (NAT applies to a connection's first
    packet; conntrack translates its replies)."""
    pairs = eip_pairs(deployment, planned)
    dnat = "".join(f"    ip daddr {public} dnat to {private}\n" for private, public in pairs)
    snat = "".join(f"    ip saddr {private} snat to {public}\n" for private, public in pairs)
    return (f"table ip {NAT_TABLE} {{\n"
            f"  chain output {{\n    type nat hook output priority -100; policy accept;\n{dnat}  }}\n"
            f"  chain postrouting {{\n    type nat hook postrouting priority 100; policy accept;\n{snat}  }}\n"
            "}\n")


def apply_rules(namespace: str, rules: str) -> None:
    """Load a ruleset into the namespace (`nft -f -`), replacing a table of the same name."""
    table = rules.split("{", 1)[0].strip()
    subprocess.run(["ip", "netns", "exec", namespace, "nft", "delete", *table.split()],
                   capture_output=True, check=False)
    done = subprocess.run(["ip", "netns", "exec", namespace, "nft", "-f", "-"], input=rules, capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        raise LabError(f"nft -f in namespace {namespace}: {done.stderr.strip().splitlines()[-1:]}")
