"""aws.ec2.EipDomainName -> the PTR record AWS publishes for the Elastic IP's address.

Source: the EC2 API ModifyAddressAttribute (which pulumi-aws `EipDomainName` calls, `domain_name` ->
`ptr_record` output) and the EC2 User Guide, "Create a reverse DNS record for email on Amazon EC2":
AWS publishes `PTR <domain_name>.` at the address's in-addr.arpa name in its own reverse zone, and
"before you create a reverse DNS record, you must set a corresponding forward DNS record (record type A)
that points to your Elastic IP address" — otherwise the call fails. The address is the `publicIp`
output of the `aws:ec2/eip:Eip` whose `allocationId` the resource names.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from mailinfra.deployment.program import Deployment
from mailinfra.deployment.published import PublishedRRset, PublishError, absolute_name

DOMAIN_NAME = "aws:ec2/eipDomainName:EipDomainName"
EIP = "aws:ec2/eip:Eip"
PROVIDER = "aws-eip-ptr"
# AWS does not document the TTL of its reverse records; the lab uses the zone default.
PTR_TTL = 3600


def published_ptrs(deployment: Deployment, forward: Sequence[PublishedRRset] | None = None) -> list[PublishedRRset]:
    """One PTR per EipDomainName. With `forward` (the published forward RRsets), a domain name whose A
    record does not hold the EIP's address raises PublishError, as AWS refuses it."""
    addresses = {str(r.outputs.get("allocationId")): str(r.outputs.get("publicIp") or "")
                 for r in deployment.of_type(EIP) if r.outputs}
    a_records = {r.name: set(r.rdatas) for r in forward or () if r.type == "A"}
    result = []
    for resource in deployment.of_type(DOMAIN_NAME):
        allocation = str(resource.inputs.get("allocationId", ""))
        address = addresses.get(allocation)
        if not address:
            raise PublishError(DOMAIN_NAME, resource.name, f"no Elastic IP with allocation id {allocation!r} "
                               "(the deployment keeps Eip outputs only from an up run)")
        target = absolute_name(str(resource.inputs.get("domainName", "")))
        if forward is not None and address not in a_records.get(target.rstrip("."), set()):
            raise PublishError(DOMAIN_NAME, resource.name, f"AWS would refuse the reverse DNS record: "
                               f"{target} has no A record pointing to {address}")
        owner = ipaddress.IPv4Address(address).reverse_pointer
        result.append(PublishedRRset(owner, "PTR", PTR_TTL, (target,), (resource.name,), PROVIDER, "UPSERT"))
    return result
