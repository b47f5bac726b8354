"""DnsRecords: the plan's forward records on Route53 or Cloudflare, chosen by the stack's dns.provider.

The records come from the plan (mailinfra.dns.plan) and are not re-derived here. Two things are
added at deploy time: zone ids (looked up or given) and the real addresses of new Elastic IPs,
which the plan only knows as documentation-range placeholders.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from mailinfra.dns.records import DnsRecord, RecordType
from mailinfra.dns.txt import cloudflare_txt_content, route53_txt_value
from mailinfra.plan.model import Plan, ZonePlan

ROUTE53 = "route53"
CLOUDFLARE = "cloudflare"


@dataclass
class DnsRecordsArgs:
    provider: str  # route53 | cloudflare
    records: Sequence[DnsRecord]
    zone_ids: Mapping[str, pulumi.Input[str]]
    # plan placeholder address -> the allocated EIP's public address (new IPs only)
    addresses: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    # the plan's zones: how each adopts live records (dns.zones.<zone>.adopt, import_ids)
    zones: Sequence[ZonePlan] = ()


class DnsRecords(pulumi.ComponentResource):
    """Every forward record of the plan that no other component owns."""

    def __init__(self, name: str, args: DnsRecordsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mailinfra:dns_records:DnsRecords", name, None, opts)
        self.records: dict[str, list[pulumi.CustomResource]] = {}
        zones = {z.name: z for z in args.zones}
        for record in args.records:
            values = resolve_values(record, args.addresses)
            self.records[record.key] = create_record(
                f"{name}-{record_slug(record)}", record=record, zone_id=args.zone_ids[record.zone],
                provider=args.provider, values=values, opts=pulumi.ResourceOptions(parent=self),
                zone=zones.get(record.zone))
        self.register_outputs({"record_keys": sorted(self.records)})


def forward_records(plan: Plan, owned_elsewhere: set[str]) -> tuple[DnsRecord, ...]:
    """The records DnsRecords creates: not PTRs (EipDomainName sets them), not reverse zones, not
    the keys another component creates (IpPool's A records, which its PTRs depend on)."""
    reverse = {z.name for z in plan.zones if z.reverse}
    return tuple(r for r in plan.records
                 if r.type is not RecordType.PTR and r.zone not in reverse and r.key not in owned_elsewhere)


def lookup_zone_ids(plan: Plan) -> dict[str, pulumi.Output[str]]:
    """Forward zone name -> provider zone id: given in the stack (dns.zones.<zone>.zone_id) or looked up."""
    result: dict[str, pulumi.Output[str]] = {}
    for zone in plan.zones:
        if zone.reverse:
            continue
        if zone.zone_id:
            result[zone.name] = pulumi.Output.from_input(zone.zone_id)
        elif zone.provider == CLOUDFLARE:
            import pulumi_cloudflare as cloudflare  # 1.4 s import: only stacks on Cloudflare pay it

            found = cloudflare.get_zone_output(filter=cloudflare.GetZoneFilterArgs(name=zone.name, match="all"))
            result[zone.name] = found.zone_id
        else:
            # A public zone: a private zone of the same name would answer only inside its VPC.
            result[zone.name] = aws.route53.get_zone_output(name=zone.name, private_zone=False).zone_id
    return result


def record_slug(record: DnsRecord) -> str:
    """`txt-_dmarc.example.com`: the RRset's key, stable across plans (type and owner name)."""
    return f"{str(record.type).lower()}-{record.name}"


def resolve_values(record: DnsRecord, addresses: Mapping[str, pulumi.Input[str]]) -> list[pulumi.Input[str]]:
    """The record's values with placeholder addresses replaced by the real ones once they exist."""
    if not addresses or record.type not in (RecordType.A, RecordType.TXT):
        return list(record.values)
    pattern = _address_pattern(tuple(addresses))
    result: list[pulumi.Input[str]] = []
    for value in record.values:
        found = sorted(set(pattern.findall(value)))
        if not found:
            result.append(value)
            continue
        real = pulumi.Output.all(*(addresses[a] for a in found))
        result.append(real.apply(functools.partial(_fill, value, tuple(found))))
    return result


def _fill(value: str, found: tuple[str, ...], got: list[str]) -> str:
    return _substitute(value, dict(zip(found, got, strict=True)))


_PATTERNS: dict[tuple[str, ...], re.Pattern[str]] = {}


def _address_pattern(addresses: tuple[str, ...]) -> re.Pattern[str]:
    if addresses not in _PATTERNS:
        # Whole addresses only: 203.0.113.5 must not match inside 203.0.113.50.
        alternatives = "|".join(re.escape(a) for a in sorted(addresses, key=len, reverse=True))
        _PATTERNS[addresses] = re.compile(rf"(?<![\d.])(?:{alternatives})(?![\d.])")
    return _PATTERNS[addresses]


def _substitute(value: str, real: dict[str, str]) -> str:
    return _address_pattern(tuple(real)).sub(lambda m: real[m.group(0)], value)


def create_record(
    resource_name: str,
    *,
    record: DnsRecord,
    zone_id: pulumi.Input[str],
    provider: str,
    values: Sequence[pulumi.Input[str]],
    opts: pulumi.ResourceOptions,
    zone: ZonePlan | None = None,
) -> list[pulumi.CustomResource]:
    """One RRset as the provider models it: one Route53 Record, or one Cloudflare record per value.

    `zone`: how the zone adopts live records. `overwrite`: Route53's allow_overwrite, so the create is an
    UPSERT that replaces a live RRset instead of failing on it (terraform-provider-aws record.go
    resourceRecordCreate). `import`: the keys in import_ids are imported (Pulumi's `import` option: the
    live record is taken over, and `up` fails if it differs from what the program declares).
    """
    imports = dict(zone.import_ids) if zone else {}
    if provider == CLOUDFLARE:
        return _cloudflare_records(resource_name, record, zone_id, values, opts, imports=imports)
    rdata = [_route53_value(record, v) for v in values]
    overwrite = True if zone is not None and zone.adopt == "overwrite" else None
    return [aws.route53.Record(resource_name, zone_id=zone_id, name=record.name, type=str(record.type),
                               ttl=record.ttl, records=rdata, allow_overwrite=overwrite,
                               opts=_with_import(opts, imports.get(record.key)))]


def _with_import(opts: pulumi.ResourceOptions, import_id: str | None) -> pulumi.ResourceOptions:
    if not import_id:
        return opts
    return pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(import_=import_id))


