"""The lab's DNS: what the deployment's record resources would publish, plus the lab's own zones.

Knot (knotd) runs inside the namespace on DNS_ADDRESS:53 and is authoritative for every zone, so
Postfix's MX lookups, OpenDKIM and the providers' SPF/DKIM/DMARC checks all see the lab records.
The stack's records are not the plan's: they are the RRsets the Route53/Cloudflare record resources
and the EIP PTRs would publish (mailinfra.deployment.published, each provider's documented rules), so a
value the provider would mangle or refuse fails the lab as it would fail `pulumi up` or the receivers.
The lab adds only its own infrastructure: its name server, the outsider, the providers' MX hosts, the
secondary routes (and their SPF includes), each with its PTR.
"""

from __future__ import annotations

import dataclasses
import subprocess
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from mailinfra.deployment.dns import deployment_rrsets
from mailinfra.deployment.program import Deployment
from mailinfra.deployment.published import PublishedRRset, absolute_name, merge_rrsets, txt_presentation
from mailinfra.dns.records import DnsRecord, RecordType
from mailinfra.dns.spf import build_spf
from mailinfra.dns.txt import split_txt
from mailinfra.dns.zonefile import (
    SOA_EXPIRE,
    SOA_NEGATIVE_TTL,
    SOA_REFRESH,
    SOA_RETRY,
    ptr_name,
    reverse_zone_name,
)
from mailinfra.lab.layout import DNS_ADDRESS, LAB_ZONE, NULL_MX_DOMAIN, OUTSIDER_ADDRESS, LabLayout
from mailinfra.lab.namespace import LabError, in_namespace
from mailinfra.lab.procs import LabState, start_process
from mailinfra.plan.model import Plan

LAB_TTL = 60
NAMESERVER = f"ns.{LAB_ZONE}"
HOSTMASTER = f"hostmaster.{LAB_ZONE}"  # RFC 1035 §8 RNAME form of hostmaster@<lab zone>
READY_TIMEOUT_SECONDS = 10.0
LAB_PROVIDER = "lab"


def lab_rrsets(plan: Plan, layout: LabLayout, deployment: Deployment) -> list[PublishedRRset]:
    """What Knot serves: the deployment's published RRsets, then the lab's infrastructure records.

    Raises mailinfra.deployment.published.PublishError when a provider would refuse a record.
    """
    forward = [z.name for z in plan.zones if not z.reverse]
    published = deployment_rrsets(deployment)
    own = [_published(r) for r in _lab_records(plan, layout, forward)]
    return merge_rrsets(published + own)


def render_lab_zones(plan: Plan, layout: LabLayout, rrsets: Sequence[PublishedRRset], serial: int) -> dict[str, str]:
    """zone name -> master file text: the plan's zones, the reverse /24s and the lab's own zones."""
    forward = [z.name for z in plan.zones if not z.reverse]
    by_zone: dict[str, list[PublishedRRset]] = {z.name: [] for z in plan.zones}
    for rrset in rrsets:
        by_zone.setdefault(_zone_of(rrset, forward, layout), []).append(rrset)
    header = f"lab zone for stack {plan.stack}: what the deployment's record resources publish, and lab records"
    return {zone: render_published_zone(zone, by_zone[zone], serial=serial, header_comment=header)
            for zone in sorted(by_zone)}


def render_published_zone(zone: str, rrsets: Sequence[PublishedRRset], *, serial: int,
                          header_comment: str = "") -> str:
    """A master file (RFC 1035 §5) holding the RRsets' rdata exactly as published: TXT keeps the
    provider's character-string boundaries instead of being re-split here."""
    origin = absolute_name(zone)
    lines = [f"; {line}".rstrip() for line in header_comment.splitlines()]
    lines += [
        f"$ORIGIN {origin}",
        f"$TTL {LAB_TTL}",
        f"@ IN SOA {absolute_name(NAMESERVER)} {absolute_name(HOSTMASTER)} "
        f"( {serial} {SOA_REFRESH} {SOA_RETRY} {SOA_EXPIRE} {SOA_NEGATIVE_TTL} )",
        f"@ IN NS {absolute_name(NAMESERVER)}",
    ]
    for rrset in sorted(rrsets, key=lambda r: (tuple(reversed(r.name.split("."))), r.type)):
        lines.append("")
        lines.append(f"; {rrset.provider}: {', '.join(rrset.sources)}")
        lines += [f"{absolute_name(rrset.name)} {rrset.ttl} IN {rrset.type} {rdata}" for rdata in rrset.rdatas]
    return "\n".join(lines) + "\n"


