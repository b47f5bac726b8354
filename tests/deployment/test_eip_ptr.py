"""The PTR AWS publishes for an EipDomainName (EC2 ModifyAddressAttribute; EC2 User Guide, reverse DNS
for email: the forward A record must point to the Elastic IP first, else the request fails)."""

from __future__ import annotations

import pytest

from mailinfra.deployment import eip_ptr
from mailinfra.deployment.program import Deployment, Resource
from mailinfra.deployment.published import PublishedRRset, PublishError


def deployment() -> Deployment:
    eip = Resource(type=eip_ptr.EIP, name="pool-tx-tx1", urn="u1", parent=None, inputs={"domain": "vpc"},
                   outputs={"allocationId": "eipalloc-1", "publicIp": "203.0.113.98"})
    ptr = Resource(type=eip_ptr.DOMAIN_NAME, name="pool-tx-tx1-ptr", urn="u2", parent=None,
                   inputs={"allocationId": "eipalloc-1", "domainName": "tx1.mail.example.com"})
    return Deployment("dev", (eip, ptr))


def test_the_ptr_is_published_at_the_eip_address_reverse_name() -> None:
    forward = [PublishedRRset("tx1.mail.example.com", "A", 300, ("203.0.113.98",), ("a",), "route53")]
    (ptr,) = eip_ptr.published_ptrs(deployment(), forward)
    assert (ptr.name, ptr.type, ptr.rdatas) == ("98.113.0.203.in-addr.arpa", "PTR", ("tx1.mail.example.com.",))


def test_aws_refuses_a_ptr_whose_name_does_not_resolve_to_the_eip() -> None:
    forward = [PublishedRRset("tx1.mail.example.com", "A", 300, ("198.51.100.1",), ("a",), "route53")]
    with pytest.raises(PublishError, match="pool-tx-tx1-ptr"):
        eip_ptr.published_ptrs(deployment(), forward)
