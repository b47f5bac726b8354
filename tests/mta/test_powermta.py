"""Rendered PowerMTA configs pass the validator; the validator catches deliberately broken files."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import pytest

from mailinfra.mta.pmta_check import check_powermta
from mailinfra.plan.model import Plan

GOOD = """\
<source 10.0.0.0/8>
    always-allow-relaying yes
    process-x-virtual-mta yes
    default-virtual-mta pool-tx
</source>
<smtp-pattern-list throttle>
    reply /^421 .*try again later/ mode=backoff
</smtp-pattern-list>
<virtual-mta ip-tx1>
    smtp-source-host 192.0.2.10 tx1.mail.example.com
    <domain gmail.com>
        max-msg-rate 500/h
        smtp-pattern-list throttle
        backoff-reroute-to-virtual-mta fallback-tx
    </domain>
</virtual-mta>
<virtual-mta fallback-tx>
    <domain *>
        smtp-hosts [relay.example.net]:587
    </domain>
</virtual-mta>
<virtual-mta-pool pool-tx>
    virtual-mta ip-tx1
</virtual-mta-pool>
"""
HOST = ["192.0.2.10"]


def _pmta_hosts(plan: Plan) -> list[str]:
    return [h.name for h in plan.hosts if h.mta == "powermta"]


def test_good_file_has_no_findings() -> None:
    """The hand-written reference file is clean (so the broken variants below fail for their one reason)."""
    assert check_powermta(GOOD, HOST) == []


@pytest.mark.parametrize(("broken", "expected"), [
    (GOOD.replace("</virtual-mta-pool>\n", ""), "<virtual-mta-pool> is never closed"),
    (GOOD.replace("    </domain>\n</virtual-mta>\n<virtual-mta fallback", "</virtual-mta>\n<virtual-mta fallback"),
     "</virtual-mta> closes <domain>"),
    (GOOD + "</source>\n", "</source> closes nothing"),
    (GOOD.replace("max-msg-rate 500/h", "bind-to-source-ip 192.0.2.10"), "unknown directive 'bind-to-source-ip'"),
    (GOOD.replace("<smtp-pattern-list throttle>", "<smtp-pattern-lists throttle>").replace(
        "</smtp-pattern-list>", "</smtp-pattern-lists>"), "unknown block <smtp-pattern-lists>"),
    (GOOD.replace("default-virtual-mta pool-tx", "default-virtual-mta pool-txx"), "'pool-txx' is referenced"),
    (GOOD.replace("virtual-mta ip-tx1\n</virtual-mta-pool>", "virtual-mta ip-tx9\n</virtual-mta-pool>"),
     "'ip-tx9' is referenced"),
    (GOOD.replace("backoff-reroute-to-virtual-mta fallback-tx", "backoff-reroute-to-virtual-mta fallback-rx"),
     "'fallback-rx' is referenced"),
    (GOOD.replace("        smtp-pattern-list throttle", "        smtp-pattern-list slowdown"),
     "'slowdown' is referenced"),
    (GOOD.replace("192.0.2.10 tx1", "198.51.100.7 tx1"), "198.51.100.7 is not an address of this host"),
    (GOOD.replace("    max-msg-rate 500/h", "    max-smtp-out"), "max-smtp-out needs a value"),
    (GOOD.replace("<virtual-mta fallback-tx>\n    <domain *>\n        smtp-hosts [relay.example.net]:587",
                  "<virtual-mta fallback-tx>\n    <domain *>\n        smtp-source-host 192.0.2.10 x.example.com"),
     "smtp-source-host is not allowed inside <domain>"),
    (GOOD.replace("<virtual-mta fallback-tx>", "<virtual-mta ip-tx1>"), "already defined"),
])
def test_broken_files_are_reported(broken: str, expected: str) -> None:
    """Each deliberately broken variant gives a finding naming what is wrong."""
    findings = [str(f) for f in check_powermta(broken, HOST)]
    assert any(expected in f for f in findings), findings


def test_rendered_configs_pass(rendered_stack: tuple[Plan, dict[str, Path]]) -> None:
    """Every PowerMTA host of every reference stack renders a config without findings."""
    plan, dirs = rendered_stack
    for host in _pmta_hosts(plan):
        text = (dirs[host] / "etc/pmta/config").read_text()
        assert check_powermta(text, [plan.ip(i).address for i in plan.host(host).ips]) == [], host


def test_every_pmta_ip_in_exactly_one_virtual_mta(rendered_stack: tuple[Plan, dict[str, Path]]) -> None:
    """Each IP on a PowerMTA host is the source of exactly one receiver-facing virtual-mta on exactly that
    host (a relay hop to our own route host, `smtp-hosts`, reaches no receiver and carries no limits)."""
    plan, dirs = rendered_stack
    placements: dict[str, list[str]] = defaultdict(list)
    for host in _pmta_hosts(plan):
        text = (dirs[host] / "etc/pmta/config").read_text()
        for block in re.findall(r"^<virtual-mta \S+>$.*?^</virtual-mta>$", text, re.MULTILINE | re.DOTALL):
            if "smtp-hosts" in block:
                continue
            for address in re.findall(r"^\s*smtp-source-host (\S+) ", block, re.MULTILINE):
                placements[address].append(host)
    for ip in plan.ips:
        if plan.host(ip.host).mta == "powermta":
            assert placements[ip.address] == [ip.host], ip.name


def test_every_pmta_stream_signs(rendered_stack: tuple[Plan, dict[str, Path]]) -> None:
    """Every stream on a PowerMTA host has a domain-key for its sending domain and active selector."""
    plan, dirs = rendered_stack
    for host in _pmta_hosts(plan):
        text = (dirs[host] / "etc/pmta/config").read_text()
        for stream in (plan.stream(s) for s in plan.host(host).streams):
            assert f"domain-key {stream.dkim_selector},{stream.sending_domain}," in text


def test_route_hosts_accept_their_peers(rendered_stack: tuple[Plan, dict[str, Path]]) -> None:
    """A PowerMTA host named in a `hosts` route lets every IP of the routed streams' hosts relay through it."""
    plan, dirs = rendered_stack
    for route in (r for r in plan.routes if r.kind == "hosts"):
        for target in (h for h in route.hosts if plan.host(h).mta == "powermta"):
            text = (dirs[target] / "etc/pmta/config").read_text()
            peers = [h for h in plan.hosts if h.name != target and set(h.streams) & set(route.streams)]
            assert peers
            for address in (plan.ip(i).address for h in peers for i in h.ips):
                assert re.search(rf"<source {re.escape(address)}/32>\n    always-allow-relaying yes\n", text)
