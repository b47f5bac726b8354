"""Everything a deployment makes the DNS providers publish, each resource through its provider's module."""

from __future__ import annotations

from mailinfra.deployment import cloudflare, eip_ptr, route53
from mailinfra.deployment.program import Deployment
from mailinfra.deployment.published import PublishedRRset


def deployment_rrsets(deployment: Deployment) -> list[PublishedRRset]:
    """Route53 and Cloudflare records, then the EIP PTRs AWS publishes (checked against the forward A
    records, as AWS checks them). Raises PublishError where a provider would refuse a resource."""
    forward = route53.published_rrsets(deployment) + cloudflare.published_rrsets(deployment)
    return forward + eip_ptr.published_ptrs(deployment, forward)
