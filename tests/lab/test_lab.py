"""The planned topology, running for real: delivery, authentication, relay control, failover, signer outage."""

from __future__ import annotations

import pwd
import re
import stat
import subprocess
import sys
import time
from typing import Any

import pytest

from mailinfra.lab import lab as lab_module
from mailinfra.lab import mta
from mailinfra.lab.namespace import in_namespace
from mailinfra.lab.procs import LabState, restart_process, stop_process
from mailinfra.lab.report import read_arrivals
from mailinfra.mta.opendkim import plan_signers
from mailinfra.mta.postfix import SMTP_HELO_TIMEOUT
from mailinfra.suppression.paths import lab_db_path
from mailinfra.suppression.sqlite_store import SqliteStore

pytestmark = [pytest.mark.lab, pytest.mark.slow]

# Postfix gives up on a silent provider after smtp_helo_timeout (rendered: longer than postscreen's 6 s
# greet wait) and tries the secondary route in the same delivery attempt; a warmed IP waits at most its
# rate delay (<= 8 s).
QUEUE_AGE_BOUND_SECONDS = float(SMTP_HELO_TIMEOUT.rstrip("s")) + 10.0


def _arrivals(lab: Any, lab_ids: list[str], timeout: float = 30.0) -> dict[str, list[dict[str, Any]]]:
    lab_module.wait_for_arrivals(lab, lab_ids, timeout)
    time.sleep(0.3)  # a duplicate would arrive right behind the first copy
    found: dict[str, list[dict[str, Any]]] = {i: [] for i in lab_ids}
    for arrival in read_arrivals(lab.layout.mail_dir):
        if arrival.get("lab_id") in found:
            found[arrival["lab_id"]].append(arrival)
    return found


def _state(lab: Any) -> LabState:
    state = LabState.load(lab.layout.state_file)
    assert state is not None
    return state


def test_every_stream_reaches_every_provider_authenticated_from_its_own_pool(lab: Any) -> None:
    """Each pool's mail leaves from that pool's IPs, HELO = PTR, DKIM d= sending domain, SPF and DMARC pass."""
    sent = lab_module.send(lab)
    assert all(e["accepted"] for e in sent), [e["reply"] for e in sent if not e["accepted"]]
    arrivals = _arrivals(lab, [e["lab_id"] for e in sent])
    by_id = {e["lab_id"]: e for e in sent}
    pools = {e["pool"] for e in sent}
    assert pools == {p.name for p in lab.plan.pools}
    for lab_id, copies in arrivals.items():
        assert len(copies) == 1
        got, origin = copies[0], by_id[lab_id]
        stream = lab.plan.stream(origin["stream"])
        pool_addresses = {lab.plan.ip(n).address for n in lab.plan.pool(origin["pool"]).ips}
        assert got["via"] == "primary"
        assert got["source_ip"] in pool_addresses
        assert got["helo_matches_ptr"] and got["fcrdns"]
        assert got["spf"] == "pass" and got["spf_domain"] == stream.return_path
        passing = [d for d in got["dkim"] if d["result"] == "pass"]
        assert any(d["domain"] == stream.sending_domain and d["selector"] == stream.dkim_selector for d in passing)
        assert got["dmarc"] == "pass"


def test_unknown_sender_domain_is_refused_at_injection(lab: Any) -> None:
    """A sender domain no stream owns gets a 5xx and reaches no provider."""
    sent = lab_module.send(lab, pool="tx", provider="yahoo", mail_from_domain="unknown.example.org")
    assert [e["accepted"] for e in sent] == [False]
    assert sent[0]["reply"].startswith("5")


@pytest.mark.parametrize("mode", ["throttle", "throttle-rcpt", "refuse", "silent"])
def test_failover_delivers_every_message_once_via_the_secondary_route(lab: Any, mode: str) -> None:
    """GIVEN gmail faulted WHEN every pool sends to it THEN each message arrives once, via its stream's route,
    signed and DMARC-aligned, within the queue-age bound."""
    lab_module.fault(lab, "gmail", mode)
    try:
        started = time.monotonic()
        sent = lab_module.send(lab, provider="gmail")
        assert all(e["accepted"] for e in sent)
        arrivals = _arrivals(lab, [e["lab_id"] for e in sent], timeout=QUEUE_AGE_BOUND_SECONDS)
        took = time.monotonic() - started
    finally:
        lab_module.fault(lab, "gmail", "ok")
    assert took <= QUEUE_AGE_BOUND_SECONDS
    routes = {s.name: s.route for s in lab.plan.streams}
    for entry in sent:
        copies = arrivals[entry["lab_id"]]
        assert len(copies) == 1
        assert copies[0]["via"] == f"secondary:{routes[entry['stream']]}"
        assert copies[0]["dkim_pass"] and copies[0]["dmarc"] == "pass"


