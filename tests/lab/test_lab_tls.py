"""TLS on the routes and on the bounce MX, as Postfix itself does it (the running lab of tests/lab/conftest.py).

Relay and SES credentials cross the route's connection: Postfix must verify the relay's certificate and name
(smtp_tls_policy_maps `secure`, postconf(5)) before it sends AUTH or mail; a relay that offers no STARTTLS,
or answers it with a certificate no trusted CA signed (what someone on the path would do), gets neither.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import pytest

from mailinfra.lab import lab as lab_module
from mailinfra.lab import mta
from mailinfra.lab.namespace import in_namespace
from mailinfra.lab.relay import read_auth_attempts
from mailinfra.lab.report import read_arrivals
from mailinfra.mta.postfix import CONNECTION_CACHE_SECONDS

pytestmark = [pytest.mark.lab, pytest.mark.slow]

DEFER_WAIT_SECONDS = 20.0
# What smtp(8) says when a `secure` destination fails (its delay reason in postqueue -j).
DEFER_REASONS = {"no-starttls": "TLS is required, but was not offered", "untrusted-cert": "certificate not verified"}


def _attempts(lab: Any) -> dict[str, list[dict[str, Any]]]:
    return {r.name: read_auth_attempts(lab_module.auth_log(lab, r.name)) for r in lab.layout.routes}


@pytest.mark.parametrize("mode", ["no-starttls", "untrusted-cert"])
def test_a_route_relay_that_cannot_prove_its_name_gets_no_password_and_no_mail(lab: Any, mode: str) -> None:
    """GIVEN gmail throttling (421) so every pool's mail goes to its stream's route, AND each route's relay
    offering no STARTTLS or a certificate no trusted CA signed WHEN every pool sends to gmail THEN no relay
    sees an AUTH attempt, nothing is relayed, and each message waits in its queue, deferred with smtp(8)'s reason;
    AND once the relays present their real certificate, the same mail goes through them, authenticated over TLS."""
    time.sleep(CONNECTION_CACHE_SECONDS + 1)  # no session cached from an earlier test is reused
    before = {name: len(entries) for name, entries in _attempts(lab).items()}
    lab_module.fault(lab, "gmail", "throttle")
    try:
        for route in lab.layout.routes:
            lab_module.route_mode(lab, route.name, mode)
        sent = lab_module.send(lab, provider="gmail")
        assert all(e["accepted"] for e in sent), [e["reply"] for e in sent if not e["accepted"]]
        senders = {e["mail_from"]: e["lab_id"] for e in sent}
        deadline = time.monotonic() + DEFER_WAIT_SECONDS
        reasons: dict[str, str] = {}
        while time.monotonic() < deadline:
            queued = {senders[q["sender"]]: " ".join(r.get("delay_reason", "") for r in q.get("recipients", []))
                      for q in lab_module.queue_entries(lab) if q.get("sender") in senders}
            reasons = {i: r for i, r in queued.items() if r}
            if len(reasons) == len(sent) and all(DEFER_REASONS[mode] in r for r in reasons.values()):
                break
            time.sleep(0.5)
        attempts = {name: entries[before[name]:] for name, entries in _attempts(lab).items()}
        arrived = {a.get("lab_id") for a in read_arrivals(lab.layout.mail_dir)}
        assert attempts == {name: [] for name in attempts}, f"{mode}: a relay was handed the password: {attempts}"
        assert not arrived & set(senders.values()), f"{mode}: mail went to an unverified relay"
        assert sorted(reasons) == sorted(senders.values()), f"{mode}: not all deferred: {reasons}"
        assert all(DEFER_REASONS[mode] in r for r in reasons.values()), reasons
        # The relays' real certificates (lab CA, their names): the queued mail goes through them.
        for route in lab.layout.routes:
            lab_module.route_mode(lab, route.name, "ok")
        time.sleep(CONNECTION_CACHE_SECONDS + 1)
        for _host, instance in lab_module.staged_instances(lab):
            mta.flush_queue(lab.layout.namespace, instance)
        lab_module.wait_for_arrivals(lab, list(senders.values()), timeout=30)
    finally:
        for route in lab.layout.routes:
            lab_module.route_mode(lab, route.name, "ok")
        lab_module.fault(lab, "gmail", "ok")
    after = {name: entries[before[name]:] for name, entries in _attempts(lab).items()}
    used = {name for name, entries in after.items() if entries}
    assert used == {s.route for s in lab.plan.streams if s.route}
    assert all(e["tls"] and e["accepted"] for entries in after.values() for e in entries), after


PROBE = r"""
import json, smtplib, ssl, sys
host = sys.argv[1]
result = {}
with smtplib.SMTP(host, 25, timeout=10) as smtp:
    code, reply = smtp.docmd("MAIL", "FROM:<probe@example.org>")
    result["mail_before_helo"] = code
    smtp.ehlo("probe.example.org")
    result["starttls_offered"] = smtp.has_extn("starttls")
    result["vrfy"] = smtp.docmd("VRFY", "bounces")[0]
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    smtp.starttls(context=context)
    der = smtp.sock.getpeercert(binary_form=True)
    result["certificate"] = ssl.DER_cert_to_PEM_cert(der)
