"""The automatic response with real Postfix (issue 14): the shaping service, configured from the plan, reads the
cold tier's instance log; Gmail starts refusing the pool's IPs with 550 5.7.1; the service moves the pool's
Gmail mail to the marketing route within ACTION_SECONDS; once Gmail takes the IPs again and the cool-down has
passed it returns, and the pool delivers to Gmail itself again."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mailinfra.lab import lab as lab_module
from mailinfra.lab import mta
from mailinfra.lab.namespace import in_namespace
from mailinfra.lab.report import read_arrivals
from mailinfra.mta.postfix import plan_instances, plan_limit_parameters
from mailinfra.shaping.plan import plan_shaping
from tests.tooling import stop_by_pid

pytestmark = [pytest.mark.lab, pytest.mark.slow]

POOL, PROVIDER = "mkt-cold", "gmail"
# From the second 550 in the log to the action: the service polls every 0.5 s; a reload takes < 1 s.
ACTION_SECONDS = 5.0
COOLDOWN_SECONDS = 8
METRICS_PORT = 9468


def _service_config(lab: Any, directory: Path) -> Path:
    """The plan's shaping.json with the host paths moved to the lab's root (as the lab's host overlay does)."""
    config = plan_shaping(lab.plan, lab.plan.host("mta1"), cooldown_seconds=COOLDOWN_SECONDS)
    staged = {s.pool: s for _, s in lab_module.staged_instances(lab) if s.pool}
    for instance in config["instances"]:  # type: ignore[attr-defined]
        instance_dir = staged[instance["pool"]].config_dir
        instance["config_dir"] = str(instance_dir)
        instance["log"] = mta.read_main_cf(instance_dir / "main.cf")["maillog_file"]
    config["metrics_listen"] = f"127.0.0.1:{METRICS_PORT}"
    path = directory / "shaping.json"
    path.write_text(json.dumps(config))
    return path


def _wait_for_line(log: Path, needle: str, timeout: float) -> tuple[str, float]:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        for line in log.read_text().splitlines() if log.exists() else []:
            if needle in line:
                return line, time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"no {needle!r} in {log} after {timeout} s: {log.read_text() if log.exists() else ''}")


def _metrics(lab: Any) -> str:
    script = f"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:{METRICS_PORT}/').read().decode())"
    return subprocess.run(in_namespace(lab.layout.namespace, [sys.executable, "-c", script]), capture_output=True,
                          text=True, check=True).stdout


def _via(lab: Any, sent: list[dict[str, Any]]) -> set[str]:
    ids = {e["lab_id"] for e in sent}
    lab_module.wait_for_arrivals(lab, sorted(ids), timeout=20)
    return {a["via"] for a in read_arrivals(lab.layout.mail_dir) if a.get("lab_id") in ids}


@dataclass
class Running:
    out: Path  # the service's stdout: its action lines
    instance_log: Path  # the cold tier instance's Postfix log
    config_dir: Path


@pytest.fixture
def shaping(lab: Any, tmp_path: Path) -> Iterator[Running]:
    """The service started from the checkout inside the lab's namespace, stopped by PID afterwards; the cold
    tier's instance leaves with the plan's settings whatever happened (later tests share the lab)."""
    config = _service_config(lab, tmp_path)
    (staged,) = [s for _, s in lab_module.staged_instances(lab) if s.pool == POOL]
    running = Running(tmp_path / "shaping.log",
                      Path(mta.read_main_cf(staged.config_dir / "main.cf")["maillog_file"]), staged.config_dir)
    with running.out.open("wb") as sink:
        service = subprocess.Popen(in_namespace(lab.layout.namespace, [
            sys.executable, "-m", "mailinfra.shaping", "--config", str(config)]),
            stdout=sink, stderr=subprocess.STDOUT, env=lab_module.python_env(), start_new_session=True)
    try:
        time.sleep(1.5)  # the service starts reading at the logs' end
        assert service.poll() is None, running.out.read_text()
        yield running
    finally:
        stop_by_pid(service)
        lab_module.block_pool(lab, PROVIDER, None)
        lab_module.fault(lab, PROVIDER, "ok")
        (planned,) = [i for i in plan_instances(lab.plan, lab.plan.host("mta1")) if i.pool == POOL]
        mta.postconf_set(staged.config_dir, plan_limit_parameters(planned))
        subprocess.run(in_namespace(lab.layout.namespace, ["postfix", "-c", str(staged.config_dir), "reload"]),
                       capture_output=True, check=False)
        mta.flush_queue(lab.layout.namespace, staged)


