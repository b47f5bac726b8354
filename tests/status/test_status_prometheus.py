"""`mailinfra status` against a real Prometheus (Debian's 2.42) started on loopback by the test, its TSDB filled
with known series by `promtool tsdb create-blocks-from openmetrics`, one alert rule evaluated by the server.

Counters rise linearly from 0 over exactly the window, so `increase()` (prometheus.io/docs: extrapolated to the
window's edges) equals the known totals; every figure on the screen is then asserted.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mailinfra.cli.main import main
from mailinfra.model.load import STACKS_DIR, load_stack
from mailinfra.plan.build import build_plan

pytestmark = [pytest.mark.tools,
              pytest.mark.skipif(not (shutil.which("prometheus") and shutil.which("promtool")),
                                 reason="Debian prometheus (prometheus, promtool) not installed")]

WINDOW = 3600
STEP = 60
# (stream, pool) -> outcome totals over the window.
DELIVERIES = {
    ("marketing", "mkt-winback"): {"delivered": 900, "bounced": 100, "deferred": 50},
    ("bulk", "bulk"): {"delivered": 600, "bounced": 0, "deferred": 0},
}
COMPLAINTS = {("marketing", "mkt-winback"): 9}
# (stream, pool, provider, folder) -> probes judged
PLACEMENT = {
    ("marketing", "mkt-winback", "gmail", "inbox"): 5, ("marketing", "mkt-winback", "gmail", "spam"): 1,
    ("marketing", "mkt-winback", "microsoft", "inbox"): 6,
    ("bulk", "bulk", "gmail", "spam"): 6, ("bulk", "bulk", "microsoft", "missing"): 2,
    ("bulk", "bulk", "microsoft", "spam"): 4,
}
QUEUE_AGE = {"postfix-mkt-winback": 720.0}
RULES = """groups:
- name: test
  interval: 1s
  rules:
  - alert: PlacementJunked
    expr: sum by (pool) (mailinfra_placement_total{folder="spam"}) > 3
    labels: {severity: page}
    annotations: {summary: "probes in spam"}
