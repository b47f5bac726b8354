"""Bounces and complaints end to end in the lab, with real processes: providers bounce and complain, the
bounce host's Postfix hands each report to the processor over LMTP, the store suppresses, and every pool
instance refuses the next injection to that recipient at RCPT (its lookup service polls the feed)."""

from __future__ import annotations

import datetime as dt
import os
import signal
import smtplib
import time
from typing import Any

import pytest

from mailinfra.lab import lab as lab_module
from mailinfra.lab import mta
from mailinfra.lab import suppression as lab_suppression
from mailinfra.lab.feedback import build_arf, build_dsn
from mailinfra.lab.namespace import in_namespace
from mailinfra.model.schema import StreamKind
from mailinfra.mta.host_code import HOST_PYTHON_PATH
from mailinfra.suppression.paths import lab_db_path
from mailinfra.suppression.sqlite_store import SqliteStore

# Marked like every lab test: a `-m "not lab"` run must not start the session lab outside the lab lock.
pytestmark = [pytest.mark.lab, pytest.mark.slow]
REFUSED = "550 5.7.1"


def _store(lab: Any) -> SqliteStore:
    return SqliteStore(lab_db_path(lab.layout.runtime_dir))


def _wait_for_entry(lab: Any, address: str, timeout: float = 20.0) -> float:
    started = time.monotonic()
    while _store(lab).get(address.lower()) is None:
        assert time.monotonic() - started < timeout, f"{address} not suppressed after {timeout:.0f} s"
        time.sleep(0.1)
    return time.monotonic() - started


def _refused_everywhere(lab: Any, rcpt_local: str, provider: str, kinds: set[str]) -> dict[str, str]:
    """Inject to the recipient on every pool; pool -> the reply (refused where the entry's scope says)."""
    replies = {}
    for entry in lab_module.send(lab, provider=provider, rcpts=[rcpt_local]):
        replies[entry["pool"]] = entry["reply"]
        kind = lab.plan.stream(entry["stream"]).kind
        if kind in kinds:
            assert entry["reply"].startswith(REFUSED) and "recipient suppressed" in entry["reply"], entry
        else:
            assert entry["accepted"], entry
    return replies