def _published(record: DnsRecord) -> PublishedRRset:
    """A lab record as its own name server publishes it (master-file rdata)."""
    rdatas = []
    for value in record.values:
        if record.type is RecordType.TXT:
            rdatas.append(txt_presentation([chunk.encode() for chunk in split_txt(value)]))
        elif record.type is RecordType.MX:
            preference, _, target = value.partition(" ")
            rdatas.append(f"{int(preference)} {absolute_name(target)}")
        elif record.type in (RecordType.PTR, RecordType.CNAME, RecordType.NS):
            rdatas.append(absolute_name(value))
        else:
            rdatas.append(value)
    return PublishedRRset(record.name, str(record.type), record.ttl, tuple(rdatas), (record.purpose,), LAB_PROVIDER)


def _zone_of(rrset: PublishedRRset, forward: Sequence[str], layout: LabLayout) -> str:
    if rrset.type == "PTR":
        return reverse_zone_name(_ptr_address(rrset.name))
    return _owning_zone(rrset.name, forward) or _lab_zone_of(rrset.name, layout)


def _lab_records(plan: Plan, layout: LabLayout, forward: Sequence[str]) -> list[DnsRecord]:
    def record(name: str, rtype: RecordType, value: str, purpose: str) -> DnsRecord:
        zone = (reverse_zone_name(_ptr_address(name)) if rtype is RecordType.PTR
                else _owning_zone(name, forward) or _lab_zone_of(name, layout))
        return DnsRecord(name=name, type=rtype, values=(value,), ttl=LAB_TTL, zone=zone,
                         purpose=f"lab: {purpose}", rule="lab only", tags=("lab",))

    outside = f"outside.{LAB_ZONE}"
    result = [
        record(NAMESERVER, RecordType.A, DNS_ADDRESS, "the lab's Knot"),
        record(ptr_name(DNS_ADDRESS), RecordType.PTR, NAMESERVER, "reverse of the lab's Knot"),
        record(outside, RecordType.A, OUTSIDER_ADDRESS, "a client outside every injection CIDR"),
        record(ptr_name(OUTSIDER_ADDRESS), RecordType.PTR, outside, "reverse of the outsider"),
        # RFC 7505 §3: "0 ." says the domain accepts no mail.
        record(NULL_MX_DOMAIN, RecordType.MX, "0 .", "a domain that accepts no mail (null MX)"),
    ]
    for provider in layout.providers:
        result += [
            record(provider.domain, RecordType.MX, f"10 {provider.mx_host}", f"provider {provider.name}"),
            record(provider.mx_host, RecordType.A, provider.address, f"MX host of {provider.name}"),
            record(ptr_name(provider.address), RecordType.PTR, provider.mx_host, f"PTR of {provider.name}"),
        ]
    for route in layout.routes:
        result += [
            record(route.smtp_host, RecordType.A, route.address, f"secondary route {route.name}"),
            record(ptr_name(route.address), RecordType.PTR, route.smtp_host, f"PTR of route {route.name}"),
        ]
        planned = plan.route(route.name)
        if planned.spf_include:
            # SES's real include lists Amazon's fleet; in the lab the fleet is the route server.
            result.append(record(planned.spf_include, RecordType.TXT, build_spf([route.address], []),
                                 f"SPF include of route {route.name}"))
    return _merge(result)


def write_zones(zones: dict[str, str], zones_dir: Path) -> None:
    zones_dir.mkdir(parents=True, exist_ok=True)
    for old in zones_dir.glob("*.zone"):
        old.unlink()
    for zone, text in zones.items():
        (zones_dir / f"{zone}.zone").write_text(text)


