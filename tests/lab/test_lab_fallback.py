"""Which mail takes the secondary route, with real Postfix: throttling and outages do, reputation does not,
dead domains bounce, and a slow (postscreen) greeting is not an outage."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import pytest

from mailinfra.lab import lab as lab_module
from mailinfra.lab import mta
from mailinfra.lab.layout import NULL_MX_DOMAIN, NXDOMAIN_DOMAIN
from mailinfra.lab.namespace import in_namespace
from mailinfra.lab.providers import POSTSCREEN_GREET_WAIT_SECONDS
from mailinfra.lab.report import read_arrivals

pytestmark = [pytest.mark.lab, pytest.mark.slow]

# Long enough for the old rendering to have rerouted (it did so within a second) and for a rate delay.
HOLD_SECONDS = 8.0


def _arrived(lab: Any, lab_ids: list[str]) -> list[dict[str, Any]]:
    wanted = set(lab_ids)
    return [a for a in read_arrivals(lab.layout.mail_dir) if a.get("lab_id") in wanted]


def _queued_reasons(lab: Any, sent: list[dict[str, Any]]) -> dict[str, str]:
    """lab id -> the deferral reason Postfix holds for it (matched by the message's envelope sender: the
    injector's signed VERP return path is unique per recipient and stream)."""
    by_sender = {e["mail_from"]: e["lab_id"] for e in sent}
    reasons = {}
    for entry in lab_module.queue_entries(lab):
        lab_id = by_sender.get(entry.get("sender", ""))
        if lab_id is not None:
            reasons[lab_id] = " ".join(r.get("delay_reason", "") for r in entry.get("recipients", []))
    return reasons


def _release(lab: Any, lab_ids: list[str]) -> None:
    """Restore the provider, flush every instance and wait until the held mail arrived (keeps the lab clean)."""
    lab_module.fault(lab, "gmail", "ok")
    for _host, instance in lab_module.staged_instances(lab):
        mta.flush_queue(lab.layout.namespace, instance)
    lab_module.wait_for_arrivals(lab, lab_ids, timeout=60)


@pytest.mark.parametrize("mode", ["reputation", "complaints"])
def test_reputation_deferral_backs_off_and_never_takes_the_route(lab: Any, mode: str) -> None:
    """GIVEN gmail defers our IPs for reputation (Gmail 421 4.7.28 on RCPT; Yahoo-style [TSS04] at the
    greeting) WHEN every pool sends to it THEN nothing reaches any route: each message stays queued with
    the receiver's reason, and goes out from its own pool once the receiver takes mail again.

    Gmail documents 4.7.28 as a rate limit on the sender's IP for unsolicited mail
    (https://support.google.com/a/answer/3726730): sending it through SES or a relay is evasion."""
    lab_module.fault(lab, "gmail", mode)
    sent = lab_module.send(lab, provider="gmail")
    ids = [e["lab_id"] for e in sent]
    try:
        assert all(e["accepted"] for e in sent)
        time.sleep(HOLD_SECONDS)
        assert _arrived(lab, ids) == []
        reasons = _queued_reasons(lab, sent)
        assert set(reasons) == set(ids)
        # The receiver's own words, marked as held back (mailinfra/mta/replies.py), and not a bounce.
        expected = "5.7.28 mailinfra-backoff" if mode == "reputation" else "mailinfra-backoff: [TSS04]"
        assert all(expected in reason for reason in reasons.values()), reasons
    finally:
        _release(lab, ids)
    copies = _arrived(lab, ids)
    assert sorted(c["lab_id"] for c in copies) == sorted(ids)
    assert {c["via"] for c in copies} == {"primary"}


def test_throttle_421_takes_the_route_in_the_same_attempt(lab: Any) -> None:
    """GIVEN gmail sheds load with 421 4.7.0 "Try again later, closing connection" (Gmail's throttling
    reply, not a judgement on the sender) WHEN the transactional pool sends THEN it arrives via SES at once."""
    lab_module.fault(lab, "gmail", "throttle")
    try:
        sent = lab_module.send(lab, pool="tx", provider="gmail")
        took = lab_module.wait_for_arrivals(lab, [e["lab_id"] for e in sent], timeout=15)
    finally:
        lab_module.fault(lab, "gmail", "ok")
    copies = _arrived(lab, [e["lab_id"] for e in sent])
    assert [c["via"] for c in copies] == [f"secondary:{lab.plan.stream('transactional').route}"]
    assert took < 10


def _inject_to(lab: Any, domain: str) -> list[dict[str, Any]]:
    """One message per pool to user@`domain` (a domain no provider serves), from the lab injector."""
    state = lab_module.require_running(lab)
    work = lab.layout.runtime_dir / "inject"
    work.mkdir(parents=True, exist_ok=True)
    (work / "dead-targets.json").write_text(json.dumps(state.info["targets"]))
    (work / "dead-providers.json").write_text(json.dumps([{"name": "dead", "domain": domain}]))
    argv = [sys.executable, "-m", "mailinfra.lab.inject", "--targets", str(work / "dead-targets.json"),
            "--providers", str(work / "dead-providers.json"), "--source", lab.layout.injector_address,
            "--log", str(work / "dead-sent.jsonl")]
    result = subprocess.run(in_namespace(lab.layout.namespace, argv), capture_output=True, text=True,
                            check=True, env=lab_module.python_env())
    entries: list[dict[str, Any]] = json.loads(result.stdout)
    return entries


@pytest.mark.parametrize(("domain", "code"), [(NXDOMAIN_DOMAIN, "550"), (NULL_MX_DOMAIN, "556")])
def test_mail_to_a_dead_domain_bounces_and_never_reaches_a_route(lab: Any, domain: str, code: str) -> None:
    """GIVEN a recipient domain that does not exist (NXDOMAIN) or takes no mail (null MX, RFC 7505 §3:
    "MUST NOT" be delivered to, 556 per §4.2) WHEN any pool is given mail for it THEN it is refused with
    a permanent code and nothing reaches a route (smtp(8) would have handed it to smtp_fallback_relay:
    smtp_connect.c tries the fallback after a hard MX lookup error)."""
    sent = _inject_to(lab, domain)
    assert sent
    assert all(not e["accepted"] and e["reply"].startswith(code) for e in sent), [e["reply"] for e in sent]
    time.sleep(2)
    assert _arrived(lab, [e["lab_id"] for e in sent]) == []
    assert not any(domain in json.dumps(entry) for entry in lab_module.queue_entries(lab))


def test_postscreen_greeting_after_6_seconds_is_not_an_outage(lab: Any) -> None:
    """GIVEN gmail behind postscreen (a 220- banner, the real greeting after postscreen_greet_wait's default
    6 s, postconf(5)) WHEN the transactional pool sends THEN the mail is delivered from our own IP,
    not moved to the route."""
    lab_module.fault(lab, "gmail", "postscreen")
    try:
        sent = lab_module.send(lab, pool="tx", provider="gmail")
        took = lab_module.wait_for_arrivals(lab, [e["lab_id"] for e in sent], timeout=30)
    finally:
        lab_module.fault(lab, "gmail", "ok")
    copies = _arrived(lab, [e["lab_id"] for e in sent])
    assert [c["via"] for c in copies] == ["primary"]
    assert took >= POSTSCREEN_GREET_WAIT_SECONDS - 0.5  # it did wait for the late greeting
