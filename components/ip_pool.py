"""IpPool: the Elastic IPs of one pool, their forward A records and their reverse DNS (PTR).

A warmed IP is reputation that cannot be bought back: every EIP is `protect`ed (a change that would
delete it fails) and `retain_on_delete` (even `pulumi destroy` or removing it from the stack leaves it
allocated in the account). Adopted IPs are imported by allocation id, never re-allocated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import pulumi
import pulumi_aws as aws

from components.dns_records import create_record, record_slug
from mailinfra.dns.records import DnsRecord
from mailinfra.plan.model import IpPlan, PoolPlan


@dataclass
class IpPoolArgs:
    pool: PoolPlan
    ips: Sequence[IpPlan]
    environment: str
    dns_provider: str
    zone_ids: Mapping[str, pulumi.Input[str]]
    a_records: Mapping[str, DnsRecord]  # IP name -> its planned HELO A record


class IpPool(pulumi.ComponentResource):
    def __init__(self, name: str, args: IpPoolArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mailinfra:ip_pool:IpPool", name, None, opts)
        self.public_ips: dict[str, pulumi.Output[str]] = {}
        self.allocation_ids: dict[str, pulumi.Output[str]] = {}
        for ip in args.ips:
            eip = aws.ec2.Eip(
                f"{name}-{ip.name}",
                domain="vpc",
                tags={"Name": ip.helo, "stream": ip.stream, "pool": ip.pool, "ip": ip.name,
                      "environment": args.environment},
                opts=pulumi.ResourceOptions(
                    parent=self,
                    protect=True,
                    retain_on_delete=True,
                    # Import the existing allocation: its address is what receivers know.
                    import_=ip.allocation_id if ip.adopted else None,
                    # A renamed IP keeps its EIP (STYLE rule 2: names are a contract; renames alias).
                    aliases=[pulumi.Alias(name=f"{name}-{old}") for old in ip.previous_names],
                ),
            )
            # An adopted IP's address is known and stable; a new one's exists only after allocation.
            address: pulumi.Input[str] = ip.address if ip.adopted else eip.public_ip
            record = args.a_records[ip.name]
            a_record = create_record(
                f"{name}-{ip.name}-{record_slug(record)}", record=record, zone_id=args.zone_ids[record.zone],
                provider=args.dns_provider, values=[address],
                opts=pulumi.ResourceOptions(parent=self, aliases=[
                    pulumi.Alias(name=f"{name}-{old}-{slug}") for old in ip.previous_names
                    for slug in _previous_slugs(record, ip.name, old)]))
            # AWS sets reverse DNS only when the name already resolves forward to this EIP
            # (EC2 User Guide, "Reverse DNS for email applications"): the PTR waits for its A record.
            aws.ec2.EipDomainName(
                f"{name}-{ip.name}-ptr",
                allocation_id=eip.allocation_id,
                domain_name=ip.helo,
                opts=pulumi.ResourceOptions(parent=self, depends_on=a_record,
                                            aliases=[pulumi.Alias(name=f"{name}-{old}-ptr")
                                                     for old in ip.previous_names]),
            )
            self.public_ips[ip.name] = pulumi.Output.from_input(address)
            self.allocation_ids[ip.name] = eip.allocation_id
        self.register_outputs({"public_ips": self.public_ips, "allocation_ids": self.allocation_ids})


def _previous_slugs(record: DnsRecord, name: str, old: str) -> list[str]:
    """The A record's slug when the IP was called `old`: the same HELO if it was set explicitly, or the
    default HELO `<old>.<sending domain>` if it was derived from the IP's name (the record's old owner)."""
    slugs = [record_slug(record)]
    if record.name.startswith(f"{name}."):
        slugs.append(record_slug(replace(record, name=f"{old}{record.name.removeprefix(name)}")))
    return slugs
