"""DNS drift against a real Knot server: each injected change is reported exactly, and nothing else."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import json
import socket
from collections.abc import Callable
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from mailinfra.cli import drift_cmd
from mailinfra.dns.records import DnsRecord
from mailinfra.dns.zonefile import ptr_name
from mailinfra.drift.dns_check import DnsOptions, check_dns
from mailinfra.drift.model import DriftReport, DriftResult, Status
from mailinfra.drift.resolve import Server
from mailinfra.errors import UsageError
from mailinfra.model.load import load_stack
from mailinfra.plan.build import build_plan
from mailinfra.plan.model import Plan
from tests.drift.knot import free_port, knot_serving, render_zones

Edit = Callable[[list[DnsRecord]], list[DnsRecord]]
PLAN = build_plan(load_stack("dev"), dt.date(2026, 12, 1))


def replace(key: str, *values: str) -> Edit:
    def edit(records: list[DnsRecord]) -> list[DnsRecord]:
        assert any(r.key == key for r in records)
        return [dataclasses.replace(r, values=values) if r.key == key else r for r in records]

    return edit


def delete(key: str) -> Edit:
    def edit(records: list[DnsRecord]) -> list[DnsRecord]:
        assert any(r.key == key for r in records)
        return [r for r in records if r.key != key]

    return edit


def value(key: str) -> str:
    return next(r for r in PLAN.records if r.key == key).values[0]


def drift_against(tmp_path: Path, edit: Edit | None = None, plan: Plan = PLAN) -> list[DriftResult]:
    records = list(plan.records)
    served = edit(records) if edit else records
    with knot_serving(tmp_path, render_zones(plan, served)) as port:
        results, failures = asyncio.run(check_dns(plan, DnsOptions(Server("127.0.0.1", port))))
    assert failures == []
    assert len(results) == len(plan.records)
    return results


def not_ok(results: list[DriftResult]) -> list[DriftResult]:
    return [r for r in results if r.status is not Status.OK]


SPF_NEWS = "TXT:bounce.news.example.com"
DMARC = "TXT:_dmarc.example.com"
TX1_PTR = f"PTR:{ptr_name(PLAN.ip('tx1').address)}"

CASES = [
    (
        "record deleted",
        delete("TXT:s2026a._domainkey.news.example.com"),
        "TXT:s2026a._domainkey.news.example.com",
        Status.MISSING,
        "no TXT record",
    ),
    (
        "SPF changed",
        replace(SPF_NEWS, value(SPF_NEWS).replace(" -all", " ip4:192.0.2.66 -all")),
        SPF_NEWS,
        Status.CHANGED,
        "+ip4:192.0.2.66",
    ),
    ("SPF softened", replace(SPF_NEWS, value(SPF_NEWS).replace("-all", "~all")), SPF_NEWS, Status.CHANGED, "-all"),
    (
        "DMARC weakened",
        replace(DMARC, value(DMARC).replace("p=quarantine", "p=none")),
        DMARC,
        Status.CHANGED,
        "p: quarantine -> none",
    ),
    (
        "PTR wrong",
        replace(TX1_PTR, "ma1.news.example.com"),
        TX1_PTR,
        Status.CHANGED,
        "ma1.news.example.com forward-confirmed: no",
    ),
    (
        "extra MX",
        replace("MX:bounce.news.example.com", "10 mta1.example.com", "20 rogue.example.net"),
        "MX:bounce.news.example.com",
        Status.EXTRA,
        "rogue.example.net",
    ),
    (
        "second SPF record",
        replace(SPF_NEWS, value(SPF_NEWS), "v=spf1 include:spf.rogue.example.net -all"),
        SPF_NEWS,
        Status.EXTRA,
        "spf.rogue.example.net",
    ),
    (
        "A record moved",
        replace("A:tx2.mail.example.com", "192.0.2.200"),
        "A:tx2.mail.example.com",
        Status.CHANGED,
        "+192.0.2.200",
    ),
]


def test_unchanged_zones_have_no_drift(tmp_path: Path) -> None:
    results = drift_against(tmp_path)
    assert not_ok(results) == []


@pytest.mark.parametrize(("edit", "key", "status", "detail"), [pytest.param(*c[1:], id=c[0]) for c in CASES])
def test_each_injected_change_is_reported_exactly(
    tmp_path: Path, edit: Edit, key: str, status: Status, detail: str
) -> None:
    found = not_ok(drift_against(tmp_path, edit))
    assert [(r.key, r.status) for r in found] == [(key, status)]
    assert detail in found[0].detail


def test_same_meaning_in_other_bytes_is_not_drift(tmp_path: Path) -> None:
    """Reordered SPF terms, DMARC tags and rua list, other case and spacing: all still ok."""
    spf = value(SPF_NEWS).split()
    reordered_spf = " ".join([spf[0].upper(), *reversed(spf[1:-1]), "-ALL"])
    dmarc = (
        "v=DMARC1;  p=quarantine ; fo=1; aspf=r; adkim=r; sp=quarantine; "
        "ruf=mailto:dmarc-forensic@example.com; rua=mailto:dmarc-reports@example.com;"
    )

    def edit(records: list[DnsRecord]) -> list[DnsRecord]:
        return replace(DMARC, dmarc)(replace(SPF_NEWS, reordered_spf)(records))

    assert not_ok(drift_against(tmp_path, edit)) == []


def test_unrelated_txt_beside_a_planned_one_is_not_drift(tmp_path: Path) -> None:
    """A site-verification token next to the SPF record is someone else's business."""
    edit = replace(SPF_NEWS, value(SPF_NEWS), "google-site-verification=abc123")
    assert not_ok(drift_against(tmp_path, edit)) == []


