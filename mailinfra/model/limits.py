"""AWS per-instance-type limits that bound how many sending IPs one host can carry.

MtaHost puts every sending IP of a host on one ENI, so the bound is the *private IPv4
addresses per network interface* column of AWS's "IP addresses per network interface per
instance type" table (EC2 User Guide). Only types we support are listed; an unknown type is a
config error rather than a guess.
"""

from __future__ import annotations

PRIVATE_IPV4_PER_ENI: dict[str, int] = {
    "t3.micro": 2,
    "t3.small": 4,
    "t3.medium": 6,
    "t3.large": 12,
    "t3.xlarge": 15,
    "t3.2xlarge": 15,
    "c5.large": 10,
    "c5.xlarge": 15,
    "c5.2xlarge": 15,
    "c5.4xlarge": 30,
    "c6i.large": 10,
    "c6i.xlarge": 15,
    "c6i.2xlarge": 15,
    "c6i.4xlarge": 30,
    "c7i.large": 10,
    "c7i.xlarge": 15,
    "c7i.2xlarge": 15,
    "c7i.4xlarge": 30,
    "m5.large": 10,
    "m5.xlarge": 15,
    "m5.2xlarge": 15,
    "m5.4xlarge": 30,
    "m6i.large": 10,
    "m6i.xlarge": 15,
    "m6i.2xlarge": 15,
    "m6i.4xlarge": 30,
    "m7i.large": 10,
    "m7i.xlarge": 15,
    "m7i.2xlarge": 15,
    "m7i.4xlarge": 30,
}


def max_ips_per_host(instance_type: str) -> int | None:
    """Sending IPs one host of this type can carry on its ENI, or None for an unsupported type."""
    return PRIVATE_IPV4_PER_ENI.get(instance_type)


# Regions where Amazon SES has an API and SMTP endpoint (AWS General Reference, "Amazon Simple Email
# Service endpoints and quotas"; the same list as botocore's data/endpoints.json, service `email`,
# which tests/model/test_places.py compares it with). An SES route elsewhere fails at `pulumi up`.
SES_REGIONS: frozenset[str] = frozenset({
    "af-south-1", "ap-east-2", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3", "ap-south-1",
    "ap-south-2", "ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "ap-southeast-4", "ap-southeast-5",
    "ap-southeast-6", "ap-southeast-7", "ca-central-1", "ca-west-1", "eu-central-1", "eu-central-2",
    "eu-north-1", "eu-south-1", "eu-south-2", "eu-west-1", "eu-west-2", "eu-west-3", "il-central-1",
    "me-central-1", "me-south-1", "mx-central-1", "sa-east-1", "us-east-1", "us-east-2", "us-west-1",
    "us-west-2", "us-gov-east-1", "us-gov-west-1", "eusc-de-east-1",
})
