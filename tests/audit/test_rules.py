"""Each audit rule catches a topology (a mutation of dev) that violates it, and only that rule fires."""

from __future__ import annotations

import argparse
import base64
import copy
import dataclasses
import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mailinfra.audit import RULES, Finding, Severity, audit_plan, has_errors
from mailinfra.audit.render import render
from mailinfra.cli import audit_cmd
from mailinfra.dns.zonefile import ptr_name
from mailinfra.model.load import STACKS_DIR, load_stack, validate_config
from mailinfra.plan.build import build_plan
from mailinfra.plan.model import Plan

DEV_FILE = STACKS_DIR / "Pulumi.dev.yaml"
AS_OF = dt.date(2026, 12, 1)

ConfigEdit = Callable[[dict[str, Any]], None]
PlanEdit = Callable[[Plan], Plan]


def dev_raw() -> dict[str, Any]:
    config = yaml.safe_load(DEV_FILE.read_text())["config"]
    return {k.removeprefix("mailinfra:"): v for k, v in config.items() if k.startswith("mailinfra:")}


def audit_of(config_edit: ConfigEdit | None = None, plan_edit: PlanEdit | None = None) -> list[Finding]:
    raw = copy.deepcopy(dev_raw())
    if config_edit:
        config_edit(raw)
    stack = validate_config(raw, "dev", "test")
    plan = build_plan(stack, AS_OF)
    if plan_edit:
        plan = plan_edit(plan)
    return audit_plan(plan, stack.config)


def no_seeds(raw: dict[str, Any]) -> None:
    raw["monitoring"] = {**raw.get("monitoring", {}), "seeds": {}}


def serious(findings: list[Finding]) -> set[str]:
    return {f.code for f in findings if f.severity is not Severity.INFO}


# ------------------------------------------------------------------- plan edits


def drop_record(key: str) -> PlanEdit:
    def edit(plan: Plan) -> Plan:
        assert any(r.key == key for r in plan.records), key
        return dataclasses.replace(plan, records=tuple(r for r in plan.records if r.key != key))

    return edit


def set_record(key: str, *values: str) -> PlanEdit:
    def edit(plan: Plan) -> Plan:
        assert any(r.key == key for r in plan.records), key
        return dataclasses.replace(
            plan,
            records=tuple(dataclasses.replace(r, values=values) if r.key == key else r for r in plan.records),
        )

    return edit


def edit_stream(name: str, **changes: Any) -> PlanEdit:
    def edit(plan: Plan) -> Plan:
        return dataclasses.replace(
            plan,
            streams=tuple(dataclasses.replace(s, **changes) if s.name == name else s for s in plan.streams),
        )

    return edit


def edit_ip(name: str, **changes: Any) -> PlanEdit:
    def edit(plan: Plan) -> Plan:
        return dataclasses.replace(
            plan, ips=tuple(dataclasses.replace(i, **changes) if i.name == name else i for i in plan.ips)
        )

    return edit


def move_return_path(name: str, new: str) -> PlanEdit:
    """Move a stream's return path together with its SPF and MX records (as the planner would)."""

    def edit(plan: Plan) -> Plan:
        old = plan.stream(name).return_path
        records = tuple(dataclasses.replace(r, name=new) if r.name == old else r for r in plan.records)
        return dataclasses.replace(edit_stream(name, return_path=new)(plan), records=records)

    return edit


def weak_dkim_key(plan: Plan) -> Plan:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    b64 = base64.b64encode(der).decode()
    return dataclasses.replace(
        plan,
        dkim_keys=tuple(
            dataclasses.replace(k, public_key=b64, placeholder=False) if k.selector == "s2026a" else k
            for k in plan.dkim_keys
        ),
    )


def unwarmed(plan: Plan) -> Plan:
    ip = plan.ip("tx1")
    return edit_ip("tx1", warmup=dataclasses.replace(ip.warmup, start=None, schedule=None))(plan)


# ------------------------------------------------------------------- config edits


def dmarc(**changes: Any) -> ConfigEdit:
    def edit(raw: dict[str, Any]) -> None:
        raw["domains"]["example.com"]["dmarc"].update(changes)

    return edit


def stream(name: str, **changes: Any) -> ConfigEdit:
    def edit(raw: dict[str, Any]) -> None:
        for key, value in changes.items():
            if value is None:
                raw["streams"][name].pop(key, None)
            else:
                raw["streams"][name][key] = value

    return edit