def _wait_for_log(log: Path, needle: str, count: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while sum(needle in line for line in log.read_text().splitlines()) < count:
        assert time.monotonic() < deadline, f"fewer than {count} {needle!r} lines in {log}"
        time.sleep(0.05)


def _count(log: Path, needle: str) -> int:
    return sum(needle in line for line in log.read_text().splitlines()) if log.exists() else 0


def test_a_blocked_pool_moves_to_its_route_within_seconds_and_returns_after_recovery(
        lab: Any, shaping: Running) -> None:
    """GIVEN the service running on the lab host WHEN Gmail answers 550 5.7.1 to mkt-cold's IPs (twice)
    THEN within ACTION_SECONDS one `action=reroute` line, mkt-cold's next Gmail mail arrives through the route
    relay while its Yahoo mail still leaves from the pool, and the metrics say rerouted; WHEN Gmail takes the
    IPs again THEN after the cool-down one `action=return` line and the pool delivers to Gmail itself."""
    route = lab.plan.stream("marketing").route
    bounced = _count(shaping.instance_log, "status=bounced")
    lab_module.block_pool(lab, PROVIDER, POOL)
    sent = lab_module.send(lab, pool=POOL, provider=PROVIDER, count=2)
    assert all(e["accepted"] for e in sent)
    _wait_for_log(shaping.instance_log, "status=bounced", bounced + 2)
    line, took = _wait_for_line(shaping.out, "action=reroute", ACTION_SECONDS)
    assert f"pool={POOL} provider={PROVIDER} state=normal->rerouted" in line and took < ACTION_SECONDS
    print(f"shaping: reroute {took:.2f} s after the second 550 5.7.1 in the log")
    assert _via(lab, lab_module.send(lab, pool=POOL, provider=PROVIDER)) == {f"secondary:{route}"}
    assert _via(lab, lab_module.send(lab, pool=POOL, provider="yahoo")) == {"primary"}
    metrics = _metrics(lab)
    assert (f'mailinfra_shaping_actions_total{{action="reroute",pool="{POOL}",provider="{PROVIDER}"}} 1.0'
            in metrics), metrics
    assert f'mailinfra_shaping_state{{pool="{POOL}",provider="{PROVIDER}",state="rerouted"}} 1.0' in metrics

    lab_module.block_pool(lab, PROVIDER, None)  # recovery: Gmail takes the IPs again
    line, _ = _wait_for_line(shaping.out, "action=return", COOLDOWN_SECONDS + ACTION_SECONDS)
    assert f"pool={POOL} provider={PROVIDER} state=rerouted->normal" in line
    assert _via(lab, lab_module.send(lab, pool=POOL, provider=PROVIDER)) == {"primary"}
    assert f'mailinfra_shaping_state{{pool="{POOL}",provider="{PROVIDER}",state="normal"}} 1.0' in _metrics(lab)
    assert _count(shaping.out, "mailinfra-shaping action=") == 2


def test_a_reputation_deferral_slows_the_pool_and_is_never_rerouted(lab: Any, shaping: Running) -> None:
    """GIVEN Gmail deferring the pool with 421 4.7.28 (its published "unusual rate of unsolicited mail" reply,
    https://support.google.com/a/answer/3726730) WHEN five such deferrals are logged THEN within ACTION_SECONDS
    `action=slow` (the gmail rate delays x4), never `action=reroute`: nothing reaches any route, the mail
    waits on the pool's own IPs; WHEN Gmail recovers THEN after the cool-down it returns and the held mail
    leaves from the pool itself."""
    postconf = ["postconf", "-c", str(shaping.config_dir), "-h", "mc1_gmail_destination_rate_delay"]
    before = subprocess.run(postconf, capture_output=True, text=True, check=True).stdout.strip()
    deferred = _count(shaping.instance_log, "status=deferred")
    lab_module.fault(lab, PROVIDER, "reputation")
    sent = lab_module.send(lab, pool=POOL, provider=PROVIDER, count=6)
    assert len(sent) >= 5 and all(e["accepted"] for e in sent)
    _wait_for_log(shaping.instance_log, "status=deferred", deferred + 5, timeout=30)
    line, took = _wait_for_line(shaping.out, "action=slow", ACTION_SECONDS)
    assert f"pool={POOL} provider={PROVIDER} state=normal->slowed rule=gmail-4.7.28" in line
    print(f"shaping: slow {took:.2f} s after the fifth 4.7.28 in the log")
    after = subprocess.run(postconf, capture_output=True, text=True, check=True).stdout.strip()
    assert after == f"{max(1, int(before.rstrip('s'))) * 4}s"
    ids = {e["lab_id"] for e in sent}
    assert not [a for a in read_arrivals(lab.layout.mail_dir) if a.get("lab_id") in ids]
    assert _count(shaping.out, "action=reroute") == 0

    lab_module.fault(lab, PROVIDER, "ok")
    _wait_for_line(shaping.out, "action=return", COOLDOWN_SECONDS + ACTION_SECONDS + 30)
    (staged,) = [s for _, s in lab_module.staged_instances(lab) if s.pool == POOL]
    mta.flush_queue(lab.layout.namespace, staged)
    assert _via(lab, sent) == {"primary"}
    assert _count(shaping.out, "action=reroute") == 0
