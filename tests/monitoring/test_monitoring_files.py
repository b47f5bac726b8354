"""The monitoring host's files, checked by the real tools: `promtool check config|rules`, `promtool test
rules` (Prometheus's own rule evaluation: each alert fires on its condition and clears after), `amtool
check-config` (Debian's prometheus 2.42 and prometheus-alertmanager 0.25)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from mailinfra.model.load import load_stack
from mailinfra.model.schema import Monitoring
from mailinfra.monitoring.prometheus import estimate_series, prometheus_arguments, render_prometheus_config
from mailinfra.monitoring.render import ALERTMANAGER_CONFIG, PROMETHEUS_CONFIG, render_monitoring
from mailinfra.plan.build import build_plan
from mailinfra.plan.model import Plan
from mailinfra.plan.monitoring import plan_monitoring
from tests.tooling import require_tool

AS_OF = dt.date(2026, 11, 29)


@pytest.fixture(scope="module", params=["dev", "prod"])
def plan(request: pytest.FixtureRequest) -> Plan:
    return build_plan(load_stack(request.param), AS_OF)


def _write(plan: Plan, root: Path) -> Path:
    for item in render_monitoring(plan):
        (root / item.path).parent.mkdir(parents=True, exist_ok=True)
        (root / item.path).write_text(item.content)
    return root / "etc/prometheus"


def _run(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=False, cwd=cwd)


def test_promtool_accepts_the_config_and_its_rules(plan: Plan, tmp_path: Path) -> None:
    """`promtool check config` also loads and checks every rule file the config names."""
    promtool = require_tool("promtool")
    directory = _write(plan, tmp_path)
    result = _run(promtool, "check", "config", str(directory / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {5 * len(plan.pools) + 1} rules found" in result.stdout + result.stderr
    # --lint=all: duplicate rules (same name and labels in two groups) would fail here.
    result = _run(promtool, "check", "rules", "--lint=all", "--lint-fatal", str(directory / "mailinfra-rules.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_sending_host_is_scraped_on_its_exporter_port(plan: Plan) -> None:
    """Postfix and PowerMTA hosts alike (each runs the exporter: logs or accounting file)."""
    config = render_prometheus_config(plan)
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "mailinfra-mta")
    scraped = {c["labels"]["host"]: c["targets"][0] for c in job["static_configs"]}
    assert set(scraped) == {h.name for h in plan.hosts if h.ips}
    assert all(target.endswith(":9465") for target in scraped.values())


def test_retention_is_sized_for_the_stack(plan: Plan) -> None:
    """More days or more series need more room: the size follows the estimate, never below 1 GB."""
    year = dataclasses.replace(plan, monitoring=dataclasses.replace(plan.monitoring, retention_days=365))
    size = int(prometheus_arguments(year).rpartition("=")[2].removesuffix("GB"))
    # 2 bytes per sample (Prometheus docs, "Operational aspects"), twice for headroom.
    assert size * (1 << 30) >= estimate_series(plan) * (86400 // 15) * 365 * 2 * 2
    assert "--storage.tsdb.retention.time=365d" in prometheus_arguments(year)
    default = int(prometheus_arguments(plan).rpartition("=")[2].removesuffix("GB"))
    assert 1 <= default <= size


@pytest.mark.parametrize("routing", [
    {},
    {"email_to": ["ops@example.com"], "email_smarthost": "smtp.example.com:587"},
    {"webhook_urls": ["https://hooks.example.com/alerts"]},
])
def test_amtool_accepts_the_alertmanager_config(plan: Plan, tmp_path: Path, routing: dict[str, Any]) -> None:
    amtool = require_tool("amtool")
    configured = dataclasses.replace(plan, monitoring=plan_monitoring(Monitoring.model_validate({"routing": routing})))
    _write(configured, tmp_path)
    result = _run(amtool, "check-config", str(tmp_path / ALERTMANAGER_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    receivers = yaml.safe_load((tmp_path / ALERTMANAGER_CONFIG).read_text())["receivers"]
    assert bool(receivers[0].get("email_configs")) == bool(routing.get("email_to"))


def test_email_routing_needs_a_smarthost() -> None:
    with pytest.raises(ValueError, match="email_smarthost"):
        Monitoring.model_validate({"routing": {"email_to": ["ops@example.com"]}})


# ------------------------------------------------------------------ promtool test rules: fire, then clear

def _series(pool: str, stream: str, provider: str, status: str, values: str, *, cls: str = "") -> dict[str, str]:
    klass = f',class="{cls}"' if cls else ""
    return {"series": f'mailinfra_deliveries_total{{stream="{stream}",pool="{pool}",ip="ip1",domain="d.example",'
                      f'provider="{provider}",status="{status}"{klass}}}', "values": values}


def _alert(name: str, at: str, labels: dict[str, str] | None, summary: str = "", threshold: str = "") -> dict[str, Any]:
    expected = [] if labels is None else [{"exp_labels": labels,
                                           "exp_annotations": {"summary": summary, "threshold": threshold}}]
    if labels is not None and not threshold:
        expected[0]["exp_annotations"].pop("threshold")
    return {"eval_time": at, "alertname": name, "exp_alerts": expected}


def _promtool_test(plan: Plan, tmp_path: Path, series: list[dict[str, str]], cases: list[dict[str, Any]]) -> str:
    promtool = require_tool("promtool")
    directory = _write(plan, tmp_path)
    test = {"rule_files": ["mailinfra-rules.yml"], "evaluation_interval": "1m",
            "tests": [{"interval": "1m", "input_series": series, "alert_rule_test": cases}]}
    (directory / "test.yml").write_text(yaml.safe_dump(test, sort_keys=False))
    result = _run(promtool, "test", "rules", "test.yml", cwd=directory)
    return result.stdout + result.stderr if result.returncode else ""


def test_the_bounce_rate_alert_fires_per_pool_and_provider_and_clears(plan: Plan, tmp_path: Path) -> None:
    """GIVEN 100 delivered and 10 bounced a minute to gmail, 100 delivered to yahoo THEN the alert fires for
    (pool, gmail) only, at 10/110 = 9.09 %; once the bounces stop it clears when they leave the window."""
    pool = plan.pools[0]
    series = [_series(pool.name, pool.stream, "gmail", "delivered", "0+100x300"),
              _series(pool.name, pool.stream, "gmail", "bounced", "0+10x80 800x220", cls="bad-mailbox"),
              _series(pool.name, pool.stream, "yahoo", "delivered", "0+100x300")]
    labels = {"severity": "critical", "pool": pool.name, "stream": pool.stream, "provider": "gmail"}
    failed = _promtool_test(plan, tmp_path, series, [
        _alert("MailinfraBounceRateHigh", "3m", None),  # the condition holds, `for: 5m` not yet
        _alert("MailinfraBounceRateHigh", "70m", labels, f"bounce rate 9.09 % from pool {pool.name} to gmail",
               "5 % over 60m (monitoring.alerts.bounce_rate_percent)"),
        _alert("MailinfraBounceRateHigh", "160m", None),
    ])
    assert not failed, failed


def test_deferral_retries_do_not_dilute_the_bounce_rate(plan: Plan, tmp_path: Path) -> None:
    """GIVEN 100 delivered, 10 bounced and 300 deferral attempts a minute to gmail (a deferral storm, when
    blocks come) THEN the bounce rate is 10/110 = 9.09 % of the outcomes and fires; dividing by every attempt
    read 10/410 = 2.4 % and stayed silent."""
    pool = plan.pools[0]
    series = [_series(pool.name, pool.stream, "gmail", "delivered", "0+100x120"),
              _series(pool.name, pool.stream, "gmail", "bounced", "0+10x120", cls="bad-mailbox"),
              _series(pool.name, pool.stream, "gmail", "deferred", "0+300x120", cls="throttled")]
    labels = {"severity": "critical", "pool": pool.name, "stream": pool.stream, "provider": "gmail"}
    failed = _promtool_test(plan, tmp_path, series, [
        _alert("MailinfraBounceRateHigh", "70m", labels, f"bounce rate 9.09 % from pool {pool.name} to gmail",
               "5 % over 60m (monitoring.alerts.bounce_rate_percent)")])
    assert not failed, failed


def test_a_rate_needs_the_minimum_of_attempts(plan: Plan, tmp_path: Path) -> None:
    """Half the mail bounces, but 60 attempts an hour are under min_attempts (100): no alert."""
    pool = plan.pools[0]
    series = [_series(pool.name, pool.stream, "gmail", "delivered", "0+0.5x120"),
              _series(pool.name, pool.stream, "gmail", "bounced", "0+0.5x120", cls="bad-mailbox")]
    failed = _promtool_test(plan, tmp_path, series, [_alert("MailinfraBounceRateHigh", "90m", None)])
    assert not failed, failed


def test_the_threshold_is_the_stack_files(plan: Plan, tmp_path: Path) -> None:
    """monitoring.alerts.bounce_rate_percent: 10 — the same 9.09 % no longer fires."""
    config = Monitoring.model_validate({"alerts": {"bounce_rate_percent": 10}})
    raised = dataclasses.replace(plan, monitoring=plan_monitoring(config))
    pool = plan.pools[0]
    series = [_series(pool.name, pool.stream, "gmail", "delivered", "0+100x120"),
              _series(pool.name, pool.stream, "gmail", "bounced", "0+10x120", cls="bad-mailbox")]
    failed = _promtool_test(raised, tmp_path, series, [_alert("MailinfraBounceRateHigh", "70m", None)])
    assert not failed, failed


def test_the_deferral_spike_fires_and_clears(plan: Plan, tmp_path: Path) -> None:
    pool = plan.pools[-1]
    series = [_series(pool.name, pool.stream, "microsoft", "delivered", "0+100x300"),
              _series(pool.name, pool.stream, "microsoft", "deferred", "0+50x80 4000x220", cls="reputation")]
    labels = {"severity": "warning", "pool": pool.name, "stream": pool.stream, "provider": "microsoft"}
    failed = _promtool_test(plan, tmp_path, series, [
        _alert("MailinfraDeferralSpike", "70m", labels,
               f"33.3 % of attempts deferred from pool {pool.name} to microsoft",
               "30 % over 60m (monitoring.alerts.deferral_rate_percent)"),
        _alert("MailinfraDeferralSpike", "160m", None),
    ])
    assert not failed, failed


def test_complaints_fire_google_s_limit_and_target_and_clear(plan: Plan, tmp_path: Path) -> None:
    """0.5 complaints per 100 delivered: above 0.3 % (limit, critical) and 0.1 % (target, warning); a day
    after the complaints stop, both clear (the complaint window is one day)."""
    pool = plan.pools[0]
    series = [_series(pool.name, pool.stream, "gmail", "delivered", "0+100x1700"),
              {"series": f'mailinfra_complaints_total{{stream="{pool.stream}",pool="{pool.name}",provider="gmail"}}',
               "values": "0+0.5x100 50x1600"}]
    labels = {"pool": pool.name, "stream": pool.stream, "provider": "gmail"}
    summary = f"complaint rate 0.500 % from pool {pool.name} to gmail"
    failed = _promtool_test(plan, tmp_path, series, [
        _alert("MailinfraComplaintRateAboveLimit", "60m", {**labels, "severity": "critical"}, summary,
               "0.3 % over 1d (monitoring.alerts.complaint_rate_percent; Google: below 0.3 %, aim below 0.1 %)"),
        _alert("MailinfraComplaintRateAboveTarget", "60m", {**labels, "severity": "warning"}, summary,
               "0.1 % over 1d (monitoring.alerts.complaint_target_percent; Google: below 0.3 %, aim below 0.1 %)"),
        _alert("MailinfraComplaintRateAboveLimit", "1620m", None),
        _alert("MailinfraComplaintRateAboveTarget", "1620m", None),
    ])
    assert not failed, failed


def test_an_old_queue_fires_and_clears(plan: Plan, tmp_path: Path) -> None:
    pool = plan.pools[0]
    instance = f"postfix-{pool.name}"
    series = [{"series": f'mailinfra_queue_oldest_age_seconds{{host="mta1",instance="{instance}",job="mailinfra-mta"}}',
               "values": "0+60x70 0x50"}]
    labels = {"severity": "warning", "pool": pool.name, "stream": pool.stream, "host": "mta1", "instance": instance}
    failed = _promtool_test(plan, tmp_path, series, [
        _alert("MailinfraQueueTooOld", "68m", labels, f"oldest message of {instance} on mta1 waited 1h 8m 0s",
               "3600 s (monitoring.alerts.queue_age_seconds)"),
        _alert("MailinfraQueueTooOld", "100m", None),
    ])
    assert not failed, failed


def test_an_exporter_that_cannot_be_scraped_fires_and_clears(plan: Plan, tmp_path: Path) -> None:
    series = [{"series": 'up{job="mailinfra-mta",host="mta1",instance="10.0.0.5:9465"}', "values": "1x10 0x20 1x20"}]
    labels = {"severity": "critical", "job": "mailinfra-mta", "host": "mta1", "instance": "10.0.0.5:9465"}
    failed = _promtool_test(plan, tmp_path, series, [
        _alert("MailinfraExporterDown", "20m", labels,
               "the metrics exporter of mta1 cannot be scraped: its delivery alerts are blind"),
        _alert("MailinfraExporterDown", "45m", None),
    ])
    assert not failed, failed


def test_the_files_land_where_debian_s_packages_read_them(plan: Plan) -> None:
    """Debian: /etc/prometheus/prometheus.yml, /etc/prometheus/alertmanager.yml, ARGS in /etc/default/prometheus."""
    paths = {f.path for f in render_monitoring(plan)}
    assert {PROMETHEUS_CONFIG, ALERTMANAGER_CONFIG, "etc/default/prometheus",
            "etc/prometheus/mailinfra-rules.yml"} == paths
