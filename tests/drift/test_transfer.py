"""Zone transfer path: with AXFR allowed, drift reports exactly what per-record queries report."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mailinfra.drift.dns_check import DnsOptions, check_dns
from mailinfra.drift.resolve import Server
from mailinfra.drift.transfer import transfer_zone, transfer_zones
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
