"""DKIM signing as the receiver sees it: which headers the rendered signers cover, canonicalization,
one-click unsubscribe (RFC 8058 §4), and which signer may fail without deferring mail.

The receiver is the lab provider's verifier (dkimpy, mailinfra/lab/verify.py) against the lab's DNS."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from mailinfra.lab import lab as lab_module
from mailinfra.lab import mta
from mailinfra.lab.namespace import in_namespace
from mailinfra.lab.procs import LabState, restart_process, stop_process
from mailinfra.lab.report import read_arrivals
from mailinfra.mta.opendkim import plan_signers

pytestmark = [pytest.mark.lab, pytest.mark.slow]

# A message as an application sends a marketing mail: every header RFC 6376 §5.4 / RFC 8058 / Gmail's
# Feedback-ID guidance wants signed, once each. Sent from inside the namespace, from the injection address.
_SEND = """
import json, smtplib, sys
from mailinfra.lab.inject import build_message
spec = json.loads(sys.argv[1])
message = build_message(spec["target"], spec["lab_id"], spec["rcpt"])
for name, value in spec["extra"].items():
    message[name] = value
with smtplib.SMTP(spec["target"]["address"], spec["target"]["port"], source_address=(spec["source"], 0),
                  timeout=30) as client:
    client.send_message(message, spec["mail_from"], [spec["rcpt"]])
