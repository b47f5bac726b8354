"""Warmup enforced by real Postfix: a pool stops at its daily cap, and its held mail leaves the next day."""

from __future__ import annotations

import datetime as dt
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
from mailinfra.mta.limits_calendar import APPLY_SCRIPT, CAPS_SCRIPT, CAPS_STATE, LIMITS_FILE

pytestmark = [pytest.mark.lab, pytest.mark.slow]

POOL = "bulk"
SENDS = 6
# One message to a warmed IP waits at most its rate delay (a few seconds) and a loopback delivery.
ARRIVAL_SECONDS = 8.0


def _arrived(lab: Any, lab_ids: set[str]) -> set[str]:
    return {a["lab_id"] for a in read_arrivals(lab.layout.mail_dir) if a.get("lab_id") in lab_ids}


def _run(lab: Any, script: Path, *args: str, outside: bool = False) -> subprocess.CompletedProcess[str]:
    """What the host's systemd units run (mailinfra-caps.timer, mailinfra-limits.service), in the host's
    network (the lab namespace, where the instances' inet_interfaces addresses exist): postfix(1) checks
    main.cf before it reloads and stops with a fatal error on an address the network lacks."""
    argv = [sys.executable, str(script), *args]
    return subprocess.run(argv if outside else in_namespace(lab.layout.namespace, argv), check=not outside,
                          capture_output=True, text=True)


def test_a_pool_stops_at_its_daily_cap_and_its_mail_waits_for_the_next_day(lab: Any) -> None:
    """GIVEN a day on which each IP of the bulk pool may deliver one message to gmail WHEN messages are
    injected one by one with the host's cap counter running in between THEN at most the pool's cap
    arrives, the rest stays deferred in the queue (real Postfix logs, defer_transports, reload);
    WHEN the next day comes THEN the held mail is delivered, each message once.
    Before, the counter asked `postfix status` whether to reload: it exits 1 on a fatal main.cf check too
    (here: run outside the host's network), so the cap was written but never in force, silently."""
    instance = next(i for _, i in lab_module.staged_instances(lab) if i.pool == POOL)
    root = instance.config_dir.parents[1]
    calendar, state = root / LIMITS_FILE, root / CAPS_STATE.lstrip("/")
    enforce, apply = root / CAPS_SCRIPT, root / APPLY_SCRIPT
    day = lab.plan.as_of
    original = calendar.read_text()
    entries = json.loads(original)
    (key,) = [d for entry in entries["entries"] for d in entry.get("caps", {}) if d.endswith(f"/postfix-{POOL}")][:1]
    gmail = [t for t in json.loads(original)["entries"][0]["caps"][key] if t.endswith("_gmail")]
    assert len(gmail) >= 2
    sent: list[str] = []
    try:
        # The counter's log position moves past earlier tests' deliveries (counted on the day before).
        _run(lab, enforce, str(calendar), str(state), (day - dt.timedelta(days=1)).isoformat())
        entries["entries"].append({"date": day.isoformat(), "instances": {}, "caps": {key: dict.fromkeys(gmail, 1)}})
        entries["entries"].sort(key=lambda entry: entry["date"])
        calendar.write_text(json.dumps(entries))
        for _ in range(SENDS):
            (entry,) = lab_module.send(lab, pool=POOL, provider="gmail", count=1)
            assert entry["accepted"], entry
            sent.append(entry["lab_id"])
            deadline = time.monotonic() + ARRIVAL_SECONDS
            while entry["lab_id"] not in _arrived(lab, {entry["lab_id"]}) and time.monotonic() < deadline:
                time.sleep(0.2)
            _run(lab, enforce, str(calendar), str(state), day.isoformat())
            time.sleep(1.0)  # postfix reload: the new qmgr reads defer_transports
        arrived = _arrived(lab, set(sent))
        counts = json.loads(state.read_text())["counts"][key]
        assert 1 <= len(arrived) <= len(gmail), (arrived, counts)
        assert all(counts.get(t, 0) <= 1 for t in gmail), counts
        assert sum(counts.get(t, 0) for t in gmail) == len(arrived)
        assert len(mta.queue_json(lab.layout.namespace, instance)) == SENDS - len(arrived)

        # A reload that cannot happen (postfix(1) outside the host's network) fails the unit, loudly.
        failed = _run(lab, enforce, str(calendar), str(state), (day + dt.timedelta(days=1)).isoformat(),
                      outside=True)
        assert failed.returncode != 0 and "postfix reload" in failed.stderr, failed
        # The next day: the counts start at 0, the transports are no longer deferred; the held mail leaves.
        _run(lab, enforce, str(calendar), str(state), (day + dt.timedelta(days=1)).isoformat())
        time.sleep(1.0)
        # New mail leaves without a flush: the running qmgr no longer defers the transports (a flush,
        # `postqueue -f`, delivers even through defer_transports, postconf(5), so it proves nothing here).
        (fresh,) = lab_module.send(lab, pool=POOL, provider="gmail", count=1)
        lab_module.wait_for_arrivals(lab, [fresh["lab_id"]], ARRIVAL_SECONDS)
        mta.flush_queue(lab.layout.namespace, instance)
        lab_module.wait_for_arrivals(lab, sent, 30.0)
        time.sleep(0.3)
        copies = [a["lab_id"] for a in read_arrivals(lab.layout.mail_dir) if a.get("lab_id") in set(sent)]
        assert sorted(copies) == sorted(sent)
    finally:
        calendar.write_text(original)
        state.unlink(missing_ok=True)
        _run(lab, apply, str(calendar), day.isoformat())
        mta.flush_queue(lab.layout.namespace, instance)
