"""The host's daily caps: mailinfra-enforce-caps counts each transport's deliveries and defers it at its cap."""

from __future__ import annotations

import datetime as dt
import functools
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from mailinfra.model.load import load_stack
from mailinfra.mta.files import RenderedFile
from mailinfra.mta.limits_calendar import (
    APPLY_SCRIPT,
    CAPS_SCRIPT,
    LIMITS_FILE,
    decode_caps,
    plan_limits_calendar,
    render_limits_files,
)
from mailinfra.mta.render import render_host
from mailinfra.plan.build import build_plan
from tests.mta.conftest import write_host
from tests.tooling import require_tool

DAY = dt.date(2026, 12, 1)  # dev: mkt-cold (conservative, started 2026-11-30) on day 2
POOL_DIR = "/etc/postfix-mkt-cold"
TRANSPORT = "mc1_gmail"


def _delivery(n: int, transport: str = TRANSPORT, status: str = "sent") -> str:
    """One smtp(8) delivery record as Postfix writes it to maillog_file: the service's syslog_name
    (master.cf: postfix-<pool>/<transport>) and smtp[pid], the queue ID, then to=, relay=, dsn=, status=."""
    return (f"Dec  1 10:00:{n % 60:02d} mta1 postfix-mkt-cold/{transport}/smtp[4242]: 4Q{n:07X}: "
            f"to=<r{n}@gmail.com>, relay=gmail-smtp-in.l.google.com[192.0.2.25]:25, delay=0.4, "
            f"delays=0.1/0/0.2/0.1, dsn=2.0.0, status={status} (250 2.0.0 OK)\n")


@pytest.fixture(scope="module")
def rendered() -> tuple[RenderedFile, ...]:
    """mta1's rendered files of DAY and its limits files."""
    dev_at = functools.cache(functools.partial(build_plan, load_stack("dev")))
    return (*render_host(dev_at(DAY), "mta1"), *render_limits_files(plan_limits_calendar(dev_at, "mta1")))


@pytest.fixture
def host(tmp_path: Path, rendered: tuple[RenderedFile, ...]) -> dict[str, Path]:
    """The rendered files under tmp_path, the calendar's instance directories moved there too (the lab's
    overlay 1 does the same)."""
    require_tool("postconf")
    write_host(tmp_path, rendered)
    calendar_file = tmp_path / LIMITS_FILE
    calendar_file.write_text(calendar_file.read_text().replace('"/etc/postfix-', f'"{tmp_path}/etc/postfix-'))
    pool = tmp_path / POOL_DIR.lstrip("/")
    log = tmp_path / "var/log/postfix-mkt-cold.log"
    log.parent.mkdir(parents=True)
    log.write_text("")
    subprocess.run(["postconf", "-c", str(pool), "-e", f"maillog_file={log}"], check=True)
    return {"root": tmp_path, "calendar": calendar_file, "pool": pool, "log": log,
            "state": tmp_path / "var/lib/mailinfra/caps-state.json"}


def _enforce(host: dict[str, Path], day: dt.date = DAY) -> None:
    script = host["root"] / CAPS_SCRIPT
    subprocess.run([sys.executable, str(script), str(host["calendar"]), str(host["state"]), day.isoformat()],
                   check=True, capture_output=True, text=True)


def _deferred(host: dict[str, Path]) -> set[str]:
    """defer_transports as real Postfix reads it from the instance's main.cf."""
    value = subprocess.run(["postconf", "-c", str(host["pool"]), "-h", "defer_transports"],
                           capture_output=True, text=True, check=True).stdout
    return {name for name in value.replace(",", " ").split() if name}


def _cap(host: dict[str, Path]) -> int:
    return decode_caps(host["calendar"].read_text(), DAY)[str(host["pool"])][TRANSPORT]