def single_tier(raw: dict[str, Any]) -> None:
    raw["streams"]["marketing"]["tiers"] = {"active": "mkt-active"}
    del raw["pools"]["mkt-winback"], raw["pools"]["mkt-cold"]


def no_fbl(raw: dict[str, Any]) -> None:
    raw["bounces"].pop("fbl_mailbox", None)
    raw["bounces"].pop("fbl_addresses", None)


def fbl_at_the_org_domain(raw: dict[str, Any]) -> None:
    # The old dev value: example.com's MX is not ours, so reports never reach the bounce hosts.
    raw["bounces"]["fbl_addresses"] = ["fbl@example.com"]


def two_bounce_hosts_with_sqlite(raw: dict[str, Any]) -> None:
    raw["hosts"]["mta2"] = dict(raw["hosts"]["mta1"])
    raw["pools"]["bulk"]["hosts"] = ["mta2"]
    raw["bounces"]["hosts"] = ["mta1", "mta2"]


def no_tls_rpt(raw: dict[str, Any]) -> None:
    del raw["bounces"]["tls_rpt_rua"]


def relay_on_port_25(raw: dict[str, Any]) -> None:
    raw["routes"]["relay"]["port"] = 25


def strict_dkim_relay_without_spf(raw: dict[str, Any]) -> None:
    raw["domains"]["example.com"]["dmarc"]["adkim"] = "s"
    raw["routes"]["relay"].pop("spf_include", None)


def helo_under_marketing(raw: dict[str, Any]) -> None:
    raw["pools"]["tx"]["ips"]["tx1"] = {"helo": "tx1.news.example.com"}


def old_isolation(raw: dict[str, Any]) -> None:
    raw["isolations"] = {"pool:bulk": {"reason": "listed on a blocklist",
                                       "since": (AS_OF - dt.timedelta(days=30)).isoformat()}}


def fast_schedule(raw: dict[str, Any]) -> None:
    caps = [int(200 * (300_000 / 200) ** (day / 13)) for day in range(14)]
    raw.setdefault("warmup_schedules", {})["kumo-aggressive"] = {"daily_caps": caps}


def spf_with(*terms: str) -> PlanEdit:
    return set_record("TXT:bounce.news.example.com", " ".join(["v=spf1", *terms]))


ELEVEN_INCLUDES = [f"include:spf{i}.partner.example.org" for i in range(11)] + ["-all"]

# id, config edit, plan edit, the one code expected (besides dev's own findings), a `where` it names
def drop_alert_routing(raw: dict[str, Any]) -> None:
    raw["monitoring"] = {**raw.get("monitoring", {}), "routing": {}}