def drift_args(port: int, fmt: str, *, timeout: float) -> argparse.Namespace:
    """`mailinfra drift dev --nameserver 127.0.0.1:PORT --format FMT`, DNS only."""
    return argparse.Namespace(stack="dev", nameserver=f"127.0.0.1:{port}", format=fmt, timeout=timeout, attempts=2,
                              no_dns=False, aws=False, aws_endpoint=None, aws_region=None, pulumi=False)


def test_server_down_is_unknown_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()  # nothing listens there: the kernel answers port unreachable
    code = drift_cmd.run(drift_args(port, "json", timeout=0.3))
    report = json.loads(capsys.readouterr().out)
    assert code == 2
    assert {r["status"] for r in report["results"]} == {"unknown"}
    assert any(f"127.0.0.1:{port}" in line for line in report["could_not_check"])


def test_silent_server_times_out_as_unknown() -> None:
    """A server that swallows queries: every record unknown with the timeout named, never ok."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        server = Server("127.0.0.1", silent.getsockname()[1])
        results, failures = asyncio.run(check_dns(PLAN, DnsOptions(server, timeout=0.2, attempts=2)))
    assert {r.status for r in results} == {Status.UNKNOWN}
    assert all("timeout after 0.2 s (2 attempts)" in r.detail for r in results)
    assert failures and str(server) in failures[0]


def test_command_exit_codes_and_junit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """GIVEN Knot with the DMARC record weakened WHEN drift runs THEN exit 1 and one JUnit failure."""
    served = replace(DMARC, value(DMARC).replace("p=quarantine", "p=none"))(list(PLAN.records))
    with knot_serving(tmp_path, render_zones(PLAN, served)) as port:
        code = drift_cmd.run(drift_args(port, "junit", timeout=1.0))
    suite = ET.fromstring(capsys.readouterr().out)
    failures = [case.get("name") for case in suite.iter("testcase") if case.find("failure") is not None]
    assert (code, failures, suite.get("errors")) == (1, [DMARC], "0")


def test_exit_code_rules() -> None:
    ok = DriftResult("dns", "A:x", Status.OK)
    assert DriftReport("s", [ok]).exit_code() == 0
    assert DriftReport("s", [ok, DriftResult("dns", "A:y", Status.UNKNOWN)]).exit_code() == 2
    assert DriftReport("s", [ok], ["nameserver down"]).exit_code() == 2
    assert (
        DriftReport(
            "s", [DriftResult("dns", "A:y", Status.UNKNOWN), DriftResult("dns", "A:z", Status.MISSING)]
        ).exit_code()
        == 1
    )


def test_no_dns_alone_checks_nothing_and_says_so() -> None:
    """`drift --no-dns` without --aws/--pulumi exited 0 having checked nothing: a usage error (exit 2)."""
    args = drift_args(free_port(), "table", timeout=0.2)
    args.no_dns = True
    with pytest.raises(UsageError, match="--no-dns: received it without --aws or --pulumi"):
        drift_cmd.run(args)


def test_dead_server_junit_counts_add_up_and_table_names_the_cause_once(capsys: pytest.CaptureFixture[str]) -> None:
    """Before: JUnit `tests="52" errors="53"` (the server line was a testcase not counted) and the table listed 52
    UNKNOWN lines under the one real cause."""
    port = free_port()
    assert drift_cmd.run(drift_args(port, "junit", timeout=0.2)) == 2
    suite = ET.fromstring(capsys.readouterr().out)
    cases = list(suite.iter("testcase"))
    errored = [c for c in cases if c.find("error") is not None]
    assert int(suite.get("tests") or -1) == len(cases)
    assert int(suite.get("errors") or -1) == len(errored) <= len(cases)
    assert drift_cmd.run(drift_args(port, "table", timeout=0.2)) == 2
    table = capsys.readouterr().out.splitlines()
    assert len(table) <= 4, table  # summary, COULD NOT CHECK, one folded UNKNOWN line per cause
    assert any(line.startswith("COULD NOT CHECK") and f"127.0.0.1:{port}" in line for line in table)
    assert any(line.startswith("UNKNOWN") and f"{len(PLAN.records)} records" in line for line in table), table