def test_a_transport_stops_at_its_daily_cap_and_the_count_survives_a_restart(host: dict[str, Path]) -> None:
    """GIVEN a transport one delivery below its daily cap WHEN one more is logged THEN it is deferred;
    WHEN the counter and the daily limits run again (a restart) THEN nothing is counted twice and it stays
    deferred; WHEN the next day comes THEN it sends again. Postfix itself has no daily limit (postconf(5)
    rate delays bound the pace only): before, an hourly cap of daily/12 applied 24 h allowed twice the cap."""
    cap = _cap(host)
    assert 0 < cap < 1000
    with host["log"].open("a") as log:
        log.writelines(_delivery(n) for n in range(cap - 1))
        log.write(_delivery(10_000, status="deferred"))  # a deferral is no delivery
        log.write(_delivery(10_001, transport="mc1_microsoft"))
    _enforce(host)
    assert TRANSPORT not in _deferred(host)
    with host["log"].open("a") as log:
        log.write(_delivery(cap))
        log.write("Dec  1 10:01:00 mta1 postfix-mkt-cold/mc1_gmail/smtp[4242]: 4QPART: to=<x@gmail.com>, rel")
    _enforce(host)
    deferred = _deferred(host)
    assert TRANSPORT in deferred
    assert "mc1_microsoft" not in deferred and "mc2_gmail" not in deferred

    # A restart: the counter runs again over the same log, and the day's limits are applied again.
    _enforce(host)
    state = json.loads(host["state"].read_text())
    assert state["counts"][str(host["pool"])][TRANSPORT] == cap
    apply = host["root"] / APPLY_SCRIPT
    script = apply.read_text().replace("/var/lib/mailinfra/caps-state.json", str(host["state"]))
    apply.write_text(script)
    subprocess.run([sys.executable, str(apply), str(host["calendar"]), DAY.isoformat()], check=True,
                   capture_output=True)
    assert TRANSPORT in _deferred(host)

    _enforce(host, DAY + dt.timedelta(days=1))
    assert TRANSPORT not in _deferred(host)


def test_every_transport_has_a_daily_cap_no_larger_than_its_ips(host: dict[str, Path]) -> None:
    """The per-transport caps of an IP add up to at most the IP's daily cap (the warmup plan's)."""
    plan = build_plan(load_stack("dev"), DAY)
    caps = decode_caps(host["calendar"].read_text(), DAY)[str(host["pool"])]
    for limit in plan.warmup:
        if limit.pool == "mkt-cold":
            mine = [n for t, n in caps.items() if t.startswith(f"{limit.ip.replace('-', '_')}_")]
            assert mine and sum(mine) <= limit.daily_cap


def test_no_delivery_goes_uncounted_across_a_postfix_logrotate(host: dict[str, Path],
                                                               request: pytest.FixtureRequest) -> None:
    """GIVEN deliveries the counter has read and more logged after its last run WHEN Postfix's own
    `postfix logrotate` renames and compresses the log (postfix-script: mv to <name>.<suffix>, HUP to the
    master, gzip) and postlogd writes on in a new file THEN the counter counts the rotated file's rest and
    the new file's lines, each once. Before, a new inode started over at 0 in the new file: the lines
    between the last run and the rotation were lost, and the cap overshot by up to a run's deliveries."""
    require_tool("postfix")
    # A short queue path: postfix(1) logs through <queue>/public/postlog, a socket path of at most 107 bytes.
    queue = Path(tempfile.mkdtemp(prefix="mi-q-"))
    request.addfinalizer(lambda: shutil.rmtree(queue, ignore_errors=True))
    # postfix(1) checks main.cf first: the log under maillog_file_prefixes, an address this machine has.
    subprocess.run(["postconf", "-c", str(host["pool"]), "-e", f"queue_directory={queue}",
                    f"maillog_file_prefixes={host['root']}", "inet_interfaces=loopback-only",
                    "multi_instance_enable=no"], check=True)
    with host["log"].open("a") as log:
        log.writelines(_delivery(n) for n in range(2))
    _enforce(host)
    with host["log"].open("a") as log:
        log.writelines(_delivery(n) for n in range(2, 5))
    done = subprocess.run(["postfix", "-c", str(host["pool"]), "logrotate"], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done
    rotated = sorted(p.name for p in host["log"].parent.iterdir())
    assert any(name.startswith("postfix-mkt-cold.log.") and name.endswith(".gz") for name in rotated), (rotated, done)
    assert not host["log"].exists()
    host["log"].write_text("".join(_delivery(n) for n in range(5, 6)))  # postlogd's new file
    _enforce(host)
    state = json.loads(host["state"].read_text())
    assert state["counts"][str(host["pool"])][TRANSPORT] == 6


def test_the_logs_rotate_daily_with_postfix_logrotate(rendered: tuple[RenderedFile, ...]) -> None:
    """Each pool instance's log the counter reads is rotated by `postfix -c DIR logrotate` (postfix(1):
    the command that renames maillog_file and makes postlogd reopen it), daily; old ones are removed."""
    files = {f.path: f.content for f in rendered}
    service = files["etc/systemd/system/mailinfra-logrotate.service"]
    calendar = json.loads(files[LIMITS_FILE])
    for directory in calendar["logs"]:
        assert f"ExecStart=/usr/sbin/postfix -c {directory} logrotate\n" in service
    assert "-mtime +14 -delete" in service
    assert "OnCalendar=" in files["etc/systemd/system/mailinfra-logrotate.timer"]