"""
# The receiver's verdict on a stored .eml after an edit in transit (old bytes -> new bytes).
_VERIFY_EDITED = """
import json, sys
from mailinfra.lab.verify import verify_message
eml, old, new = sys.argv[1], sys.argv[2].encode(), sys.argv[3].encode()
record = json.loads(open(eml[:-4] + ".json").read())
raw = open(eml, "rb").read()
assert old in raw, old
edited = raw.replace(old, new, 1)
print(json.dumps(verify_message(edited, record["source_ip"], record["helo"], record["mail_from"]).to_json()))
"""
EXTRA_HEADERS = {"Cc": "cc@gmail.com", "Reply-To": "support@example.net",
                 "Feedback-ID": "campaign1:newsletter:mailinfra:lab"}


def _state(lab: Any) -> LabState:
    state = LabState.load(lab.layout.state_file)
    assert state is not None
    return state


def _target(lab: Any, *, one_click: bool) -> dict[str, Any]:
    targets = [t for t in _state(lab).info["targets"] if t["one_click_unsubscribe"] == one_click]
    assert targets, f"dev stack: expected a stream with one_click_unsubscribe={one_click}"
    return dict(targets[0])


def _send_raw(lab: Any, target: dict[str, Any], extra: dict[str, str], provider: str = "gmail") -> dict[str, Any]:
    """Inject one message with `extra` headers; its arrival record and stored .eml at the provider."""
    lab_id = uuid.uuid4().hex
    domain = next(p.domain for p in lab.layout.providers if p.name == provider)
    spec = {"target": target, "lab_id": lab_id, "rcpt": f"user-{lab_id[:6]}@{domain}", "extra": extra,
            "mail_from": f"bounces+{lab_id[:12]}@{target['return_path']}", "source": lab.layout.injector_address}
    argv = in_namespace(lab.layout.namespace, [sys.executable, "-c", _SEND, json.dumps(spec)])
    subprocess.run(argv, check=True, capture_output=True, text=True, env=lab_module.python_env())
    lab_module.wait_for_arrivals(lab, [lab_id], 30.0)
    (eml,) = (p for p in lab.layout.mail_dir.glob(f"{provider}/*.eml") if p.name.split("-")[1] == lab_id)
    record: dict[str, Any] = json.loads(eml.with_suffix(".json").read_text())
    record["eml"] = str(eml.resolve())
    return record


def _verify_edited(lab: Any, eml: str, old: str, new: str) -> dict[str, Any]:
    argv = in_namespace(lab.layout.namespace, [sys.executable, "-c", _VERIFY_EDITED, eml, old, new])
    done = subprocess.run(argv, check=True, capture_output=True, text=True,
                                        env=lab_module.python_env())
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.fixture(scope="module")
def one_click(lab: Any) -> dict[str, Any]:
    """GIVEN a marketing stream's message with both RFC 8058 headers and Feedback-ID, Cc, Reply-To,
    WHEN it reaches gmail THEN (the tests below) ..."""
    return _send_raw(lab, _target(lab, one_click=True), EXTRA_HEADERS)


def test_one_click_unsubscribe_headers_verify_under_dkim_at_the_receiver(one_click: dict[str, Any]) -> None:
    """Every signature (RSA and Ed25519) verifies and covers List-Unsubscribe and List-Unsubscribe-Post
    (RFC 8058 §4: only then is one-click offered), Message-ID, Feedback-ID, Date, Subject, To, Cc,
    Reply-To, MIME-Version, Content-Type; From and the unsubscribe pair are oversigned (named once more than
    they occur, RFC 6376 §8.15); both halves of c= are relaxed (RFC 6376 §3.4)."""
    assert one_click["one_click_signed"], one_click["dkim"]
    assert sorted(d["algorithm"] for d in one_click["dkim"]) == ["ed25519-sha256", "rsa-sha256"]
    for signature in one_click["dkim"]:
        assert signature["result"] == "pass", signature
        covered = signature["signed_headers"]
        for header in ("message-id", "feedback-id", "date", "subject", "to", "cc", "reply-to", "mime-version",
                       "content-type"):
            assert covered.count(header) == 1, (signature["algorithm"], header, covered)
        for header in ("from", "list-unsubscribe", "list-unsubscribe-post"):
            assert covered.count(header) == 2, (signature["algorithm"], header, covered)
        assert signature["canonicalization"] == "relaxed/relaxed"


def test_an_altered_list_unsubscribe_post_fails_verification(lab: Any, one_click: dict[str, Any]) -> None:
    """The same stored message with List-Unsubscribe-Post changed in transit: no signature verifies, so a
    receiver does not offer one-click (RFC 8058 §4)."""
    edited = _verify_edited(lab, one_click["eml"], "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
                            "List-Unsubscribe-Post: List-Unsubscribe=Two-Clicks")
    assert [d["result"] for d in edited["dkim"]] == ["fail", "fail"], edited["dkim"]
    assert not edited["one_click_signed"]


def test_a_second_from_added_after_signing_fails_verification(lab: Any, one_click: dict[str, Any]) -> None:
    """From is oversigned (RFC 6376 §8.15): a From prepended in transit breaks every signature."""
    edited = _verify_edited(lab, one_click["eml"], "\nFrom: ", "\nFrom: attacker <a@evil.example>\nFrom: ")
    assert [d["result"] for d in edited["dkim"]] == ["fail", "fail"], edited["dkim"]


def test_one_click_headers_added_to_transactional_mail_fail_verification(lab: Any) -> None:
    """The unsubscribe pair is oversigned even where absent: adding it to a transactional message in transit
    breaks every signature, so nobody can turn our mail into one-click mail of theirs."""
    record = _send_raw(lab, _target(lab, one_click=False), {})
    assert [d["result"] for d in record["dkim"]] == ["pass", "pass"]
    edited = _verify_edited(lab, record["eml"], "\nMessage-ID: ",
                            "\nList-Unsubscribe: <https://evil.example/u>\n"
                            "List-Unsubscribe-Post: List-Unsubscribe=One-Click\nMessage-ID: ")
    assert [d["result"] for d in edited["dkim"]] == ["fail", "fail"], edited["dkim"]


def test_body_whitespace_touched_by_a_relay_still_verifies(lab: Any, one_click: dict[str, Any]) -> None:
    """relaxed body canonicalization (RFC 6376 §3.4.4): trailing blanks a relay adds to a body line leave
    every signature valid (under relaxed/simple they all failed)."""
    text = Path(one_click["eml"]).read_bytes().decode()
    line = next(ln for ln in text.split("\n") if ln.startswith("Lab message "))
    edited = _verify_edited(lab, one_click["eml"], line, line.rstrip("\r") + "   ")
    assert [d["result"] for d in edited["dkim"]] == ["pass", "pass"], edited["dkim"]


def test_dead_ed25519_signer_lets_mail_go_out_rsa_signed(lab: Any) -> None:
    """GIVEN the Ed25519 signer killed WHEN a stream injects THEN the message is accepted and arrives with
    its RSA signature alone, verified (Postfix's per-milter default_action=accept for that milter); AND
    once the signer is back both signatures return."""
    state = _state(lab)
    host = next(h for h in lab.plan.hosts if h.mta == "postfix")
    ed25519 = next(s for s in plan_signers(lab.plan, host) if s.algorithm == "ed25519-sha256")
    name = mta.opendkim_process(ed25519, host.name)
    restart = state.processes[name]
    stop_process(state, name)
    state.save(lab.layout.state_file)
    try:
        sent = lab_module.send(lab, pool="tx", provider="outlook")
        assert [e["accepted"] for e in sent] == [True], [e["reply"] for e in sent]
        lab_module.wait_for_arrivals(lab, [sent[0]["lab_id"]], 30.0)
        time.sleep(0.3)
        arrived = [a for a in read_arrivals(lab.layout.mail_dir) if a.get("lab_id") == sent[0]["lab_id"]]
        assert len(arrived) == 1
        assert [(d["algorithm"], d["result"]) for d in arrived[0]["dkim"]] == [("rsa-sha256", "pass")]
        assert arrived[0]["dmarc"] == "pass"
    finally:
        state.processes[name] = restart
        restart_process(state, name)
        state.save(lab.layout.state_file)
        mta.wait_for_socket(mta.signer_socket(ed25519, lab.layout.runtime_dir / "root"), name)
    again = lab_module.send(lab, pool="tx", provider="outlook")
    lab_module.wait_for_arrivals(lab, [again[0]["lab_id"]], 30.0)
    arrived = [a for a in read_arrivals(lab.layout.mail_dir) if a.get("lab_id") == again[0]["lab_id"]]
    assert sorted(d["algorithm"] for d in arrived[0]["dkim"] if d["result"] == "pass") == [
        "ed25519-sha256", "rsa-sha256"]