def test_opendkim_down_defers_mail_and_never_sends_it_unsigned(lab: Any) -> None:
    """GIVEN OpenDKIM stopped WHEN a stream injects THEN the message is deferred (4xx), nothing arrives
    unsigned; AND once OpenDKIM is back mail flows signed again."""
    state = _state(lab)
    host = lab.plan.hosts[0]
    name = f"opendkim-{host.name}"
    rsa_signer = plan_signers(lab.plan, host)[0]
    restart = state.processes[name]
    stop_process(state, name)
    state.save(lab.layout.state_file)
    try:
        sent = lab_module.send(lab, pool="tx", provider="outlook")
        assert [e["accepted"] for e in sent] == [False]
        assert sent[0]["reply"].startswith("4")
        time.sleep(1.0)
        assert sent[0]["lab_id"] not in {a.get("lab_id") for a in read_arrivals(lab.layout.mail_dir)}
    finally:
        state.processes[name] = restart
        restart_process(state, name)
        state.save(lab.layout.state_file)
        mta.wait_for_socket(mta.signer_socket(rsa_signer, lab.layout.runtime_dir / "root"), name)
    again = lab_module.send(lab, pool="tx", provider="outlook")
    assert again[0]["accepted"]
    arrived = _arrivals(lab, [again[0]["lab_id"]])[again[0]["lab_id"]]
    assert len(arrived) == 1 and arrived[0]["dkim_pass"]


