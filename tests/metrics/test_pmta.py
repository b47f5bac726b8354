"""PowerMTA accounting records (the documented acct-file shape: a header line naming the columns, then one
CSV record per line, type first; PowerMTA User's Guide, "Accounting Files") counted as delivery metrics."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from prometheus_client import CollectorRegistry

from mailinfra.bounceproc.pmta import read_records
from mailinfra.metrics.config import load_config
from mailinfra.metrics.exporter import DeliveryMetrics, LabelMap
from mailinfra.metrics.labels import DELAY_BUCKETS_SECONDS, exporter_config, provider_domains, vmta_labels
from mailinfra.metrics.pmta import count_records
from mailinfra.metrics.service import AccountingReader
from mailinfra.model.load import load_stack
from mailinfra.plan.build import build_plan
from mailinfra.suppression.classify import classify


def test_delivered_and_bounced_records_are_counted_by_vmta_and_provider() -> None:
    plan = build_plan(load_stack("prod"), dt.date(2026, 11, 29))
    host = next(h for h in plan.hosts if h.mta == "powermta")
    vmtas = vmta_labels(plan, host)
    vmta, labels = next(iter(vmtas.items()))
    source = plan.ip(labels["ip"]).address
    text = (
        "type,timeLogged,orig,rcpt,dsnAction,dsnStatus,dsnDiag,dsnMta,bounceCat,vmta,dlvSourceIp\n"
        f"d,2026-12-02 15:00:01+0000,b@rp.example,a@gmail.com,relayed,2.0.0 (success),smtp;250 ok,"
        f"mx.gmail.com,,{vmta},{source}\n"
        f"b,2026-12-02 15:00:02+0000,b@rp.example,x@gmail.com,failed,5.1.1 (bad destination mailbox address),"
        f"smtp;550 5.1.1 no such user,mx.gmail.com,bad-mailbox,{vmta},{source}\n"
        f"b,2026-12-02 15:00:03+0000,b@rp.example,y@yahoo.com,failed,5.7.1 (delivery not authorized),"
        f"smtp;554 5.7.1 [BL21] Connections will not be accepted,mx.yahoo.com,,{vmta},{source}\n"
        "d,2026-12-02 15:00:04+0000,b@rp.example,z@gmail.com,relayed,2.0.0,smtp;250 ok,mx,,ip-not-ours,192.0.2.1\n")
    registry = CollectorRegistry()
    metrics = DeliveryMetrics(LabelMap({}, {}, {}, {}), DELAY_BUCKETS_SECONDS, registry)
    assert count_records(metrics, read_records(text), vmtas, provider_domains(plan)) == 3

    def value(provider: str, status: str, cls: str) -> float | None:
        return registry.get_sample_value("mailinfra_deliveries_total", {
            **labels, "provider": provider, "status": status, "class": cls})

    assert value("gmail", "delivered", "") == 1
    assert value("gmail", "bounced", "bad-mailbox") == 1  # bounceCat
    # No bounceCat: the suppression classifier decides (a 5.7.1 block list reply is about us, not the mailbox).
    classified = {s.labels["class"]: s.value for f in registry.collect() for s in f.samples
                  if s.name == "mailinfra_deliveries_total" and s.labels.get("provider") == "yahoo"}
    diagnostic = "smtp;554 5.7.1 [BL21] Connections will not be accepted"
    assert classified == {classify("5.7.1", diagnostic).cls.value: 1.0}
    assert "bad-mailbox" not in classified


def test_the_service_follows_the_accounting_file_across_its_header(tmp_path: Path) -> None:
    """GIVEN an acct-file whose header was written before the exporter started WHEN records are appended
    THEN they are read by that header's columns (the exporter starts at the file's end)."""
    plan = build_plan(load_stack("prod"), dt.date(2026, 11, 29))
    host = next(h for h in plan.hosts if h.mta == "powermta")
    config_data = exporter_config(plan, host)
    acct = tmp_path / "var/log/pmta/acct.csv"
    acct.parent.mkdir(parents=True)
    acct.write_text("type,timeLogged,rcpt,dsnStatus,dsnDiag,bounceCat,vmta,dlvSourceIp\n")
    (tmp_path / "metrics.json").write_text(json.dumps(config_data))
    config = load_config(tmp_path / "metrics.json", root=tmp_path)
    registry = CollectorRegistry()
    metrics = DeliveryMetrics(config.labels, config.buckets, registry)
    reader = AccountingReader(config, metrics, from_start=False)
    vmta, labels = next(iter(config.accounting[1].items())) if config.accounting else ("", {})
    with acct.open("a") as out:
        out.write(f"d,2026-12-02 15:00:01+0000,a@outlook.com,2.0.0,smtp;250 ok,,{vmta},192.0.2.1\n")
    reader.read()
    assert registry.get_sample_value("mailinfra_deliveries_total", {
        **labels, "provider": "microsoft", "status": "delivered", "class": ""}) == 1
