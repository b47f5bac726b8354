"""IpPool: the Elastic IPs of one pool, their forward A records and their reverse DNS (PTR).

A warmed IP is reputation that cannot be bought back: every EIP is `protect`ed (a change that would
delete it fails) and `retain_on_delete` (even `pulumi destroy` or removing it from the stack leaves it
allocated in the account). Adopted IPs are imported by allocation id, never re-allocated.

An IP's resources are named by the IP alone (`ip-<ip>`, `ip-<ip>-<record>`, `ip-<ip>-ptr`), never by its
pool: a URN holds the parent's *type* and the resource's own name, not the parent's name
(`urn:pulumi:<stack>::<project>::mailinfra:ip_pool:IpPool$aws:ec2/eip:Eip::ip-tx1`), so renaming a pool or
moving an IP to another pool leaves every URN as it was. Before, they were `pool-<pool>-<ip>...`: every
resource aliases those old names under every pool name of the stack (current and previous), so an existing
deployment, and an IP it moves in the same change, keeps its EIP, A record and PTR (STYLE rule 2).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import pulumi
import pulumi_aws as aws

from components.dns_records import create_record, record_slug
from components.tags import stack_tags
from mailinfra.dns.records import DnsRecord
from mailinfra.plan.model import IpPlan, PoolPlan, ZonePlan


def pool_resource_name(pool: str) -> str:
    return f"pool-{pool}"


def ip_resource_name(ip: str) -> str:
    """The EIP's name, and the prefix of the IP's A record and PTR: the IP's name, not its pool's."""
    return f"ip-{ip}"


def former_prefixes(ip: IpPlan, pool_names: Iterable[str]) -> list[tuple[str, str]]:
    """(prefix, IP name it was under) of every name this IP's resources may have had: `ip-<old name>`,
    and the pre-`ip-` names `pool-<pool>-<name>` for every pool name the stack has or had (the IP may
    have moved in from any of them). IP names, current and previous, are unique across pools
    (mailinfra/model/rules.py), so no alias can claim another IP's resource."""
    names = (ip.name, *ip.previous_names)
    prefixes = [(ip_resource_name(old), old) for old in ip.previous_names]
    prefixes += [(f"{pool_resource_name(pool)}-{old}", old) for pool in sorted(set(pool_names)) for old in names]
    return prefixes


@dataclass
class IpPoolArgs:
    pool: PoolPlan
    ips: Sequence[IpPlan]
    environment: str
    dns_provider: str
    zone_ids: Mapping[str, pulumi.Input[str]]
    a_records: Mapping[str, DnsRecord]  # IP name -> its planned HELO A record
    # Every pool name of the stack, current and previous: where an IP's resources were named before.
    pool_names: Sequence[str] = ()
    # Zone name -> its plan: how the zone adopts live records (dns.zones.<zone>.adopt), for the A records.
    zones: Mapping[str, ZonePlan] = field(default_factory=dict)


class IpPool(pulumi.ComponentResource):
    def __init__(self, name: str, args: IpPoolArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        # A renamed pool is the same component (its children keep their URNs anyway: see the docstring).
        aliases = [pulumi.Alias(name=pool_resource_name(old)) for old in args.pool.previous_names]
        super().__init__("mailinfra:ip_pool:IpPool", name, None,
                         pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(aliases=aliases)))
        self.public_ips: dict[str, pulumi.Output[str]] = {}
        self.allocation_ids: dict[str, pulumi.Output[str]] = {}
        pool_names = (*args.pool_names, args.pool.name, *args.pool.previous_names)
        for ip in args.ips:
            prefix = ip_resource_name(ip.name)
            former = former_prefixes(ip, pool_names)
            eip = aws.ec2.Eip(
                prefix,
                domain="vpc",
                tags=stack_tags(args.environment, Name=ip.helo, stream=ip.stream, pool=ip.pool, ip=ip.name),
                opts=pulumi.ResourceOptions(
                    parent=self,
                    protect=True,
                    retain_on_delete=True,
                    # Import the existing allocation: its address is what receivers know.
                    import_=ip.allocation_id if ip.adopted else None,
                    # A renamed or moved IP keeps its EIP (STYLE rule 2: names are a contract; renames alias).
                    aliases=[pulumi.Alias(name=old) for old, _ in former],
                ),
            )
            # An adopted IP's address is known and stable; a new one's exists only after allocation.
            address: pulumi.Input[str] = ip.address if ip.adopted else eip.public_ip
            record = args.a_records[ip.name]
            a_record = create_record(
                f"{prefix}-{record_slug(record)}", record=record, zone_id=args.zone_ids[record.zone],
                provider=args.dns_provider, values=[address], zone=args.zones.get(record.zone),
                opts=pulumi.ResourceOptions(parent=self, aliases=[
                    pulumi.Alias(name=f"{old}-{slug}") for old, old_ip in former
                    for slug in _previous_slugs(record, ip.name, old_ip)]))
            # AWS sets reverse DNS only when the name already resolves forward to this EIP
            # (EC2 User Guide, "Reverse DNS for email applications"): the PTR waits for its A record.
            aws.ec2.EipDomainName(
                f"{prefix}-ptr",
                allocation_id=eip.allocation_id,
                domain_name=ip.helo,
                opts=pulumi.ResourceOptions(parent=self, depends_on=a_record,
                                            aliases=[pulumi.Alias(name=f"{old}-ptr") for old, _ in former]),
            )
            self.public_ips[ip.name] = pulumi.Output.from_input(address)
            self.allocation_ids[ip.name] = eip.allocation_id
        self.register_outputs({"public_ips": self.public_ips, "allocation_ids": self.allocation_ids})


def _previous_slugs(record: DnsRecord, name: str, old: str) -> list[str]:
    """The A record's slug when the IP was called `old`: the same HELO if it was set explicitly, or the
    default HELO `<old>.<sending domain>` if it was derived from the IP's name (the record's old owner)."""
    slugs = [record_slug(record)]
    if old != name and record.name.startswith(f"{name}."):
        slugs.append(record_slug(replace(record, name=f"{old}{record.name.removeprefix(name)}")))
    return slugs
