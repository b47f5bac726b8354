"""The delivery exporter: labels from the plan, counts from Postfix lines, the exposition Prometheus reads."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from mailinfra.deployment.aws_world import free_port
from mailinfra.metrics.config import load_config
from mailinfra.metrics.exporter import DeliveryMetrics, QueueCollector
from mailinfra.metrics.labels import EXPORTER_CONFIG, exporter_config
from mailinfra.model.load import load_stack
from mailinfra.mta.maillog import parse_delivery
from mailinfra.mta.postfix import ROUTE_TRANSPORT
from mailinfra.mta.render import render_host
from mailinfra.plan.build import build_plan
from mailinfra.plan.model import Plan
from tests.tooling import require_tool, stop_by_pid

AS_OF = dt.date(2026, 11, 29)


@pytest.fixture(scope="module")
def dev() -> Plan:
    return build_plan(load_stack("dev"), AS_OF)


def _config(plan: Plan, tmp_path: Path, host: str = "mta1") -> Path:
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(exporter_config(plan, plan.host(host))))
    return path


def _line(program: str, rcpt: str, status: str, dsn: str, reply: str, *, delay: str = "1.2") -> str:
    # smtp(8)'s delivery line (src/global/log_adhoc.c field order), postlogd's timestamp.
    return (f"Dec  2 15:00:01.123456 mta1 {program}[4242]: 4ABC123: to=<{rcpt}>, relay=mx.example[192.0.2.9]:25, "
            f"delay={delay}, delays=0.1/0/0.5/0.6, dsn={dsn}, status={status} ({reply})")


def test_every_pool_transport_logs_under_a_name_the_exporter_maps(dev: Plan) -> None:
    """Each master.cf transport sets syslog_name=${multi_instance_name}/<transport> (postconf(5)
    syslog_name; postmulti sets multi_instance_name = the instance name), so its lines name the pool and
    the IP; the exporter's config maps every such transport to the plan's stream, pool, IP and domain."""
    files = {f.path: f.content for f in render_host(dev, "mta1")}
    config = json.loads(files[EXPORTER_CONFIG])
    seen = set()
    for path, content in files.items():
        if not re.fullmatch(r"etc/postfix-[^/]+/master.cf", path):
            continue
        instance = path.split("/")[1]
        for service, syslog in re.findall(r"(?m)^(\S+) unix - - n - - smtp\n(?:  -o .*\n)*?  -o syslog_name="
                                          r"\$\{multi_instance_name\}/(\S+)$", content):
            assert syslog == service
            if service == ROUTE_TRANSPORT:
                # One `route` service per instance: keyed by instance, labelled as the route, not an IP.
                labels = config["transports"][f"{instance}/{service}"]
                assert (labels["pool"], labels["ip"]) == (config["instance_pools"][instance], "route")
                seen.add(f"{instance}/{service}")
                continue
            labels = config["transports"][service]
            ip = dev.ip(labels["ip"])
            assert (labels["pool"], labels["stream"]) == (ip.pool, ip.stream)
            assert labels["domain"] == dev.stream(ip.stream).sending_domain
            assert config["instance_pools"][instance] == ip.pool
            seen.add(service)
    assert seen == set(config["transports"])
    assert seen


def test_deliveries_are_counted_by_pool_ip_provider_status_and_class(dev: Plan, tmp_path: Path) -> None:
    """delivered has no class; a 5.1.1 bounce carries the suppression classifier's class (bad-mailbox) and a
    421 4.7.0 deferral its own; the provider is the recipient domain's group (gmail.com, googlemail.com)."""
    config = load_config(_config(dev, tmp_path))
    transport, labels = next((t, v) for t, v in config.labels.transports.items() if v["provider"] == "gmail")
    program = f"postfix-{labels['pool']}/{transport}/smtp"
    registry = CollectorRegistry()
    metrics = DeliveryMetrics(config.labels, config.buckets, registry)
    lines = [
        _line(program, "a@gmail.com", "sent", "2.0.0", "250 2.0.0 OK", delay="0.7"),
        _line(program, "b@googlemail.com", "sent", "2.0.0", "250 2.0.0 OK", delay="40"),
        _line(program, "c@gmail.com", "bounced", "5.1.1", "host mx said: 550 5.1.1 The email account that you "
              "tried to reach does not exist."),
        _line(program, "d@gmail.com", "deferred", "4.7.28", "host mx said: 421 4.7.28 Our system has detected "
              "an unusual rate of unsolicited mail originating from your IP address"),
        # Our own hold (defer_transports): not the receiver's deferral, not counted.
        _line(f"postfix-{labels['pool']}/error", "e@gmail.com", "deferred", "4.3.2", "deferred transport"),
        "Dec  2 15:00:01 mta1 postfix-x/qmgr[1]: 4ABC123: removed",
    ]
    for line in lines:
        metrics.count_line(f"postfix-{labels['pool']}", line)
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(generate_latest(registry).decode())
               for s in family.samples}
    base = {"stream": labels["stream"], "pool": labels["pool"], "ip": labels["ip"], "domain": labels["domain"],
            "provider": "gmail"}

    def deliveries(status: str, cls: str) -> float:
        key = tuple(sorted({**base, "status": status, "class": cls}.items()))
        return samples.get(("mailinfra_deliveries_total", key), 0.0)

    assert deliveries("delivered", "") == 2
    assert deliveries("bounced", "bad-mailbox") == 1
    deferred = {dict(k)["class"]: v for (n, k), v in samples.items()
                if n == "mailinfra_deliveries_total" and dict(k)["status"] == "deferred"}
    assert sum(deferred.values()) == 1 and "" not in deferred
    delay = {"stream": labels["stream"], "pool": labels["pool"], "provider": "gmail"}
    assert samples[("mailinfra_delivery_delay_seconds_count", tuple(sorted(delay.items())))] == 2
    assert samples[("mailinfra_delivery_delay_seconds_sum", tuple(sorted(delay.items())))] == pytest.approx(40.7)
    assert samples[("mailinfra_delivery_delay_seconds_bucket", tuple(sorted({**delay, "le": "1.0"}.items())))] == 1
    assert samples[("mailinfra_log_lines_total", (("instance", f"postfix-{labels['pool']}"),))] == len(lines)