"""


@dataclass(frozen=True)
class Served:
    url: str
    end: int  # the last sample's time: the series end within the alert rule's 5-minute lookback


def _linear(name: str, labels: dict[str, str], total: float, end: int) -> list[str]:
    text = ",".join(f'{k}="{v}"' for k, v in labels.items())
    start = end - WINDOW
    return [f"{name}{{{text}}} {total * (t - start) / WINDOW} {t}" for t in range(start, end + 1, STEP)]


def openmetrics(end: int) -> str:
    lines = ["# TYPE mailinfra_deliveries counter"]
    for (stream, pool), outcomes in DELIVERIES.items():
        for status, total in outcomes.items():
            # Split over two providers: the status screen sums them.
            for provider, share in (("gmail", 0.5), ("microsoft", 0.5)):
                lines += _linear("mailinfra_deliveries_total", {
                    "stream": stream, "pool": pool, "ip": "203.0.113.10", "domain": "news.example.com",
                    "provider": provider, "status": status, "class": ""}, total * share, end)
    lines.append("# TYPE mailinfra_complaints counter")
    for (stream, pool), total in COMPLAINTS.items():
        lines += _linear("mailinfra_complaints_total", {"stream": stream, "pool": pool, "provider": "yahoo"},
                         total, end)
    lines.append("# TYPE mailinfra_placement counter")
    for (stream, pool, provider, folder), total in PLACEMENT.items():
        lines += _linear("mailinfra_placement_total",
                         {"stream": stream, "pool": pool, "provider": provider, "folder": folder}, total, end)
    lines.append("# TYPE mailinfra_queue_oldest_age_seconds gauge")
    for instance, age in QUEUE_AGE.items():
        lines += [f'mailinfra_queue_oldest_age_seconds{{instance="{instance}"}} {age} {t}'
                  for t in range(end - WINDOW, end + 1, STEP)]
    return "\n".join(lines) + "\n# EOF\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=2) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("prometheus")
    end = (int(time.time()) // STEP) * STEP - STEP
    (root / "data.om").write_text(openmetrics(end))
    subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", str(root / "data.om"),
                    str(root / "tsdb")], check=True, capture_output=True)
    (root / "rules.yml").write_text(RULES)
    (root / "prometheus.yml").write_text("global: {evaluation_interval: 1s}\nrule_files: [rules.yml]\n")
    port = _free_port()
    process = subprocess.Popen(
        ["prometheus", f"--config.file={root / 'prometheus.yml'}", f"--storage.tsdb.path={root / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=2d"],
        stdout=subprocess.DEVNULL, stderr=(root / "prometheus.log").open("wb"))
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                alerts = _get(f"{url}/api/v1/alerts")["data"]["alerts"]
                if any(a["state"] == "firing" for a in alerts):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("prometheus did not come up with a firing alert: "
                                   + (root / "prometheus.log").read_text()[-800:])
            time.sleep(0.2)
        yield Served(url, end)
    finally:
        process.terminate()
        process.wait(timeout=20)


def run_status(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["status", "dev", *args])
    return code, out.getvalue(), err.getvalue()


def test_status_numbers_equal_the_known_series(prometheus: Served) -> None:
    """delivered/deferred/bounced/complaint %, inbox % per provider, cap use, queue age and the firing alert,
    per pool, exactly as the series were written."""
    code, out, err = run_status("--prometheus", prometheus.url, "--window", "1h", "--at", str(prometheus.end),
                                "--format", "json")
    assert (code, err) == (0, "")
    pools = {p["pool"]: p for p in json.loads(out)["pools"]}
    winback, bulk = pools["mkt-winback"], pools["bulk"]
    assert winback["sent"] == pytest.approx(1000)
    assert winback["delivered_pct"] == pytest.approx(90.0)
    assert winback["bounced_pct"] == pytest.approx(10.0)
    assert winback["deferred_pct"] == pytest.approx(100 * 50 / 1050)
    assert winback["complaint_pct"] == pytest.approx(100 * 9 / 900)
    assert winback["inbox_pct"] == pytest.approx({"gmail": 100 * 5 / 6, "microsoft": 100.0})
    assert winback["queue_age_seconds"] == 720.0
    # The seed's point: bulk delivers 100 % and lands nowhere near the inbox.
    assert bulk["delivered_pct"] == pytest.approx(100.0)
    assert bulk["inbox_pct"] == pytest.approx({"gmail": 0.0, "microsoft": 0.0})
    assert bulk["alerts"] == ["PlacementJunked"] and winback["alerts"] == []
    # Warmup from the plan of today (what the command itself plans).
    plan = build_plan(load_stack("dev", STACKS_DIR))
    cap = sum(lim.daily_cap for lim in plan.warmup if lim.pool == "mkt-winback")
    assert winback["daily_cap"] == cap
    assert winback["cap_use_pct"] == pytest.approx(100 * 1000 / (cap * WINDOW / 86400))
    days = [lim.day for lim in plan.warmup if lim.pool == "mkt-winback" and lim.status == "warming"]
    assert winback["warmup_day"] == (max(days) if days else None)
    # A pool with no traffic shows no percentages rather than 0 %.
    assert pools["tx"]["delivered_pct"] is None and pools["tx"]["inbox_pct"] == {}


def test_table_and_markdown_show_every_stream_and_pool(prometheus: Served) -> None:
    plan = build_plan(load_stack("dev", STACKS_DIR))
    for fmt in ("table", "markdown"):
        code, out, _ = run_status("--prometheus", prometheus.url, "--window", "1h", "--at", str(prometheus.end),
                                  "--format", fmt)
        assert code == 0
        for stream in plan.streams:
            assert f"stream {stream.name}" in out or f"stream `{stream.name}`" in out
        for pool in plan.pools:
            assert pool.name in out
        assert "90.0%" in out and "gmail 0%" in out and "1 firing alert(s)" in out


def test_unreachable_prometheus_is_one_line_and_exit_2() -> None:
    port = _free_port()  # nothing listens there
    code, out, err = run_status("--prometheus", f"http://127.0.0.1:{port}")
    assert code == 2 and out == ""
    assert err.count("\n") == 1
    assert err.startswith(f"mailinfra status: --prometheus http://127.0.0.1:{port}: received no answer")


def test_a_bad_url_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as caught:
        run_status("--prometheus", "localhost:9090")
    assert caught.value.code == 2


def test_lab_reads_the_running_labs_prometheus(prometheus: Served, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """--lab: the URL a running lab's monitoring wrote (<runtime>/<stack>/prometheus.url); none: exit 2."""
    from mailinfra.lab import layout

    monkeypatch.setattr(layout, "RUNTIME_ROOT", tmp_path)
    code, out, err = run_status("--lab")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("mailinfra status: --lab: received no running lab Prometheus for stack dev")
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev" / "prometheus.url").write_text(prometheus.url + "\n")
    code, out, _ = run_status("--lab", "--window", "1h", "--at", str(prometheus.end), "--format", "json")
    assert code == 0 and json.loads(out)["prometheus"] == prometheus.url
