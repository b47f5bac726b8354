"""Inbox placement in the lab, with real processes: the simulated providers file each message into INBOX or Junk
of a real Dovecot (mailinfra.lab.placement decides, LMTP + Sieve file); the probe sender injects a probe per pool
x seed at the pools' Postfix instances, and the reader finds them over IMAP.

Ground truth is each provider's own record of where it filed a message (`folder` in its .json verdicts)."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from mailinfra.lab import lab as lab_module
from mailinfra.lab import seeds as lab_seeds
from mailinfra.lab.placement import JUNK
from mailinfra.lab.report import read_arrivals
from mailinfra.placement.probes import plan_probes

pytestmark = [pytest.mark.lab, pytest.mark.slow]
FOLDER_OF = {"INBOX": "inbox", "Junk": "spam"}


def _arrivals(lab: Any) -> list[dict[str, Any]]:
    return read_arrivals(Path(lab.layout.mail_dir))


def _wait(what: str, done: Any, timeout: float = 90.0) -> Any:
    started = time.monotonic()
    while True:
        result = done()
        if result:
            return result
        assert time.monotonic() - started < timeout, f"{what} not seen after {timeout:.0f} s"
        time.sleep(0.5)


def test_junked_pool_delivers_everything_and_seeds_see_it_in_spam(lab: Any) -> None:
    """GIVEN bulk's IPs complained about at Gmail (the provider's own count: 10 complaints);
    WHEN bulk sends 20 more messages to Gmail and every pool probes every seed;
    THEN all 20 are delivered (accepted and stored) and all filed into Junk, and the probes read back over IMAP
    land exactly where each provider filed them — bulk's Gmail probe in spam."""
    seeds = lab_seeds.lab_seeds(lab)
    assert {s.address.rpartition("@")[2] for s in seeds} == {"gmail.com", "yahoo.com", "outlook.com"}
    complaints = lab_module.send(lab, pool="bulk", provider="gmail",
                                 rcpts=[f"complain-{uuid.uuid4().hex[:8]}" for _ in range(10)])
    assert all(e["accepted"] for e in complaints)
    _wait("the complaints' arrival", lambda: {e["lab_id"] for e in complaints}
          <= {a["lab_id"] for a in _arrivals(lab)})
    sent = lab_module.send(lab, pool="bulk", provider="gmail", count=20)
    assert all(e["accepted"] for e in sent)
    ids = {e["lab_id"] for e in sent}
    arrived = _wait("bulk's 20 messages", lambda: [a for a in _arrivals(lab) if a["lab_id"] in ids]
                    if ids <= {a["lab_id"] for a in _arrivals(lab)} else None)
    assert len(arrived) == len(sent)  # delivered: 100 %
    assert [a["folder"] for a in arrived] == [JUNK] * len(sent)  # inbox: 0 %
    assert all(any(r.startswith("complaints") for r in a["placement_reasons"]) for a in arrived)

    state = lab_module.require_running(lab)
    lab_seeds.send_probes(lab, state)
    names = {s.name for s in seeds}
    expected = {f"{p.pool}.{p.seed}" for p in plan_probes(lab.plan) if p.seed in names}
    def filed() -> dict[str, str] | None:
        found = {a["probe"]: FOLDER_OF[a["folder"]] for a in _arrivals(lab) if a.get("probe")}
        return found if {k.rsplit(".", 1)[0] for k in found} >= expected else None

    truth = _wait("every probe at its provider", filed)
    verdicts: list[dict[str, Any]] = []

    def read() -> bool:
        verdicts.extend(lab_seeds.read_placement(lab))
        return {v["probe_id"].rsplit(".", 1)[0] for v in verdicts} >= expected

    _wait("every probe read over IMAP", read)
    assert {v["probe_id"]: v["folder"] for v in verdicts} == {k: v for k, v in truth.items()
                                                               if k.rsplit(".", 1)[0] in expected}
    gmail_seed = next(s.name for s in seeds if s.address.endswith("@gmail.com"))
    bulk_gmail = [v for v in verdicts if v["pool"] == "bulk" and v["seed"] == gmail_seed]
    assert [v["folder"] for v in bulk_gmail] == ["spam"]
    assert all(v["delay_seconds"] is not None and v["delay_seconds"] < 60 for v in verdicts)
    print(json.dumps(sorted((v["pool"], v["seed"], v["folder"]) for v in verdicts)))
