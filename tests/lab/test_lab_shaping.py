"""The automatic response with real Postfix (issue 14): the shaping service, configured from the plan, reads the
cold tier's instance log; Gmail starts refusing the pool's IPs with 550 5.7.1; the service moves the pool's
Gmail mail to the marketing route within ACTION_SECONDS; once Gmail takes the IPs again and the cool-down has
passed it returns, and the pool delivers to Gmail itself again."""

from __future__ import annotations

import json
import subprocess
import sys
import time
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


def _bounce_log_lines(log: Path) -> int:
    return sum("status=bounced" in line and "5.7.1" in line for line in log.read_text().splitlines())


def test_a_blocked_pool_moves_to_its_route_within_seconds_and_returns_after_recovery(lab: Any,
                                                                                      tmp_path: Path) -> None:
    """GIVEN the service running on the lab host WHEN Gmail answers 550 5.7.1 to mkt-cold's IPs (twice)
    THEN within ACTION_SECONDS one `action=reroute` line, mkt-cold's next Gmail mail arrives through the route
    relay while its Yahoo mail still leaves from the pool, and the metrics say rerouted; WHEN Gmail takes the
    IPs again THEN after the cool-down one `action=return` line and the pool delivers to Gmail itself."""
    config = _service_config(lab, tmp_path)
    (staged,) = [s for _, s in lab_module.staged_instances(lab) if s.pool == POOL]
    instance_log = Path(mta.read_main_cf(staged.config_dir / "main.cf")["maillog_file"])
    out = tmp_path / "shaping.log"
    with out.open("wb") as sink:
        service = subprocess.Popen(in_namespace(lab.layout.namespace, [
            sys.executable, "-m", "mailinfra.shaping", "--config", str(config)]),
            stdout=sink, stderr=subprocess.STDOUT, env=lab_module.python_env(), start_new_session=True)
    route = lab.plan.stream("marketing").route
    try:
        time.sleep(1.5)  # the service starts reading at the log's end
        assert service.poll() is None, out.read_text()
        bounced_before = _bounce_log_lines(instance_log)
        lab_module.block_pool(lab, PROVIDER, POOL)
        sent = lab_module.send(lab, pool=POOL, provider=PROVIDER, count=2)
        assert all(e["accepted"] for e in sent)
        deadline = time.monotonic() + 20
        while _bounce_log_lines(instance_log) < bounced_before + 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _bounce_log_lines(instance_log) >= bounced_before + 2, "Gmail's 550 5.7.1 never reached the log"
        line, took = _wait_for_line(out, "action=reroute", ACTION_SECONDS)
        assert f"pool={POOL} provider={PROVIDER} state=normal->rerouted" in line and took < ACTION_SECONDS
        print(f"shaping: reroute {took:.2f} s after the second 550 5.7.1 in the log")
        assert _via(lab, lab_module.send(lab, pool=POOL, provider=PROVIDER)) == {f"secondary:{route}"}
        assert _via(lab, lab_module.send(lab, pool=POOL, provider="yahoo")) == {"primary"}
        metrics = _metrics(lab)
        assert (f'mailinfra_shaping_actions_total{{action="reroute",pool="{POOL}",provider="{PROVIDER}"}} 1.0'
                in metrics), metrics
        assert f'mailinfra_shaping_state{{pool="{POOL}",provider="{PROVIDER}",state="rerouted"}} 1.0' in metrics

        lab_module.block_pool(lab, PROVIDER, None)  # recovery: Gmail takes the IPs again
        line, _ = _wait_for_line(out, "action=return", COOLDOWN_SECONDS + ACTION_SECONDS)
        assert f"pool={POOL} provider={PROVIDER} state=rerouted->normal" in line
        assert _via(lab, lab_module.send(lab, pool=POOL, provider=PROVIDER)) == {"primary"}
        assert f'mailinfra_shaping_state{{pool="{POOL}",provider="{PROVIDER}",state="normal"}} 1.0' in _metrics(lab)
        assert sum("mailinfra-shaping action=" in x for x in out.read_text().splitlines()) == 2
    finally:
        stop_by_pid(service)
        lab_module.block_pool(lab, PROVIDER, None)
        # Whatever happened, the instance leaves with the plan's settings (the lab is shared by later tests).
        (planned,) = [i for i in plan_instances(lab.plan, lab.plan.host("mta1")) if i.pool == POOL]
        mta.postconf_set(staged.config_dir, plan_limit_parameters(planned))
        subprocess.run(in_namespace(lab.layout.namespace, ["postfix", "-c", str(staged.config_dir), "reload"]),
                       capture_output=True, check=False)