def _route53_value(record: DnsRecord, value: pulumi.Input[str]) -> pulumi.Input[str]:
    if record.type is not RecordType.TXT:
        return value
    # The AWS provider quotes each TXT entry itself (terraform-provider-aws record.go flattenTxtEntry:
    # `"%s"`): an entry given in master-file form reaches Route53 as `""v=...""` and the change batch
    # fails. route53_txt_value gives the unquoted form, chunks over 255 bytes joined by `""`.
    return pulumi.Output.from_input(value).apply(route53_txt_value)


def _cloudflare_records(
    resource_name: str,
    record: DnsRecord,
    zone_id: pulumi.Input[str],
    values: Sequence[pulumi.Input[str]],
    opts: pulumi.ResourceOptions,
    *,
    imports: Mapping[str, str],
) -> list[pulumi.CustomResource]:
    import pulumi_cloudflare as cloudflare

    created: list[pulumi.CustomResource] = []
    for plan_value, value in zip(record.values, values, strict=True):
        # Cloudflare has no RRset: every value is its own record, so each needs a name of its own,
        # taken from the value (the MX target), not from its position in the list.
        suffix = f"-{_value_slug(record, plan_value)}" if len(record.values) > 1 else ""
        kwargs: dict[str, Any] = {}
        content: pulumi.Input[str] = value
        if record.type is RecordType.MX:
            preference, _, target = plan_value.partition(" ")
            kwargs["priority"] = int(preference)
            content = target
        elif record.type is RecordType.TXT:
            # Cloudflare's TXT content is quoted RFC 1035 character-strings of <= 255 bytes (its API's
            # DNS record schema): the master-file form, unlike Route53's provider above.
            content = pulumi.Output.from_input(value).apply(cloudflare_txt_content)
        # Cloudflare imports one record (one value) per id: `<key> <value>`, or the key of a single value.
        import_id = imports.get(f"{record.key} {plan_value}") or (
            imports.get(record.key) if len(record.values) == 1 else None)
        created.append(cloudflare.DnsRecord(
            resource_name + suffix, zone_id=zone_id, name=record.name, type=str(record.type),
            ttl=record.ttl, content=content, proxied=False if record.type is RecordType.A else None,
            opts=_with_import(opts, import_id), **kwargs))
    return created


def _value_slug(record: DnsRecord, value: str) -> str:
    if record.type is RecordType.MX:
        return value.partition(" ")[2]
    return value