def render_knot_conf(zones: Iterable[str], zones_dir: Path, run_dir: Path, *,
                     listen: str = f"{DNS_ADDRESS}@53", transfer_from: str | None = None) -> str:
    """knot.conf(5): one listen address, one zone entry per file, no journal or DNSSEC.

    `transfer_from` allows AXFR from that address (drift reads whole zones that way).
    """
    acl = ["acl:", "  - id: transfer", f"    address: {transfer_from}", "    action: transfer"]
    lines = [
        "server:",
        f"    listen: {listen}",
        f"    rundir: {run_dir}",
        "database:",
        f"    storage: {run_dir / 'db'}",
        "control:",
        f"    listen: {run_dir / 'knot.sock'}",
        "log:",
        "  - target: stderr",
        "    any: warning",
        *(acl if transfer_from else []),
        "template:",
        "  - id: default",
        *(["    acl: transfer"] if transfer_from else []),
        f"    storage: {zones_dir.resolve()}",
        '    file: "%s.zone"',
        # The zone files are outputs for inspection: Knot must never rewrite them.
        "    zonefile-sync: -1",
        "    zonefile-load: whole",
        "    journal-content: none",
        "zone:",
    ]
    lines += [f"  - domain: {zone}" for zone in sorted(zones)]
    return "\n".join(lines) + "\n"


def start_knot(state: LabState, layout: LabLayout, zones: Sequence[str]) -> int:
    run_dir = layout.runtime_dir / "knot"
    (run_dir / "db").mkdir(parents=True, exist_ok=True)
    conf = run_dir / "knot.conf"
    conf.write_text(render_knot_conf(zones, layout.zones_dir, run_dir))
    check = subprocess.run(["knotc", "-c", str(conf), "conf-check"],
                           capture_output=True, text=True, check=False)
    if check.returncode != 0:
        raise LabError(f"{conf}: knotc conf-check failed: {(check.stderr or check.stdout).strip()}")
    pid = start_process(state, "knotd", in_namespace(layout.namespace, ["knotd", "-c", str(conf)]),
                        run_dir / "knotd.log")
    wait_for_zones(layout.namespace, zones)
    return pid


def wait_for_zones(namespace: str, zones: Sequence[str], timeout: float = READY_TIMEOUT_SECONDS) -> None:
    """Until every zone answers its SOA authoritatively (Knot loads zones after it starts listening)."""
    deadline = time.monotonic() + timeout
    pending = set(zones)
    while pending:
        args = ["kdig", f"@{DNS_ADDRESS}", "+norec", "+noall", "+answer", "+timeout=1", "+retry=0"]
        for zone in sorted(pending):
            args += [zone, "SOA"]
        out = subprocess.run(in_namespace(namespace, args), capture_output=True, text=True, check=False)
        pending -= {line.split()[0].rstrip(".").lower() for line in out.stdout.splitlines() if line.strip()}
        if not pending:
            return
        if time.monotonic() > deadline:
            missing = ", ".join(sorted(pending))
            raise LabError(f"knotd at {DNS_ADDRESS}: zones {missing} not served after {timeout:.0f} s")
        time.sleep(0.1)


def _merge(records: list[DnsRecord]) -> list[DnsRecord]:
    """One RRset per (name, type): the lab adds several PTRs or A records under one name otherwise."""
    merged: dict[tuple[str, RecordType], DnsRecord] = {}
    for r in records:
        key = (r.name, r.type)
        if key in merged:
            values = tuple(dict.fromkeys(merged[key].values + r.values))
            merged[key] = dataclasses.replace(merged[key], values=values)
        else:
            merged[key] = r
    return list(merged.values())


def _owning_zone(name: str, zones: Sequence[str]) -> str | None:
    matches = [z for z in zones if name == z or name.endswith("." + z)]
    return max(matches, key=len) if matches else None


def _lab_zone_of(name: str, layout: LabLayout) -> str:
    """Zone for a lab name outside the plan's zones: the provider domain, the lab zone, or the name itself."""
    for provider in layout.providers:
        if name == provider.domain or name.endswith("." + provider.domain):
            return provider.domain
    if name == LAB_ZONE or name.endswith("." + LAB_ZONE):
        return LAB_ZONE
    return name  # a route host or SPF include domain becomes a one-name zone of its own


def _ptr_address(name: str) -> str:
    labels = name.removesuffix(".in-addr.arpa").split(".")
    return ".".join(reversed(labels))