CASES: list[tuple[str, ConfigEdit | None, PlanEdit | None, str, str]] = [
    ("no alert routing", drop_alert_routing, None, "monitoring-routing", "monitoring.routing"),
    (
        "shared return path",
        None,
        edit_stream("bulk", return_path="bounce.news.example.com"),
        "stream-subdomain",
        "streams.bulk.subdomain",
    ),
    (
        "SPF record deleted",
        None,
        drop_record("TXT:bounce.mail.example.com"),
        "spf-missing",
        "TXT:bounce.mail.example.com",
    ),
    (
        "DKIM key not published",
        None,
        drop_record("TXT:s2026a._domainkey.news.example.com"),
        "dkim-missing",
        "TXT:s2026a._domainkey.news.example.com",
    ),
    (
        "DMARC record deleted",
        None,
        drop_record("TXT:_dmarc.example.com"),
        "dmarc-missing",
        "TXT:_dmarc.example.com",
    ),
    (
        "DMARC p=none",
        dmarc(policy="none", subdomain_policy="none"),
        None,
        "dmarc-policy",
        "TXT:_dmarc.example.com",
    ),
    (
        "DMARC sp=none weakens the sending subdomains",
        dmarc(policy="reject", subdomain_policy="none"),
        None,
        "dmarc-policy",
        "TXT:_dmarc.example.com",
    ),
    ("DMARC without rua", dmarc(rua=[]), None, "dmarc-rua", "TXT:_dmarc.example.com"),
    (
        "external rua without authorization",
        dmarc(rua=["mailto:reports@dmarc.vendor.example"]),
        None,
        "dmarc-report-authorization",
        "TXT:example.com._report._dmarc.dmarc.vendor.example",
    ),
    (
        "strict aspf with a bounce subdomain",
        dmarc(aspf="s"),
        None,
        "dmarc-spf-alignment",
        "domains.example.com.dmarc.aspf",
    ),
    (
        "return path outside the org domain",
        None,
        move_return_path("bulk", "bounce.example.net"),
        "dmarc-spf-alignment",
        "streams.bulk.return_path",
    ),
    (
        "two streams share a pool",
        None,
        edit_stream("bulk", pools=(("default", "tx"),)),
        "pool-dedicated",
        "pools.tx",
    ),
    ("marketing without engagement tiers", single_tier, None, "pool-tiers", "streams.marketing.tiers"),
    ("IP without warmup", None, unwarmed, "warmup-set", "pools.tx.ips.tx1.warmup"),
    (
        "IP with an unknown warmup schedule",
        None,
        lambda p: edit_ip("tx1", warmup=dataclasses.replace(p.ip("tx1").warmup, schedule="yolo"))(p),
        "warmup-set",
        "pools.tx.ips.tx1.warmup",
    ),
    (
        # KumoMTA's "aggressive" preset: 200/day, then x1.75 a day to 300,000 on day 14.
        "custom schedule ramping faster than the guidance",
        fast_schedule,
        None,
        "warmup-schedule",
        "warmup_schedules.kumo-aggressive.daily_caps",
    ),
    (
        "stream without secondary route",
        stream("bulk", route=None),
        None,
        "secondary-route",
        "streams.bulk.route",
    ),
    (
        "bounces to a host that does not process them",
        None,
        set_record("MX:bounce.news.example.com", "10 mx.elsewhere.example.net"),
        "bounce-processing",
        "MX:bounce.news.example.com",
    ),
    ("no FBL address", no_fbl, None, "fbl-mailbox", "bounces.fbl_addresses"),
    ("FBL address whose domain's MX is not ours", fbl_at_the_org_domain, None, "fbl-mailbox",
     "bounces.fbl_addresses"),
    ("two bounce hosts, each its own SQLite list", two_bounce_hosts_with_sqlite, None, "suppression-store",
     "bounces.suppression.store"),
    (
        "PTR does not match HELO",
        None,
        lambda p: set_record(f"PTR:{ptr_name(p.ip('tx1').address)}", "host.provider.example.net")(p),
        "fcrdns",
        "PTR:",
    ),
    (
        "HELO name resolving elsewhere",
        None,
        set_record("A:tx2.mail.example.com", "192.0.2.99"),
        "fcrdns",
        "A:tx2.mail.example.com",
    ),
    (
        "HELO under another stream's domain",
        helo_under_marketing,
        None,
        "helo-stream",
        "pools.tx.ips.tx1.helo",
    ),
    ("1024-bit DKIM key", None, weak_dkim_key, "dkim-key-size", "domains.example.com.dkim.selectors.s2026a"),
    ("SPF over 10 lookups", None, spf_with(*ELEVEN_INCLUDES), "spf-lookups", "TXT:bounce.news.example.com"),
    (
        "SPF with 3 void lookups",
        None,
        spf_with("a:gone1.example.com", "a:gone2.example.com", "mx:gone3.example.com", "-all"),
        "spf-void-lookups",
        "TXT:bounce.news.example.com",
    ),
    (
        "SPF without a terminal all",
        None,
        spf_with("ip4:192.0.2.1"),
        "spf-syntax",
        "TXT:bounce.news.example.com",
    ),
    (
        "two SPF records at one name",
        None,
        set_record("TXT:bounce.news.example.com", "v=spf1 ip4:192.0.2.1 -all", "v=spf1 ip4:192.0.2.2 -all"),
        "spf-syntax",
        "TXT:bounce.news.example.com",
    ),
    (
        "marketing without one-click unsubscribe",
        stream("marketing", one_click_unsubscribe=False),
        None,
        "one-click-unsubscribe",
        "streams.marketing.one_click_unsubscribe",
    ),
    (
        "bulk without one-click unsubscribe",
        stream("bulk", one_click_unsubscribe=False),
        None,
        "one-click-unsubscribe",
        "streams.bulk.one_click_unsubscribe",
    ),
    ("relay password over port 25", relay_on_port_25, None, "tls", "routes.relay.port"),
    (
        "relay outside our SPF with strict DKIM alignment",
        strict_dkim_relay_without_spf,
        None,
        "route-dmarc-dkim-only",
        "streams.marketing.route",
    ),
    ("an isolation left in place for a month", old_isolation, None, "isolation-age", "isolations.pool:bulk"),
    ("no seed mailboxes: placement unmeasured", no_seeds, None, "placement-seeds", "monitoring.seeds"),
]


