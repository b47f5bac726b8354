"""Signed VERP return paths: which recipient and stream a bounce is about, and proof that we sent it.

A DSN goes to the envelope sender (RFC 5321 §4.5.5, RFC 3464 §2). Putting a token in the return path's
local part tells the processor which message a bounce is for, even when the bounce itself is not an
RFC 3464 report. The token is an HMAC-SHA256 (truncated to 80 bits, RFC 2104 §5) under a stack secret
over the recipient, the stream and the day it was sent, so a forged or altered token verifies as None
and a forged DSN can never suppress anybody.

The local part must fit in 64 octets (RFC 5321 §4.5.3.1.1) and every receiver must hand it back intact.
All of it is lower-case base32 (RFC 4648 §6 alphabet) plus the recipient's own dot-atom characters:
receivers that lower-case the return path still verify (every check here is case-insensitive).

Two forms (decided here, documented in docs/configuration.md and /work/brief/s12-api.md):

    b-<mac:16><day:3><stream:4>-<local>=<domain>@<return-path domain>   the recipient inline (classic VERP)
    h-<mac:16><day:3><stream:4>@<return-path domain>                    the recipient too long to fit

`b-` is used whenever `<local>=<domain>` fits (38 octets) and the local part is a plain dot-atom. `h-`
carries no recipient: the MAC binds one, so the processor takes the candidates the report names
(Final-Recipient, Original-Recipient, the original's To) and keeps the one the MAC verifies. Neither
form needs a send log or a store lookup.

`day` is days since 1970-01-01 modulo 32768 (3 base32 digits): a token older than `max_age` verifies as
None, so a leaked return path stops working. `stream` is a 4-digit hash of the stream key (not secret);
the MAC decides between streams whose codes collide. Several secrets may be given (the current one first,
then the ones being retired) so the secret can rotate without losing bounces in flight.

The `X-Mailinfra-Id` header (for ARF, whose reports often scrub the recipient: Comcast) carries the same
MAC with the recipient base32-encoded, so the recipient survives a redaction of its address text.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import hmac
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

LOCAL_PART_MAX = 64  # RFC 5321 §4.5.3.1.1
MAC_CHARS = 16  # 80 bits: 10 bytes of HMAC-SHA256, base32 without padding
DAY_CHARS = 3  # 15 bits of days
STREAM_CHARS = 4  # 20 bits
_FIXED = MAC_CHARS + DAY_CHARS + STREAM_CHARS
INLINE_MAX = LOCAL_PART_MAX - len("b-") - _FIXED - len("-")  # 38 octets for local=domain
HEADER = "X-Mailinfra-Id"
_EPOCH = dt.date(1970, 1, 1)
_DAY_MOD = 32 ** DAY_CHARS
_B32 = "abcdefghijklmnopqrstuvwxyz234567"
# RFC 5322 §3.2.3 dot-atom may stand inline (split at the LAST "=": a domain has none); the domain is
# letters, digits, hyphens and dots (an A-label for an IDN).
_INLINE_LOCAL = re.compile(r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_DOMAIN = re.compile(r"^[a-z0-9-]+(\.[a-z0-9-]+)+$")
_TOKEN = re.compile(rf"^(?P<form>[bh])-(?P<fixed>[{_B32}]{{{_FIXED}}})(?:-(?P<inline>.+))?$")
# What s12b's Postfix recipient check accepts (one regexp for both forms): a well-formed token, nothing else.
LOCAL_PART_PATTERN = rf"^(b-[{_B32}]{{{_FIXED}}}-[^@]+=[a-z0-9.-]+|h-[{_B32}]{{{_FIXED}}})$"
DEFAULT_MAX_AGE = dt.timedelta(days=60)


class VerpError(ValueError):
    """Bad input to build a token (no secret, a return-path domain that is no domain)."""


@dataclass(frozen=True)
class VerpToken:
    """What a verified token says: the recipient (normalised), the stream key and the day it was sent."""

    recipient: str
    stream: str
    day: dt.date


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").rstrip("=").lower()


def _b32_number(value: int, width: int) -> str:
    digits = []
    for _ in range(width):
        digits.append(_B32[value % 32])
        value //= 32
    return "".join(reversed(digits))


def _number_b32(text: str) -> int:
    value = 0
    for char in text:
        value = value * 32 + _B32.index(char)
    return value


@functools.cache
def stream_code(stream: str) -> str:
    """4 base32 digits naming the stream (a hash, not a secret)."""
    digest = int.from_bytes(hashlib.sha256(stream.encode()).digest()[:3], "big") >> 4
    return _b32_number(digest, STREAM_CHARS)


def _mac(secret: bytes, recipient: str, stream: str, day: int) -> str:
    message = b"\0".join([b"mailinfra-verp-v1", recipient.lower().encode(), stream.encode(), str(day).encode()])
    return _b32(hmac.new(secret, message, hashlib.sha256).digest()[:10])


def _day_number(day: dt.date) -> int:
    return (day - _EPOCH).days


def _unwrap_day(residue: int, today: dt.date) -> dt.date:
    """The latest day <= tomorrow whose number is `residue` mod 32768 (tomorrow: clocks differ)."""
    latest = _day_number(today) + 1
    number = latest - ((latest - residue) % _DAY_MOD)
    return _EPOCH + dt.timedelta(days=number)


def _secrets(secrets: bytes | Sequence[bytes]) -> list[bytes]:
    keys = [secrets] if isinstance(secrets, bytes) else list(secrets)
    if not keys or any(len(key) < 16 for key in keys):
        raise VerpError("a VERP secret of at least 16 bytes (mailinfra:verp_secret; RFC 2104 §3: "
                        "at least the MAC's length)")
    return keys


def build_return_path(recipient: str, stream: str, domain: str, secret: bytes | Sequence[bytes],
                      *, day: dt.date) -> str:
    """The envelope sender for one message to `recipient` (normalised first) on `stream`, sent on `day`.

    `domain` is the stream's return-path domain (plan: the stream's bounce domain). Only the first secret
    signs; the others only verify.
    """
    from mailinfra.suppression.address import normalise_address

    key = _secrets(secret)[0]
    rcpt = normalise_address(recipient)
    domain = domain.lower().rstrip(".")
    if not _DOMAIN.match(domain):
        raise VerpError(f"return-path domain {domain!r} is not a domain name")
    number = _day_number(day)
    fixed = _mac(key, rcpt, stream, number) + _b32_number(number % _DAY_MOD, DAY_CHARS) + stream_code(stream)
    local, _, rdomain = rcpt.rpartition("@")
    inline = f"{local}={rdomain}"
    if len(inline) <= INLINE_MAX and _INLINE_LOCAL.match(local) and _DOMAIN.match(rdomain):
        return f"b-{fixed}-{inline}@{domain}"
    return f"h-{fixed}@{domain}"


def verify_return_path(address: str, secret: bytes | Sequence[bytes], streams: Iterable[str], *,
                       today: dt.date, max_age: dt.timedelta = DEFAULT_MAX_AGE,
                       candidates: Iterable[str] = ()) -> VerpToken | None:
    """The token in `address` (a return path, or its local part), or None when it is not ours.

    None for: no token, a MAC that no secret and no known stream verifies, a token older than `max_age`
    (or dated after tomorrow). For an `h-` token the recipient is the first of `candidates` the MAC
    verifies (addresses the report names); an inline recipient must itself verify.
    """
    local = address.strip().strip("<>").rpartition("@")[0] or address.strip()
    match = _TOKEN.match(local.lower())
    if match is None:
        return None
    fixed = match["fixed"]
    mac, day_text, code = fixed[:MAC_CHARS], fixed[MAC_CHARS:MAC_CHARS + DAY_CHARS], fixed[MAC_CHARS + DAY_CHARS:]
    sent = _unwrap_day(_number_b32(day_text), today)
    if today - sent > max_age:
        return None
    if match["form"] == "b":
        if match["inline"] is None:
            return None
        rlocal, sep, rdomain = match["inline"].rpartition("=")
        if not sep:
            return None
        recipients = [f"{rlocal}@{rdomain}"]
    else:
        if match["inline"] is not None:
            return None
        recipients = _normalised(candidates)
    return _check(mac, code, sent, recipients, keys=_secrets(secret), streams=streams)


def _normalised(candidates: Iterable[str]) -> list[str]:
    from mailinfra.suppression.address import try_normalise

    found = [try_normalise(candidate) for candidate in candidates]
    return list(dict.fromkeys(c for c in found if c is not None))


def _check(mac: str, code: str, sent: dt.date, recipients: list[str], *, keys: list[bytes],
           streams: Iterable[str]) -> VerpToken | None:
    number = _day_number(sent)
    for stream in streams:
        if stream_code(stream) != code:
            continue
        for recipient in recipients:
            for key in keys:
                if hmac.compare_digest(_mac(key, recipient, stream, number), mac):
                    return VerpToken(recipient=recipient.lower(), stream=stream, day=sent)
    return None


def build_header(recipient: str, stream: str, secret: bytes | Sequence[bytes], *, day: dt.date) -> str:
    """The `X-Mailinfra-Id` header value: the token with the recipient base32-encoded (any length).

    ARF reports carry the original message (or its headers, RFC 5965 §2 item d); Comcast replaces the
    recipient's address wherever it appears, and an encoded recipient is no longer that text.
    """
    from mailinfra.suppression.address import normalise_address

    key = _secrets(secret)[0]
    rcpt = normalise_address(recipient)
    number = _day_number(day)
    fixed = _mac(key, rcpt, stream, number) + _b32_number(number % _DAY_MOD, DAY_CHARS) + stream_code(stream)
    return f"v1.{fixed}.{_b32(rcpt.encode())}"


def verify_header(value: str, secret: bytes | Sequence[bytes], streams: Iterable[str], *,
                  today: dt.date, max_age: dt.timedelta = DEFAULT_MAX_AGE) -> VerpToken | None:
    """The token in an `X-Mailinfra-Id` value, or None (forged, altered, expired, not ours)."""
    parts = "".join(value.split()).lower().split(".")
    if len(parts) != 3 or parts[0] != "v1" or len(parts[1]) != _FIXED or not parts[2]:
        return None
    fixed, encoded = parts[1], parts[2]
    if any(char not in _B32 for char in fixed + encoded):
        return None
    try:
        recipient = base64.b32decode(encoded.upper() + "=" * (-len(encoded) % 8)).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    sent = _unwrap_day(_number_b32(fixed[MAC_CHARS:MAC_CHARS + DAY_CHARS]), today)
    if today - sent > max_age:
        return None
    return _check(fixed[:MAC_CHARS], fixed[MAC_CHARS + DAY_CHARS:], sent, [recipient], keys=_secrets(secret),
                  streams=streams)
