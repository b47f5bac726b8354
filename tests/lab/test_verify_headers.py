"""The provider's verifier reports which headers each DKIM signature covers, and one-click unsubscribe
counts only when a valid signature covers both RFC 8058 headers. No lab needed: dkimpy signs a message
with a key generated here and verifies it against that key's TXT record."""

from __future__ import annotations

import base64
from email.message import EmailMessage
from typing import Any

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mailinfra.lab import verify

SIGNED = [b"from", b"from", b"to", b"subject", b"message-id", b"list-unsubscribe", b"list-unsubscribe-post",
          b"list-unsubscribe-post"]


@pytest.fixture(scope="module")
def key() -> tuple[bytes, bytes]:
    """(PEM private key, the DNS TXT value of its public key), generated at test time."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    spki = private.public_key().public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem, b"v=DKIM1; k=rsa; p=" + base64.b64encode(spki)


def _message() -> bytes:
    message = EmailMessage()
    message["From"] = "news <hello@news.example.com>"
    message["To"] = "user@gmail.com"
    message["Subject"] = "hello"
    message["Message-ID"] = "<1@news.example.com>"
    message["List-Unsubscribe"] = "<https://news.example.com/u/1>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content("body\n")
    return message.as_bytes()


def _signed(key: tuple[bytes, bytes], include: list[bytes]) -> bytes:
    raw = _message()
    signature: bytes = dkim.sign(raw, b"s1", b"news.example.com", key[0], canonicalize=(b"relaxed", b"relaxed"),
                          include_headers=include)
    return signature + raw


def _check(raw: bytes, key: tuple[bytes, bytes], monkeypatch: pytest.MonkeyPatch) -> tuple[verify.DkimResult, ...]:
    def txt(name: bytes, timeout: int = 5) -> bytes | None:
        return key[1] if name == b"s1._domainkey.news.example.com." else None

    monkeypatch.setattr(verify, "dkim_key_txt", txt)
    from email import message_from_bytes
    return verify._check_dkim(raw, message_from_bytes(raw))


def _verdict(dkim_results: tuple[verify.DkimResult, ...], raw: bytes) -> verify.Verdict:
    from email import message_from_bytes
    message = message_from_bytes(raw)
    headers = {h: str(message.get(h, "")) for h in ("List-Unsubscribe", "List-Unsubscribe-Post")}
    empty: Any = ""
    return verify.Verdict(source_ip=empty, helo=empty, mail_from=empty, from_domain=empty, spf=empty,
                          spf_domain=empty, dkim=dkim_results, dmarc=empty, dmarc_policy=empty, ptr_names=(),
                          helo_matches_ptr=False, fcrdns=False, headers=headers)


def test_reports_the_headers_a_signature_covers_in_h_order(key: tuple[bytes, bytes],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """h= as signed, lower-cased, oversigned names repeated (RFC 6376 §3.5, §8.15)."""
    raw = _signed(key, SIGNED)
    (result,) = _check(raw, key, monkeypatch)
    assert result.result == "pass"
    assert result.signed_headers == tuple(h.decode() for h in SIGNED)
    assert result.canonicalization == "relaxed/relaxed"
    assert _verdict((result,), raw).one_click_signed


def test_an_altered_list_unsubscribe_post_fails_verification(key: tuple[bytes, bytes],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A signed List-Unsubscribe-Post changed in transit breaks the signature: one-click is not honoured."""
    raw = _signed(key, SIGNED).replace(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click",
                                       b"List-Unsubscribe-Post: List-Unsubscribe=Two-Clicks")
    (result,) = _check(raw, key, monkeypatch)
    assert result.result == "fail"
    assert not _verdict((result,), raw).one_click_signed


def test_one_click_is_not_signed_when_the_post_header_is_outside_h(key: tuple[bytes, bytes],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """What OpenDKIM's default header list produced: a valid signature without List-Unsubscribe-Post in
    h= does not make one-click count (RFC 8058 §4)."""
    raw = _signed(key, [h for h in SIGNED if h != b"list-unsubscribe-post"])
    (result,) = _check(raw, key, monkeypatch)
    assert result.result == "pass" and not result.covers("List-Unsubscribe-Post")
    assert not _verdict((result,), raw).one_click_signed