@pytest.fixture(scope="module")
def baseline() -> list[Finding]:
    return audit_of()


def test_dev_has_no_errors_or_warnings(baseline: list[Finding]) -> None:
    """dev, the reference topology, passes the checklist (only infos such as placeholder keys)."""
    assert serious(baseline) == set(), render("table", "dev", baseline)


@pytest.mark.parametrize(
    ("config_edit", "plan_edit", "code", "where"), [pytest.param(*case[1:], id=case[0]) for case in CASES]
)
def test_violation_is_caught_with_its_code(
    config_edit: ConfigEdit | None, plan_edit: PlanEdit | None, code: str, where: str, baseline: list[Finding]
) -> None:
    """The mutated topology produces the rule's code, naming the place, and no other new error/warning."""
    findings = audit_of(config_edit, plan_edit)
    new = [f for f in findings if f not in baseline and f.severity is not Severity.INFO]
    assert {f.code for f in new} == {code}, render("table", "mutated", new)
    assert any(f.where.startswith(where) for f in new), [f.where for f in new]


def test_every_rule_with_errors_or_warnings_has_a_case() -> None:
    """The table covers every registered rule that can fail or warn (info-only rules excepted)."""
    info_only = {"dkim-placeholder", "tls-reporting", "own-vs-rent"}
    assert {r.code for r in RULES} - info_only <= {case[3] for case in CASES}


def test_void_lookup_warning_below_the_limit() -> None:
    """One void lookup is a warning, not yet the RFC 7208 permerror."""
    findings = audit_of(plan_edit=spf_with("a:gone.example.com", "-all"))
    voids = [f for f in findings if f.code == "spf-void-lookups"]
    assert [f.severity for f in voids] == [Severity.WARNING]


def test_missing_tls_reporting_is_an_info(baseline: list[Finding]) -> None:
    findings = audit_of(no_tls_rpt)
    new = [f for f in findings if f not in baseline]
    assert [(f.code, f.severity) for f in new] == [("tls-reporting", Severity.INFO)]


def test_findings_explain_why_and_how_to_fix() -> None:
    findings = audit_of(stream("bulk", route=None, one_click_unsubscribe=False))
    assert has_errors(findings)
    assert all(f.why and f.fix and f.where for f in findings)


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_reference_stacks_are_clean(stack: str) -> None:
    """The reference stacks pass: no errors and no warnings."""
    if not (STACKS_DIR / f"Pulumi.{stack}.yaml").exists():
        pytest.skip(f"stack {stack} not written yet")
    loaded = load_stack(stack)
    findings = audit_plan(build_plan(loaded, AS_OF), loaded.config)
    assert serious(findings) == set(), render("table", stack, findings)


# ------------------------------------------------------------------- the command


def write_stack(tmp_path: Path, edit: ConfigEdit | None = None) -> Path:
    raw = dev_raw()
    if edit:
        edit(raw)
    document = yaml.safe_load(DEV_FILE.read_text())
    document["config"] = {
        **{k: v for k, v in document["config"].items() if not k.startswith("mailinfra:")},
        **{f"mailinfra:{k}": v for k, v in raw.items()},
    }
    path = tmp_path / "Pulumi.mutant.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_command_exits_zero_on_dev_and_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    code = audit_cmd.run(argparse.Namespace(stack="dev", format="json"))
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    assert report["stack"] == "dev"
    assert all(f["severity"] != "error" for f in report["findings"])


def test_command_exits_nonzero_on_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_stack(tmp_path, stream("marketing", one_click_unsubscribe=False))
    code = audit_cmd.run(argparse.Namespace(stack=str(path), format="markdown"))
    out = capsys.readouterr().out
    assert code == 1
    assert "| error | `one-click-unsubscribe` | `streams.marketing.one_click_unsubscribe` |" in out


def test_command_registers_its_subcommand() -> None:
    parser = argparse.ArgumentParser()
    audit_cmd.add_parser(parser.add_subparsers())
    args = parser.parse_args(["audit", "prod", "--format", "markdown"])
    assert (args.stack, args.format, args.handler) == ("prod", "markdown", audit_cmd.run)
