"""DKIM key check against a real Knot server: a key generated here signs, the served record verifies (or not)."""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mailinfra.cli import drift_cmd
from mailinfra.dns.dkim import build_dkim_rsa
from mailinfra.dns.records import DnsRecord
from mailinfra.drift.dkim_check import HeldKey, parse_held_key
from mailinfra.drift.dns_check import DnsOptions, check_dns
from mailinfra.drift.model import DriftResult, Status
from mailinfra.drift.resolve import Server
from mailinfra.errors import UsageError
from tests.drift.knot import free_port, knot_serving, render_zones
from tests.drift.test_dns_drift import PLAN, delete, replace

NAME = "s2026a._domainkey.mail.example.com"
KEY = f"TXT:{NAME}"


def generate_key(path: Path) -> str:
    """A fresh 2048-bit RSA key written as PEM; returns its published record `v=DKIM1; k=rsa; p=...`."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.write_bytes(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    spki = private.public_key().public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
    return build_dkim_rsa(base64.b64encode(spki).decode())


def dkim_results(tmp_path: Path, records: list[DnsRecord], held: HeldKey) -> list[DriftResult]:
    with knot_serving(tmp_path, render_zones(PLAN, records)) as port:
        results, _ = asyncio.run(check_dns(PLAN, DnsOptions(Server("127.0.0.1", port), dkim_keys=(held,))))
    return [r for r in results if r.source == "dkim"]


@pytest.fixture(scope="module")
def host_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    path = tmp_path_factory.mktemp("key") / "s2026a.pem"
    return path, generate_key(path)


@pytest.mark.parametrize(("served", "status"), [
    ("held", Status.OK),  # the record carries the held key's public half
    ("other", Status.CHANGED),  # a different key is published: every signature fails
    ("deleted", Status.MISSING),
])
def test_held_key_is_checked_against_the_published_record(
        tmp_path: Path, host_key: tuple[Path, str], served: str, status: Status) -> None:
    """Exactly one dkim result for the selector, with the status the served record deserves."""
    path, record = host_key
    records = list(PLAN.records)
    if served == "deleted":
        records = delete(KEY)(records)
    else:
        records = replace(KEY, record if served == "held" else generate_key(tmp_path / "other.pem"))(records)
    results = dkim_results(tmp_path, records, HeldKey("mail.example.com", "s2026a", path))
    assert [(r.key, r.status) for r in results] == [(f"dkim:{NAME}", status)]
    assert "PRIVATE" not in json.dumps([r.as_dict() for r in results])


def test_org_domain_checks_every_signing_domain(tmp_path: Path, host_key: tuple[Path, str]) -> None:
    """GIVEN the key published only under mail.example.com WHEN the org domain is given THEN the other
    signing domains' records (still the plan's placeholder key) are key mismatches."""
    path, record = host_key
    results = dkim_results(tmp_path, replace(KEY, record)(list(PLAN.records)), HeldKey("example.com", "s2026a", path))
    assert {r.key: r.status for r in results} == {
        f"dkim:{NAME}": Status.OK,
        "dkim:s2026a._domainkey.news.example.com": Status.CHANGED,
        "dkim:s2026a._domainkey.reengage.example.com": Status.CHANGED,
    }


def test_server_down_is_unknown(host_key: tuple[Path, str]) -> None:
    path, _ = host_key
    options = DnsOptions(Server("127.0.0.1", free_port()), timeout=0.2, attempts=1,
                         dkim_keys=(HeldKey("mail.example.com", "s2026a", path),))
    results, _ = asyncio.run(check_dns(PLAN, options))
    assert [r.status for r in results if r.source == "dkim"] == [Status.UNKNOWN]


@pytest.mark.parametrize(("text", "message"), [
    ("mail.example.com:s2026a", "expected DOMAIN:SELECTOR:PATH"),
    ("mail.example.com:nosuch:/tmp/k.pem", "expected a planned DOMAIN:SELECTOR"),
    ("mail.example.com:s2026a:/nonexistent/k.pem", "cannot read /nonexistent/k.pem"),
])
def test_bad_dkim_key_argument_is_one_line_usage_error(text: str, message: str) -> None:
    args = argparse.Namespace(stack="dev", nameserver="127.0.0.1:1", format="table", timeout=0.2, attempts=1,
                              no_dns=False, aws=False, pulumi=False, dkim_key=[text])
    with pytest.raises(UsageError, match=message):
        drift_cmd.run(args)


def test_parse_held_key_keeps_colons_in_the_path() -> None:
    assert parse_held_key("Mail.Example.com.:S1:/keys/a:b.pem") == HeldKey("mail.example.com", "s1",
                                                                           Path("/keys/a:b.pem"))
