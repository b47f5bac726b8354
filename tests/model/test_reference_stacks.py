"""The reference stacks load, plan, and keep the shape issue 2 asks of them."""

from __future__ import annotations

import datetime as dt

import pytest

from mailinfra.dns.spf import check_spf
from mailinfra.model.load import load_stack
from mailinfra.plan import build_plan
from mailinfra.plan.model import Plan

AS_OF = dt.date(2026, 11, 29)


def plan_of(stack: str) -> Plan:
    return build_plan(load_stack(stack), as_of=AS_OF)


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_reference_stack_plans_cleanly(stack: str) -> None:
    """Every reference stack validates, plans, and publishes SPF records a receiver accepts."""
    plan = plan_of(stack)
    spf = [r for r in plan.records if r.type == "TXT" and r.values[0].startswith("v=spf1")]
    assert spf and all(check_spf(r.values[0]) == [] for r in spf), [(r.name, check_spf(r.values[0])) for r in spf]
    for host in plan.hosts:
        assert len(host.ips) <= host.max_ips, host.name


def test_staging_is_cloudflare_with_powermta() -> None:
    """staging: like dev, on Cloudflare, with marketing and bulk on a PowerMTA host and transactional on Postfix."""
    plan = plan_of("staging")
    assert {z.provider for z in plan.zones if not z.reverse} == {"cloudflare"}
    assert all(z.zone_id and len(z.zone_id) == 32 for z in plan.zones if not z.reverse)
    mta_of = {h.name: h.mta for h in plan.hosts}
    kinds_by_mta = {(s.kind, mta_of[ip.host]) for s in plan.streams for ip in plan.ips if ip.stream == s.name}
    assert kinds_by_mta == {("transactional", "postfix"), ("marketing", "powermta"), ("bulk", "powermta")}


def test_prod_is_the_reference_at_scale() -> None:
    """prod: >= 2 domains with all three streams each, >= 56 IPs on >= 6 hosts of both MTAs, SES and host routes."""
    plan = plan_of("prod")
    domains = {s.org_domain for s in plan.streams}
    assert len(domains) >= 2
    for domain in domains:
        streams = [s for s in plan.streams if s.org_domain == domain]
        assert sorted(s.kind for s in streams) == ["bulk", "marketing", "transactional"]
        marketing = next(s for s in streams if s.kind == "marketing")
        assert [tier for tier, _ in marketing.pools] == ["active", "winback", "cold"]
    assert len(plan.ips) >= 56 and len(plan.hosts) >= 6
    assert {h.mta for h in plan.hosts} == {"postfix", "powermta"}
    route_kind = {r.name: r.kind for r in plan.routes}
    assert {route_kind[s.route] for s in plan.streams if s.kind == "transactional" and s.route} == {"ses"}
    assert {route_kind[s.route] for s in plan.streams if s.kind == "marketing" and s.route} == {"hosts"}
    assert any(ip.adopted for ip in plan.ips) and any(ip.warmup.warmed for ip in plan.ips)
    starts = {ip.warmup.start.month for ip in plan.ips if ip.warmup.start}
    assert starts == {10, 11, 12}


def test_prod_publishes_mta_sts_and_tls_rpt_and_enforcing_dmarc() -> None:
    """prod's bounce domains carry MTA-STS and TLS-RPT; every DMARC policy quarantines or rejects with rua."""
    plan = plan_of("prod")
    names = {r.name for r in plan.records if r.type == "TXT"}
    for stream in plan.streams:
        assert f"_mta-sts.{stream.return_path}" in names and f"_smtp._tls.{stream.return_path}" in names
    dmarc = [r.values[0] for r in plan.records if r.name.startswith("_dmarc.")]
    assert dmarc and all(("p=quarantine" in v or "p=reject" in v) and "rua=mailto:" in v for v in dmarc)
