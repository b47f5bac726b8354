"""DKIM key records, key-size reading and key validation."""

from __future__ import annotations

import base64

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from mailinfra.dns.dkim import (
    PLACEHOLDER_ED25519,
    PLACEHOLDER_RSA_SPKI,
    build_dkim_ed25519,
    build_dkim_rsa,
    dkim_record_name,
    load_public_key_b64,
    public_key_bits,
)
from mailinfra.dns.txt import join_txt, split_txt

SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
RAW = (serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def rsa_spki_b64(bits: int) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return base64.b64encode(key.public_key().public_bytes(*SPKI)).decode()


def test_rsa_record_from_fresh_key_keeps_its_bit_length() -> None:
    """GIVEN a fresh 2048-bit key WHEN its record is built THEN p= reads back as 2048 bits."""
    spki = rsa_spki_b64(2048)
    record = build_dkim_rsa(spki)
    assert record == f"v=DKIM1; k=rsa; p={spki}"
    tags = dict(part.strip().split("=", 1) for part in record.split(";"))
    assert public_key_bits(tags["p"]) == 2048


def test_rsa_record_signs_and_verifies_with_dkimpy() -> None:
    """A message signed with the private key verifies against the record as DNS would serve it."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    spki = base64.b64encode(key.public_key().public_bytes(*SPKI)).decode()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    served = join_txt(split_txt(build_dkim_rsa(spki))).encode()
    message = b"From: a@example.com\r\nTo: b@example.net\r\nSubject: hi\r\n\r\nbody\r\n"
    signed = dkim.sign(message, b"s1", b"example.com", pem, include_headers=[b"from", b"to", b"subject"])

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
        assert name == dkim_record_name("s1", "example.com").encode() + b"."
        return served

    assert dkim.verify(signed + message, dnsfunc=dnsfunc)


def test_ed25519_record_is_the_raw_key() -> None:
    """k=ed25519 publishes the raw 32-byte key (RFC 8463), which reads as 256 bits."""
    raw = base64.b64encode(ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(*RAW)).decode()
    assert build_dkim_ed25519(raw) == f"v=DKIM1; k=ed25519; p={raw}"
    assert public_key_bits(raw) == 256


def test_placeholders_are_valid_keys() -> None:
    """The preview placeholders parse: RSA is 2048 bits, Ed25519 is a raw 32-byte key."""
    assert load_public_key_b64(PLACEHOLDER_RSA_SPKI, "rsa") is None
    assert public_key_bits(PLACEHOLDER_RSA_SPKI) == 2048
    assert load_public_key_b64(PLACEHOLDER_ED25519, "ed25519") is None
    assert len(base64.b64decode(PLACEHOLDER_ED25519)) == 32
    assert build_dkim_rsa(PLACEHOLDER_RSA_SPKI).endswith(PLACEHOLDER_RSA_SPKI)


def test_whitespace_inside_the_key_is_dropped() -> None:
    """A key pasted across lines (RFC 6376 §3.6.1 ignores the whitespace) is published compact."""
    wrapped = "\n".join(PLACEHOLDER_RSA_SPKI[i : i + 64] for i in range(0, len(PLACEHOLDER_RSA_SPKI), 64))
    assert build_dkim_rsa(wrapped) == build_dkim_rsa(PLACEHOLDER_RSA_SPKI)


@pytest.mark.parametrize(
    ("key", "key_type", "problem"),
    [
        ("not base64!", "rsa", "not valid base64"),
        ("", "rsa", "empty"),
        (base64.b64encode(b"garbage").decode(), "rsa", "not a DER SubjectPublicKeyInfo"),
        (PLACEHOLDER_ED25519, "rsa", "not a DER SubjectPublicKeyInfo"),
        (PLACEHOLDER_RSA_SPKI, "ed25519", "must be 32 bytes"),
        (PLACEHOLDER_RSA_SPKI, "dsa", "unknown key type"),
    ],
)
def test_load_reports_bad_keys(key: str, key_type: str, problem: str) -> None:
    """Each unusable key yields a one-line problem naming what is wrong."""
    found = load_public_key_b64(key, key_type)
    assert found is not None
    assert problem in found


def test_load_reports_wrong_algorithm_and_small_rsa() -> None:
    """An EC key under k=rsa, an Ed25519 SPKI under k=ed25519 and a 512-bit RSA key are refused."""
    ec_spki = base64.b64encode(ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(*SPKI))
    assert "an EC key" in (load_public_key_b64(ec_spki.decode(), "rsa") or "")
    ed_spki = base64.b64encode(ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(*SPKI))
    assert "not a SubjectPublicKeyInfo" in (load_public_key_b64(ed_spki.decode(), "ed25519") or "")
    # cryptography will not generate a 512-bit key, but loads one; any odd modulus will do here.
    small = rsa.RSAPublicNumbers(65537, (1 << 511) | 0xF1).public_key()
    small_spki = base64.b64encode(small.public_bytes(*SPKI)).decode()
    assert "512 bits" in (load_public_key_b64(small_spki, "rsa") or "")


def test_builders_refuse_bad_keys() -> None:
    """A record that would fail every signature is a plan-time error."""
    with pytest.raises(ValueError, match="base64"):
        build_dkim_rsa("@@@")
    with pytest.raises(ValueError, match="32 bytes"):
        build_dkim_ed25519(PLACEHOLDER_RSA_SPKI)
    with pytest.raises(ValueError, match="base64"):
        public_key_bits("@@@")


@pytest.mark.parametrize(
    ("selector", "domain", "expected"),
    [
        ("s1", "example.com", "s1._domainkey.example.com"),
        ("MKT-2026-11", "Mail.Example.COM.", "mkt-2026-11._domainkey.mail.example.com"),
    ],
)
def test_dkim_record_name(selector: str, domain: str, expected: str) -> None:
    """Names are `<selector>._domainkey.<domain>`, lower-case, without the trailing dot."""
    assert dkim_record_name(selector, domain) == expected
