"""DNS record values as the providers publish them, and the few tag parsers the DNS rules need.

Kept inside the pack (it cannot import the project, see __init__); tests/policy/test_policies.py
checks these read every record the planner publishes exactly as mailinfra.dns does.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator
from typing import Any

from .values import UNKNOWN, items_of

ROUTE53_RECORD = "aws:route53/record:Record"
CLOUDFLARE_RECORD = "cloudflare:index/dnsRecord:DnsRecord"

# RFC 1035 §5.1 master-file form: "..." strings, \DDD and \X escapes.
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')
_ESCAPE = re.compile(r"\\(\d{3}|.)")
# RFC 7208 §4.6.4: the mechanisms that make a receiver query DNS, and the redirect modifier.
SPF_LOOKUP_TERMS = frozenset({"include", "a", "mx", "ptr", "exists", "redirect"})
SPF_MAX_LOOKUPS = 10
ED25519_KEY_BYTES = 32


def record_texts(resource_type: str, props: dict[str, Any], record_type: str) -> Iterator[tuple[str, str | None]]:
    """(owner name, logical text or None when unknown) for each value of a record of `record_type`.

    Route53: `records` values are given bare; the provider quotes each itself and `""` inside one marks
    a split between 255-byte strings (terraform-provider-aws `flattenTxtEntry`; the SDK's `records`
    docstring). A value already in quotes is read as the master-file strings it spells. Cloudflare:
    `content` is the presentation form, quoted strings for TXT. A record whose name or type is not known
    yet yields nothing: which rule applies cannot be told.
    """
    kind, name = props.get("type"), props.get("name")
    if kind is UNKNOWN or name is UNKNOWN or str(kind).upper() != record_type:
        return
    owner = str(name or "").lower().rstrip(".")
    if resource_type == ROUTE53_RECORD:
        values = items_of(props.get("records"))
        quoted_form = False
    elif resource_type == CLOUDFLARE_RECORD:
        values = items_of(props.get("content"))
        quoted_form = record_type == "TXT"
    else:
        return
    if values is UNKNOWN:
        yield owner, None
        return
    for value in values:
        if value is UNKNOWN or not isinstance(value, str):
            yield owner, None
        elif record_type != "TXT":
            yield owner, value
        elif quoted_form or (value.startswith('"') and value.endswith('"')):
            yield owner, unquote_txt(value)
        else:
            yield owner, value.replace('""', "")


def unquote_txt(value: str) -> str:
    """Master-file TXT rdata (`"a" "b"`, RFC 1035 §5.1 escapes) to the logical text; bare text as is.

    RFC 7208 §3.3 / RFC 6376 §3.6.2.2: receivers concatenate the strings with nothing in between.
    """
    strings = _QUOTED.findall(value)
    if not strings:
        return value
    raw = b"".join(_unescape(s) for s in strings)
    return raw.decode("utf-8", "replace")


def _unescape(string: str) -> bytes:
    out = bytearray()
    position = 0
    for match in _ESCAPE.finditer(string):
        out += string[position:match.start()].encode()
        escaped = match.group(1)
        out += bytes([int(escaped)]) if escaped.isdigit() else escaped.encode()
        position = match.end()
    out += string[position:].encode()
    return bytes(out)


def parse_tags(text: str) -> dict[str, str]:
    """RFC 7489 §6.4 / RFC 6376 §3.2 tag-list: lower-cased names, first value of a repeated tag."""
    tags: dict[str, str] = {}
    for part in text.split(";"):
        name, equals, value = part.partition("=")
        name = name.strip().lower()
        if equals and name:
            tags.setdefault(name, value.strip())
    return tags


def first_tag(text: str) -> tuple[str, str]:
    """The first tag of a tag-list (RFC 7489 §6.4: `v` must come first), as (name, value)."""
    name, _, value = text.split(";", 1)[0].partition("=")
    return name.strip().lower(), value.strip()


def count_spf_lookups(text: str) -> int:
    """The record's own DNS-querying terms (RFC 7208 §4.6.4); included records count at the receiver too."""
    count = 0
    for token in text.split()[1:]:
        qualified = token[:1] in "+-~?"
        body = token[1:] if qualified else token
        cut = min((i for i in (body.find(":"), body.find("/"), body.find("=")) if i >= 0), default=len(body))
        name = body[:cut].lower()
        if name == "redirect":
            # RFC 7208 §4.6.1: a modifier is name=value and takes no qualifier.
            count += not qualified and body[cut:].startswith("=")
        elif name in SPF_LOOKUP_TERMS and not body[cut:].startswith("="):
            count += 1
    return count


def public_key_bits(key_b64: str) -> int:
    """Bits of a DKIM p= key: an RSA SubjectPublicKeyInfo, or a raw 32-byte Ed25519 key (RFC 8463)."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    try:
        der = base64.b64decode("".join(key_b64.split()), validate=True)
    except (binascii.Error, ValueError) as error:
        raise ValueError("public key is not valid base64") from error
    if len(der) == ED25519_KEY_BYTES:
        return ED25519_KEY_BYTES * 8
    try:
        key = load_der_public_key(der)
    except (ValueError, UnsupportedAlgorithm) as error:
        raise ValueError(f"not a DER SubjectPublicKeyInfo: {error}") from error
    if isinstance(key, rsa.RSAPublicKey):
        return key.key_size
    if isinstance(key, ed25519.Ed25519PublicKey):
        return ED25519_KEY_BYTES * 8
    raise ValueError(f"unsupported key type {type(key).__name__}")