def test_an_unknown_recipient_domain_is_the_default_provider(dev: Plan, tmp_path: Path) -> None:
    config = load_config(_config(dev, tmp_path))
    transport = next(t for t, v in config.labels.transports.items() if v["provider"] == "default")
    record = parse_delivery(_line(f"postfix-x/{transport}/smtp", "a@example.org", "sent", "2.0.0", "250 ok"))
    assert record is not None
    labels = config.labels.labels_of(record)
    assert labels is not None and labels["provider"] == "default"


# postqueue(1) -j: "queue_name", "queue_id", "arrival_time" (seconds since the epoch), "message_size", "sender",
# "recipients": [{"address", "delay_reason"}].
QUEUED = [
    {"queue_name": "deferred", "queue_id": "A1", "arrival_time": 1000, "message_size": 1200, "sender": "s@x",
     "recipients": [{"address": "a@gmail.com", "delay_reason": "host said: 421 try later"}]},
    {"queue_name": "active", "queue_id": "A2", "arrival_time": 1900, "message_size": 1200, "sender": "s@x",
     "recipients": [{"address": "b@gmail.com"}]},
    {"queue_name": "maildrop", "queue_id": "A3", "arrival_time": 1990, "message_size": 900, "sender": "s@x",
     "recipients": [{"address": "c@gmail.com"}]},
]


def test_queue_gauges_count_each_queue_and_the_oldest_message() -> None:
    queues = {"/etc/postfix-tx": [json.dumps(q) for q in QUEUED], "/etc/postfix": []}
    registry = CollectorRegistry()
    registry.register(QueueCollector([("postfix-tx", "/etc/postfix-tx"), ("postfix", "/etc/postfix")],
                                     reader=queues.__getitem__, clock=lambda: 2000.0))
    assert registry.get_sample_value("mailinfra_queue_messages", {"instance": "postfix-tx", "queue": "deferred"}) == 1
    assert registry.get_sample_value("mailinfra_queue_messages", {"instance": "postfix-tx", "queue": "incoming"}) == 1
    assert registry.get_sample_value("mailinfra_queue_messages", {"instance": "postfix-tx", "queue": "hold"}) == 0
    assert registry.get_sample_value("mailinfra_queue_oldest_age_seconds", {"instance": "postfix-tx"}) == 1000
    assert registry.get_sample_value("mailinfra_queue_oldest_age_seconds", {"instance": "postfix"}) == 0


def test_the_service_serves_what_it_reads_and_promtool_accepts_it(dev: Plan, tmp_path: Path) -> None:
    """GIVEN the exporter process on loopback following a log file WHEN a delivery line is appended THEN
    its scrape counts it, and `promtool check metrics` (Prometheus's own linter) finds nothing wrong."""
    promtool = require_tool("promtool")
    config = json.loads(_config(dev, tmp_path).read_text())
    transport, labels = next(iter(config["transports"].items()))
    for entry in config["logs"]:
        (tmp_path / entry["path"].lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / entry["path"].lstrip("/")).write_text("")
    config["queues"] = []  # no Postfix runs here: postqueue would only fail
    (tmp_path / "metrics.json").write_text(json.dumps(config))
    port = free_port()
    config["port"] = port
    (tmp_path / "metrics.json").write_text(json.dumps(config))
    process = subprocess.Popen([sys.executable, "-m", "mailinfra.metrics", "--config", str(tmp_path / "metrics.json"),
                                "--root", str(tmp_path), "--listen", "127.0.0.1"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        log = tmp_path / f"var/log/postfix-{labels['pool']}.log"
        time.sleep(1.5)  # the follower opened the log at its end
        with log.open("a") as out:
            out.write(_line(f"postfix-{labels['pool']}/{transport}/smtp", "a@gmail.com", "sent", "2.0.0",
                            "250 ok") + "\n")
        deadline = time.monotonic() + 15
        body = ""
        while time.monotonic() < deadline:
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
            except OSError:
                body = ""
            if 'status="delivered"' in body:
                break
            time.sleep(0.3)
        assert f'pool="{labels["pool"]}"' in body and 'provider="gmail"' in body and 'status="delivered"' in body
        checked = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True, text=True,
                                 check=False)
        assert checked.returncode == 0, checked.stdout + checked.stderr
    finally:
        stop_by_pid(process)


def test_a_bad_config_is_one_line_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"
    path.write_text('{"host": "mta1"}')
    result = subprocess.run([sys.executable, "-m", "mailinfra.metrics", "--config", str(path)],
                            capture_output=True, text=True, check=False)
    assert result.returncode != 0
    assert result.stderr.strip().count("\n") == 0 and str(path) in result.stderr
    assert "Traceback" not in result.stderr