def test_postfix_restart_loses_nothing(lab: Any) -> None:
    """GIVEN messages queued (gmail refusing, route down) WHEN the instance restarts and the provider
    recovers THEN every message arrives exactly once."""
    state = _state(lab)
    instance = next(i for _, i in lab_module.staged_instances(lab) if i.pool == "tx")
    lab_module.fault(lab, "gmail", "refuse")
    route_process = f"route-{lab.plan.stream('transactional').route}"
    route_entry = state.processes[route_process]
    stop_process(state, route_process)
    try:
        sent = lab_module.send(lab, pool="tx", provider="gmail", count=2)
        assert all(e["accepted"] for e in sent)
        deadline = time.monotonic() + 10
        while len(mta.queue_json(lab.layout.namespace, instance)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(mta.queue_json(lab.layout.namespace, instance)) >= 2
        mta.stop_postfix(state, instance)
        mta.start_postfix(state, lab.layout.namespace, instance)
    finally:
        lab_module.fault(lab, "gmail", "ok")
        state.processes[route_process] = route_entry
        restart_process(state, route_process, env=lab_module.python_env())
        state.save(lab.layout.state_file)
    mta.flush_queue(lab.layout.namespace, instance)
    arrivals = _arrivals(lab, [e["lab_id"] for e in sent], timeout=60)
    assert all(len(copies) == 1 for copies in arrivals.values())


def test_report_counts_every_message_and_finds_nothing_lost(lab: Any) -> None:
    """The report agrees with the providers: delivered = sent and accepted, no duplicates, nothing lost."""
    result = lab_module.report(lab)
    totals = result["totals"]
    assert totals["sent"] > 0
    assert totals["duplicates"] == 0
    assert totals["all_from_own_pool"]
    delivered_ids = {a["lab_id"] for a in read_arrivals(lab.layout.mail_dir)}
    assert totals["delivered"] == len(delivered_ids)


def test_lab_processes_are_all_inside_the_namespace(lab: Any) -> None:
    """Nothing the lab runs listens outside its namespace: every recorded PID is in the lab's netns."""
    state = _state(lab)
    inside = set(subprocess.run(["ip", "netns", "pids", lab.layout.namespace], capture_output=True, text=True,
                                check=True).stdout.split())
    assert {str(p["pid"]) for p in state.processes.values()} <= inside


# dkimpy on a stored .eml, inside the lab namespace (its resolver is the lab's Knot): one line per
# DKIM-Signature, "<a=> <d=> <s=> <True|False>".
_VERIFY_EML = """
import sys, dkim
raw = open(sys.argv[1], "rb").read()
sigs = [v for k, v in dkim.DKIM(raw).headers if k.lower() == b"dkim-signature"]
for index, sig in enumerate(sigs):
    tags = dict(t.strip().split(b"=", 1) for t in sig.split(b";") if b"=" in t)
    print(tags[b"a"].decode(), tags[b"d"].decode(), tags[b"s"].decode(), dkim.DKIM(raw).verify(idx=index))
"""


def test_every_stream_is_signed_with_rsa_and_ed25519_and_both_verify(lab: Any) -> None:
    """Both rendered signers sign every stream's mail (RFC 8463 beside RSA): dkimpy verifies the received
    .eml's rsa-sha256 and ed25519-sha256 signatures, each d= the stream's sending domain with its active
    selector."""
    sent = lab_module.send(lab, provider="yahoo")
    assert all(e["accepted"] for e in sent), [e["reply"] for e in sent if not e["accepted"]]
    _arrivals(lab, [e["lab_id"] for e in sent])
    emls = {eml.name.split("-")[1]: eml for eml in lab.layout.mail_dir.glob("yahoo/*.eml")}
    for entry in sent:
        stream = lab.plan.stream(entry["stream"])
        assert stream.ed25519_selector, f"dev stream {stream.name} is expected to have an Ed25519 selector"
        argv = in_namespace(lab.layout.namespace, [sys.executable, "-c", _VERIFY_EML,
                                                   str(emls[entry["lab_id"]].resolve())])
        result = subprocess.run(argv, capture_output=True, text=True, check=True, env=lab_module.python_env())
        signatures = sorted(tuple(line.split()) for line in result.stdout.splitlines())
        assert signatures == sorted([
            ("ed25519-sha256", stream.sending_domain, stream.ed25519_selector, "True"),
            ("rsa-sha256", stream.sending_domain, stream.dkim_selector, "True"),
        ]), entry["stream"]


def test_dsn_for_an_unknown_recipient_reaches_the_primary_and_nothing_loops(lab: Any) -> None:
    """GIVEN a provider that answers 550 5.1.1 for a recipient WHEN a stream sends to it THEN the pool
    instance's DSN goes to the return-path address on this host's primary instance (not back to itself
    by MX: no 'loops back to myself', no 'greeted me with my own hostname'), the primary hands it to the
    bounce processor, which suppresses the recipient, and no instance keeps anything queued."""
    sent = lab_module.send(lab, pool="tx", provider="outlook", rcpt_prefix="unknown")
    assert [e["accepted"] for e in sent] == [True]
    store = lab_db_path(lab.layout.runtime_dir)
    deadline = time.monotonic() + 20
    entry = None
    while time.monotonic() < deadline and entry is None:
        entry = SqliteStore(store).get(sent[0]["rcpt"].lower()) if store.exists() else None
        time.sleep(0.2)
    assert entry is not None, f"no suppression for {sent[0]['rcpt']} in {store}"
    assert "5.1.1" in entry.reason
    assert sent[0]["lab_id"] not in {a.get("lab_id") for a in read_arrivals(lab.layout.mail_dir)}
    logs = "".join(p.read_text(errors="replace") for p in (lab.layout.runtime_dir / "root/var/log").glob("*.log"))
    assert "loops back to myself" not in logs and "greeted me with my own hostname" not in logs
    time.sleep(0.5)
    assert lab_module.queue_entries(lab) == []


def test_milter_sockets_are_the_same_path_in_opendkim_and_postfix_and_postfix_can_open_them(lab: Any) -> None:
    """Overlay 1 moves each signer's socket alike in its opendkim.conf (Socket local:) and in every pool
    instance's smtpd_milters (unix:), in the signers' order; each socket exists, lets Postfix's group in
    and nobody else."""
    root = lab.layout.runtime_dir / "root"
    for host in (h for h in lab.plan.hosts if h.mta == "postfix"):
        signers = plan_signers(lab.plan, host)
        sockets = [mta.signer_socket(s, root) for s in signers]
        for signer, path in zip(signers, sockets, strict=True):
            conf = (root / signer.conf.lstrip("/")).read_text()
            assert re.findall(r"^Socket\s+(\S+)$", conf, re.MULTILINE) == [f"local:{path}"]
            status = path.stat()
            assert stat.S_ISSOCK(status.st_mode)
            assert (status.st_gid, stat.S_IMODE(status.st_mode) & 0o077) == (pwd.getpwnam("postfix").pw_gid, 0o070)
        for _, instance in lab_module.staged_instances(lab):
            if instance.pool is None:
                continue
            milters = mta.read_main_cf(instance.config_dir / "main.cf")["smtpd_milters"]
            # `{ unix:<socket>, default_action=... }` per signer (Postfix's per-milter settings).
            assert re.findall(r"\{\s*unix:(\S+),", milters) == [str(p) for p in sockets], instance.name
