"""Zone transfer path: with AXFR allowed, drift reports exactly what per-record queries report."""

from __future__ import annotations

import asyncio
from pathlib import Path

import dns.name
import pytest

from mailinfra.drift import wire
from mailinfra.drift.compare import compare_record
from mailinfra.drift.dns_check import DnsOptions, check_dns
from mailinfra.drift.expected import expected_rrsets
from mailinfra.drift.resolve import Server
from mailinfra.drift.transfer import _in_zone, transfer_zone, transfer_zones
from tests.drift.knot import knot_serving, render_zones
from tests.drift.test_dns_drift import CASES, PLAN, Edit, not_ok


@pytest.mark.parametrize("edit", [pytest.param(None, id="unchanged"),
                                  *(pytest.param(c[1], id=c[0]) for c in CASES)])
def test_transferred_zones_give_the_same_results_as_queries(tmp_path: Path, edit: Edit | None) -> None:
    """GIVEN a Knot that allows AXFR WHEN drift runs with and without transfers THEN the results are equal,
    and the transfer really happened (every zone came over AXFR)."""
    records = list(PLAN.records)
    served = edit(records) if edit else records
    with knot_serving(tmp_path, render_zones(PLAN, served), allow_transfer=True) as port:
        server = Server("127.0.0.1", port)
        assert all(transfer_zone(server, zone.name, 1.0) is not None for zone in PLAN.zones)
        by_transfer, failures = asyncio.run(check_dns(PLAN, DnsOptions(server)))
        by_query, _ = asyncio.run(check_dns(PLAN, DnsOptions(server, transfer=False)))
    assert failures == []
    assert by_transfer == by_query
    assert len(not_ok(by_transfer)) == (0 if edit is None else 1)


def test_refused_transfer_falls_back_to_queries(tmp_path: Path) -> None:
    """Knot's default refuses AXFR: transfer_zone says so (None) and every record is still checked."""
    with knot_serving(tmp_path, render_zones(PLAN, list(PLAN.records))) as port:
        server = Server("127.0.0.1", port)
        assert transfer_zone(server, PLAN.zones[0].name, 1.0) is None
        results, failures = asyncio.run(check_dns(PLAN, DnsOptions(server)))
    assert failures == [] and len(results) == len(PLAN.records) and not_ok(results) == []


def test_zones_share_one_connection_and_a_refused_one_spoils_none(tmp_path: Path) -> None:
    """GIVEN Knot serving the dev zones WHEN they are transferred together with a zone it does not serve
    THEN each served zone equals its own single transfer and only the unknown zone is None."""
    zones = sorted(zone.name for zone in PLAN.zones)
    with knot_serving(tmp_path, render_zones(PLAN, list(PLAN.records)), allow_transfer=True) as port:
        server = Server("127.0.0.1", port)
        together = asyncio.run(transfer_zones(dict.fromkeys([*zones, "not-served.test"], server), 1.0))
        alone = {name: transfer_zone(server, name, 1.0) for name in zones}
    assert together.pop("not-served.test") is None
    assert together == alone and all(zone is not None for zone in alone.values())


@pytest.mark.parametrize("edit", [pytest.param(None, id="unchanged"),
                                  *(pytest.param(c[1], id=c[0]) for c in CASES)])
def test_only_rrsets_with_the_plans_bytes_skip_the_comparison_by_meaning(tmp_path: Path, edit: Edit | None) -> None:
    """GIVEN transferred zones WHEN each planned RRset is looked up by bytes THEN exactly the records the
    edit left alone have a precomputed result, and it is what comparing their rendered values gives."""
    served = edit(list(PLAN.records)) if edit else list(PLAN.records)
    with knot_serving(tmp_path, render_zones(PLAN, served), allow_transfer=True) as port:
        server = Server("127.0.0.1", port)
        zones = asyncio.run(transfer_zones({zone.name: server for zone in PLAN.zones}, 1.0))
    untouched = set(PLAN.records) & set(served)
    for record, planned in zip(PLAN.records, expected_rrsets(PLAN.records, str(server)), strict=True):
        zone = zones[record.zone]
        assert zone is not None
        rdatas = zone.rrsets.get(planned.key)
        ok = None if rdatas is None else planned.ok.get(rdatas)
        assert (ok is not None) == (record in untouched), record.key
        if ok is not None:
            assert ok == compare_record(record, zone.answer(*planned.key).values, str(server))


@pytest.mark.parametrize(("name", "inside"), [
    ("example.com", True), ("a.b.example.com", True), ("EXAMPLE.com", True),
    ("xexample.com", False),  # ends with the origin's bytes, not at a label boundary
    ("com", False), ("example.org", False),
])
def test_zone_membership_is_decided_by_labels(name: str, inside: bool) -> None:
    """A name is in the zone when the origin's labels end it (dns.name.Name.is_subdomain), bytes alone do not."""
    assert _in_zone(wire.name_wire(name), wire.name_wire("example.com")) is inside
    assert dns.name.from_text(name).is_subdomain(dns.name.from_text("example.com")) is inside