print(json.dumps(result))
"""


def test_the_bounce_mx_offers_starttls_with_its_own_certificate_and_no_vrfy(lab: Any) -> None:
    """The bounce host's primary Postfix (as provisioned: apply-config generated its certificate at first
    boot) refuses MAIL before HELO, offers STARTTLS with a certificate for the host's fqdn, refuses VRFY."""
    from cryptography import x509

    host = next(h for h in lab.plan.hosts if h.accepts_bounces and h.mta == "postfix")
    done = subprocess.run(in_namespace(lab.layout.namespace, [sys.executable, "-c", PROBE, "127.0.0.1"]),
                              capture_output=True, text=True, check=False, timeout=30)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["mail_before_helo"] == 503  # smtpd_helo_required: "Error: send HELO/EHLO first"
    assert result["starttls_offered"] is True
    assert result["vrfy"] == 502  # disable_vrfy_command: "VRFY command is disabled"
    cert = x509.load_pem_x509_certificate(result["certificate"].encode())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName)
    assert names == [host.fqdn]


def test_a_from_header_of_another_domain_is_refused_at_injection(lab: Any) -> None:
    """GIVEN the transactional instance WHEN the app injects a From of another stream's domain THEN Postfix
    answers 5.7.1 naming the stream's sending domain (header_checks at end of DATA), and nothing is sent."""
    stream = lab.plan.stream(lab.plan.pool("tx").stream)
    other = next(s.sending_domain for s in lab.plan.streams if s.name != stream.name)
    sent = lab_module.send(lab, pool="tx", provider="yahoo", from_domain=other)
    assert [e["accepted"] for e in sent] == [False]
    assert sent[0]["reply"].startswith("550 5.7.1") and stream.sending_domain in sent[0]["reply"], sent[0]["reply"]
    time.sleep(0.5)
    assert sent[0]["lab_id"] not in {a.get("lab_id") for a in read_arrivals(lab.layout.mail_dir)}


def test_mail_without_message_id_arrives_with_one_and_its_dkim_signature_verifies(lab: Any) -> None:
    """GIVEN an app that sends no Message-ID WHEN every pool injects to gmail THEN each message arrives
    with a Message-ID Postfix added (always_add_missing_headers), signed and DMARC-aligned."""
    sent = lab_module.send(lab, provider="gmail", message_id=False)
    assert all(e["accepted"] for e in sent), [e["reply"] for e in sent if not e["accepted"]]
    lab_module.wait_for_arrivals(lab, [e["lab_id"] for e in sent], timeout=30)
    arrivals = {a.get("lab_id"): a for a in read_arrivals(lab.layout.mail_dir)}
    for entry in sent:
        got = arrivals[entry["lab_id"]]
        assert got["headers"]["Message-ID"].startswith("<"), got["headers"]
        assert got["dkim_pass"] and got["dmarc"] == "pass", got
