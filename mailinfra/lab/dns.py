"""The lab's DNS: the plan's zones (same generator as the preview) with lab keys, plus lab zones.

Knot (knotd) runs inside the namespace on DNS_ADDRESS:53 and is authoritative for every zone, so
Postfix's MX lookups, OpenDKIM and the providers' SPF/DKIM/DMARC checks all see the lab records.
"""

from __future__ import annotations

import dataclasses
import subprocess
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from mailinfra.dns.dkim import build_dkim_ed25519, build_dkim_rsa, dkim_record_name
from mailinfra.dns.records import DnsRecord, RecordType
from mailinfra.dns.spf import build_spf
from mailinfra.dns.zonefile import ptr_name, render_zone, reverse_zone_name
from mailinfra.lab.keys import LabKey
from mailinfra.lab.layout import DNS_ADDRESS, LAB_ZONE, OUTSIDER_ADDRESS, LabLayout
from mailinfra.lab.namespace import LabError, in_namespace
from mailinfra.lab.procs import LabState, start_process
from mailinfra.plan.model import Plan

LAB_TTL = 60
NAMESERVER = f"ns.{LAB_ZONE}"
HOSTMASTER = f"hostmaster@{LAB_ZONE}"
READY_TIMEOUT_SECONDS = 10.0


def plan_lab_records(plan: Plan, layout: LabLayout, keys: Sequence[LabKey]) -> tuple[DnsRecord, ...]:
    """The plan's records with the lab keys' public halves, plus provider, route and infra records."""
    texts = {}
    for key in keys:
        build = build_dkim_ed25519 if key.algorithm == "ed25519" else build_dkim_rsa
        text = build(key.public_key)
        for planned in plan.dkim_keys:
            if (planned.domain, planned.selector) == (key.domain, key.selector):
                texts.update({dkim_record_name(key.selector, d): text for d in planned.signing_domains})
    records = [
        dataclasses.replace(r, values=(texts[r.name],), placeholder=False)
        if r.type is RecordType.TXT and r.name in texts else r
        for r in plan.records
    ]
    forward = [z.name for z in plan.zones if not z.reverse]
    records += _lab_records(plan, layout, forward)
    return tuple(records)


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


def render_lab_zones(plan: Plan, records: Sequence[DnsRecord], serial: int) -> dict[str, str]:
    """zone name -> master file text, every zone rendered by mailinfra.dns.zonefile.render_zone."""
    zones = sorted({r.zone for r in records} | {z.name for z in plan.zones})
    return {
        zone: render_zone(zone, [r for r in records if r.zone == zone], serial=serial, ttl=LAB_TTL,
                          primary_ns=NAMESERVER, hostmaster=HOSTMASTER, nameservers=[NAMESERVER],
                          header_comment=f"lab zone for stack {plan.stack}: lab addresses and lab DKIM keys")
        for zone in zones
    }


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