def test_the_services_run_the_code_the_manifest_shipped_not_the_checkout(lab: Any) -> None:
    """GIVEN hosts provisioned by their real mailinfra-apply-config from their manifests (moto S3) THEN each
    host's root holds the services' code under /usr/local/lib/mailinfra/python, it imports there with
    Debian's python3 and that PYTHONPATH alone, and the running lookup and processor are exactly that."""
    import json
    import subprocess
    from pathlib import Path

    root = lab.layout.runtime_dir / "root"
    tree = root / HOST_PYTHON_PATH.lstrip("/")
    probe = ("import json, sys, mailinfra.bounceproc.service, mailinfra.suppression_service.service, email_validator;"
             " print(json.dumps({k: getattr(m, '__file__', None) for k, m in sys.modules.items()}))")
    done = subprocess.run(["/usr/bin/python3", "-P", "-s", "-c", probe], cwd=root, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tree)}, check=False, timeout=60)
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout)
    assert str(loaded["mailinfra.bounceproc.service"]).startswith(f"{tree}/"), loaded["mailinfra.bounceproc.service"]
    assert str(loaded["email_validator"]).startswith(f"{tree}/")
    assert "pydantic" not in loaded and "pulumi" not in loaded
    state = lab_module.require_running(lab)
    names = [lab_suppression.lookup_name(h.name) for h in lab.plan.hosts if h.mta == "postfix"]
    names += [lab_suppression.processor_name(h.name) for h in lab.plan.hosts if h.accepts_bounces]
    for name in names:
        pid = state.processes[name]["pid"]
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        environ = dict(v.split(b"=", 1) for v in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0") if b"=" in v)
        assert argv[:3] == [b"/usr/bin/python3", b"-P", b"-s"], (name, argv)
        assert environ[b"PYTHONPATH"] == str(tree).encode(), (name, environ[b"PYTHONPATH"])


def test_an_unknown_recipient_is_suppressed_and_refused_at_rcpt_on_every_pool(lab: Any) -> None:
    """GIVEN a provider answering 550 5.1.1 at RCPT WHEN the tx pool sends to it THEN within seconds the
    address is in the store (hard bounce, every kind) and every pool instance refuses it at RCPT."""
    sent = lab_module.send(lab, pool="tx", provider="gmail", rcpts=["unknown-s1"])
    assert sent[0]["accepted"]
    took = _wait_for_entry(lab, sent[0]["rcpt"])
    assert took < 15
    time.sleep(1.5)  # one poll of the lookup services
    _refused_everywhere(lab, "unknown-s1", "gmail", {"transactional", "marketing", "bulk"})


def test_accept_then_bounce_suppresses_from_the_asynchronous_dsn(lab: Any) -> None:
    """A provider accepts, then bounces with a DSN to the VERP return path (through the bounce host's MX)."""
    sent = lab_module.send(lab, pool="mkt-active", provider="yahoo", rcpts=["bounce-later-s2"])
    assert sent[0]["accepted"]
    _wait_for_entry(lab, sent[0]["rcpt"])
    entry = _store(lab).get(sent[0]["rcpt"].lower())
    assert entry is not None and entry.scope == frozenset(StreamKind)


def test_complaints_suppress_for_marketing_and_bulk_even_when_the_recipient_is_scrubbed(lab: Any) -> None:
    """GIVEN one provider sending full ARF and one scrubbing the recipient (Comcast-like) WHEN each recipient
    complains THEN both end in the store for marketing and bulk (complaint_streams), not transactional, and
    the next marketing injection to them is refused while transactional mail still goes."""
    for provider in ("yahoo", "outlook"):
        sent = lab_module.send(lab, pool="mkt-active", provider=provider, rcpts=[f"complain-{provider}"])
        assert sent[0]["accepted"]
        _wait_for_entry(lab, sent[0]["rcpt"])
        entry = _store(lab).get(sent[0]["rcpt"].lower())
        assert entry is not None and entry.scope == {StreamKind.MARKETING, StreamKind.BULK}
    time.sleep(1.5)
    _refused_everywhere(lab, "complain-outlook", "outlook", {"marketing", "bulk"})


def test_soft_failures_suppress_only_past_the_threshold(lab: Any) -> None:
    """Mailbox full (5.2.2) twice: counted, not suppressed; the third (soft_bounce_threshold 3) suppresses."""
    address = "full-s4@gmail.com"
    for n in range(1, 4):
        lab_module.send(lab, pool="bulk", provider="gmail", rcpts=["full-s4"])
        deadline = time.monotonic() + 20
        while _store(lab).soft_count(address, dt.datetime.now(dt.UTC) - dt.timedelta(days=7)) < n \
                and _store(lab).get(address) is None:
            assert time.monotonic() < deadline, f"soft bounce {n} not counted"
            time.sleep(0.1)
        if n < 3:
            assert _store(lab).get(address) is None, f"suppressed after {n} soft bounces"
    _wait_for_entry(lab, address)


def test_a_policy_block_suppresses_nobody(lab: Any) -> None:
    """A provider blocking the mkt-cold pool's IPs (550 5.7.1): the DSNs reach the processor, are counted
    for the pool, and nobody is suppressed."""
    lab_module.block_pool(lab, "gmail", "mkt-cold")
    try:
        sent = lab_module.send(lab, pool="mkt-cold", provider="gmail", rcpts=["blocked-s5a", "blocked-s5b"])
        assert all(e["accepted"] for e in sent)
        deadline = time.monotonic() + 20
        counts: dict[tuple[str, str], int] = {}
        # Counted for the stream's pool as the report names it (the core's Context.pools), whatever it is.
        while not counts:
            counts = _store(lab).pool_counts(dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
            assert time.monotonic() < deadline, "the policy block was not counted for the pool"
            time.sleep(0.2)
        time.sleep(1)
        assert all(_store(lab).get(e["rcpt"].lower()) is None for e in sent)
    finally:
        lab_module.block_pool(lab, "gmail", None)


def test_a_forged_dsn_and_a_forged_arf_change_nothing(lab: Any) -> None:
    """Anybody can mail the bounce host: a DSN to a well-formed VERP address with a wrong MAC, and an ARF
    report about a message we never sent, both accepted by Postfix, suppress nobody."""
    before = {e.address for e in _store(lab).entries()}
    stream = lab.plan.stream("marketing")
    forged_rp = f"b-{'a' * 23}-victim=gmail.com@{stream.return_path}"
    dsn = build_dsn(reporting_mta="mx.gmail.com", recipient="victim@gmail.com", status="5.1.1",
                    diagnostic="550 5.1.1 no such user", original=b"Subject: x\r\n\r\n", envelope_to=forged_rp)
    arf = build_arf(provider="yahoo", domain="yahoo.com", fbl_address=lab.plan.intake.fbl_addresses[0],
                    mail_from=forged_rp, recipient="victim2@yahoo.com", original=b"To: victim2@yahoo.com\r\n\r\nx",
                    scrubbed=False)
    host = next(h for h in lab.plan.hosts if h.accepts_bounces)
    _send_from_outsider(lab, host.inbound_address, forged_rp, dsn)
    _send_from_outsider(lab, host.inbound_address, lab.plan.intake.fbl_addresses[0], arf)
    time.sleep(3)
    assert {e.address for e in _store(lab).entries()} == before
    assert lab_module.queue_entries(lab) == []


def test_killing_the_processor_loses_no_report_and_counts_none_twice(lab: Any) -> None:
    """GIVEN the processor killed (SIGKILL) WHEN DSNs arrive THEN Postfix keeps them queued (lmtp defers);
    once it is back and the queue flushed, every one is processed, each once."""
    host = next(h for h in lab.plan.hosts if h.accepts_bounces)
    state = lab_module.require_running(lab)
    name = lab_suppression.processor_name(host.name)
    os.kill(state.processes[name]["pid"], signal.SIGKILL)
    time.sleep(0.5)
    rcpts = [f"unknown-k{i}" for i in range(3)]
    sent = lab_module.send(lab, pool="tx", provider="gmail", rcpts=rcpts)
    deadline = time.monotonic() + 20
    while not any(e["pool"] == "primary" for e in lab_module.queue_entries(lab)):
        assert time.monotonic() < deadline, "the DSNs did not wait in the primary's queue"
        time.sleep(0.2)
    assert all(_store(lab).get(e["rcpt"].lower()) is None for e in sent)
    root = lab.layout.runtime_dir / "root"
    lab_suppression.start_processor(state, lab.layout.namespace, root, host, lab_module.python_env())
    state.save(lab.layout.state_file)
    primary = next(i for h, i in lab_module.staged_instances(lab) if i.pool is None and h == host.name)
    mta.flush_queue(lab.layout.namespace, primary)
    for entry in sent:
        _wait_for_entry(lab, entry["rcpt"])
    for entry in sent:
        adds = [a for a in _store(lab).audit_log(entry["rcpt"].lower()) if a.action == "add"]
        assert len(adds) == 1, adds


def test_enforcement_reaches_every_host_within_seconds(lab: Any) -> None:
    """Time from a bounce arriving (the DSN accepted by the bounce host) to the refusal at RCPT: <= 10 s."""
    started = time.monotonic()
    sent = lab_module.send(lab, pool="mkt-winback", provider="outlook", rcpts=["unknown-t1"])
    assert sent[0]["accepted"]
    while True:
        replies = [e["reply"] for e in lab_module.send(lab, provider="outlook", rcpts=["unknown-t1"])]
        if all(r.startswith(REFUSED) for r in replies):
            break
        assert time.monotonic() - started < 10, replies
        time.sleep(0.2)


def _send_from_outsider(lab: Any, address: str, rcpt: str, raw: bytes) -> None:
    """A stranger on the Internet: the lab's outsider address, to the bounce host's MX."""
    script = ("import smtplib, sys; c = smtplib.SMTP(sys.argv[1], 25, source_address=(sys.argv[2], 0), timeout=20); "
              "c.sendmail('', [sys.argv[3]], sys.stdin.buffer.read()); c.quit()")
    import subprocess
    import sys

    subprocess.run(in_namespace(lab.layout.namespace, [sys.executable, "-c", script, address,
                                                        lab_module.OUTSIDER_ADDRESS, rcpt]),
                   input=raw, check=True, capture_output=True, timeout=60, env=lab_module.python_env())
    assert smtplib
