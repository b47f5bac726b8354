"""The providers' verifier resolves through one TTL-honouring cache, as a real receiver does: a record
changed at the authoritative server is not seen before its TTL runs out, and is seen after.

A real knotd on loopback serves the records; the verifier's SPF (pyspf), DKIM key (dkimpy's dnsfunc)
and DMARC lookups all go through mailinfra.lab.resolver.shared_resolver, pointed at it."""

from __future__ import annotations

import base64
import subprocess
import time
from email import message_from_bytes
from pathlib import Path

import dkim
import dns.message
import dns.query
import dns.resolver
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mailinfra.lab import verify
from mailinfra.lab.resolver import shared_resolver
from tests.drift.knot import knot_serving
from tests.lab.conftest import require_lab
from tests.tooling import require_tool

pytestmark = [pytest.mark.lab, pytest.mark.slow]

ZONE = "cache.test"
LONG_TTL = 3600
SHORT_TTL = 3  # seconds: long enough to re-read within it on a loaded machine, short enough to wait out
CLIENT = "192.0.2.1"
# 1024 bits: dkimpy's minimum, and the record fits one 255-byte TXT string.
SIGNING_KEY = rsa.generate_private_key(public_exponent=65537, key_size=1024)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=1024)


def key_record(key: rsa.RSAPrivateKey) -> str:
    spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return f"v=DKIM1; k=rsa; p={base64.b64encode(spki).decode()}"


# The change: SPF no longer lists the client, the key record holds another key, DMARC says reject.
OLD = {"spf": f"v=spf1 ip4:{CLIENT} -all", "dmarc": "v=DMARC1; p=none", "key": key_record(SIGNING_KEY)}
NEW = {"spf": "v=spf1 -all", "dmarc": "v=DMARC1; p=reject", "key": key_record(OTHER_KEY)}


def render(serial: int, texts: dict[str, str]) -> str:
    """The zone with every record under `long.` (TTL 3600) and `short.` (TTL SHORT_TTL)."""
    lines = [f"$ORIGIN {ZONE}.", "$TTL 3600",
             f"@ 3600 IN SOA ns1.{ZONE}. hostmaster.{ZONE}. {serial} 3600 600 86400 1",
             f"@ 3600 IN NS ns1.{ZONE}.", "ns1 3600 IN A 127.0.0.1"]
    for label, ttl in (("long", LONG_TTL), ("short", SHORT_TTL)):
        lines += [f'{label} {ttl} IN TXT "{texts["spf"]}"',
                  f'_dmarc.{label} {ttl} IN TXT "{texts["dmarc"]}"',
                  f'sel._domainkey.{label} {ttl} IN TXT "{texts["key"]}"']
    return "\n".join(lines) + "\n"


def signed_message(domain: str) -> bytes:
    message = (f"From: news@{domain}\r\nTo: user@gmail.lab\r\nSubject: cache\r\n\r\nhello\r\n").encode()
    private = SIGNING_KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                        serialization.NoEncryption())
    return bytes(dkim.sign(message, b"sel", domain.encode(), private, include_headers=[b"from", b"to"])) + message


def observe(label: str) -> tuple[str, str, str | None]:
    """What the verifier sees for `label`: SPF for CLIENT, DKIM of a message signed with SIGNING_KEY, DMARC."""
    domain = f"{label}.{ZONE}"
    raw = signed_message(domain)
    (signature,) = verify._check_dkim(raw, message_from_bytes(raw))
    return (verify._check_spf(CLIENT, f"bounces@{domain}", f"client.{ZONE}"), signature.result,
            verify._dmarc_record(domain))


def publish(workdir: Path, port: int, zone_text: str) -> None:
    """Replace the zone at Knot and wait until Knot itself answers with the new records."""
    (workdir / "zones" / f"{ZONE}.zone").write_text(zone_text)
    knotc = require_tool("knotc")
    subprocess.run([knotc, "-c", str(workdir / "knot.conf"), "zone-reload", ZONE],
                   check=True, capture_output=True, text=True)
    deadline = time.monotonic() + 10
    while True:
        response = dns.query.udp(dns.message.make_query(f"_dmarc.short.{ZONE}", "TXT"), "127.0.0.1",
                                 port=port, timeout=1)
        if NEW["dmarc"] in str(response.answer):
            return
        assert time.monotonic() < deadline, "knotd did not serve the changed zone within 10 s"
        time.sleep(0.02)


def test_verifier_lookups_hold_each_answer_for_its_ttl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """GIVEN SPF, DKIM key and DMARC records with TTL 3600 and TTL 3, read once through the verifier
    WHEN the authoritative server starts serving changed records
    THEN within the TTL the verifier still sees the cached answers (no query reached the server), and once
    the short TTL ran out it sees the change for those records only."""
    require_lab()
    with knot_serving(tmp_path, {ZONE: render(1, OLD)}) as port:
        resolver = shared_resolver()
        monkeypatch.setattr(resolver, "nameservers", ["127.0.0.1"])
        monkeypatch.setattr(resolver, "port", port)
        cache = dns.resolver.LRUCache()
        monkeypatch.setattr(resolver, "cache", cache)
        old = ("pass", "pass", OLD["dmarc"])
        new = ("fail", "fail", NEW["dmarc"])

        first = {label: observe(label) for label in ("long", "short")}
        fetched = time.monotonic()
        assert first == {"long": old, "short": old}
        publish(tmp_path, port, render(2, NEW))

        hits_before = cache.hits()
        within = {label: observe(label) for label in ("long", "short")}
        elapsed = time.monotonic() - fetched
        assert elapsed < SHORT_TTL, f"re-read {elapsed:.1f} s after the first read: the machine is too slow"
        assert within == first
        assert cache.hits() - hits_before >= 6  # SPF, key and DMARC of both names came from the cache

        time.sleep(SHORT_TTL - elapsed + 0.3)
        after = {label: observe(label) for label in ("long", "short")}
        assert after == {"long": old, "short": new}
