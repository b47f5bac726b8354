"""DKIM key records (RFC 6376 §3.6.1, RFC 8463 for Ed25519) and public-key validation."""

from __future__ import annotations

import base64
import binascii

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_der_public_key

# RFC 8301 §3.2: verifiers must not accept RSA keys under 1024 bits; providers recommend 2048.
MIN_RSA_BITS = 1024
ED25519_KEY_BYTES = 32

# Preview placeholder: the SubjectPublicKeyInfo of a 2048-bit RSA key generated once with
# `cryptography` for this file. Its private key was never kept, so nothing can ever sign with it:
# a preview record built from it is well-formed but cannot authenticate mail by accident.
PLACEHOLDER_RSA_SPKI = (
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAsUuay3a0At0PBkqPIz4B1zVblNp+C4gbMX8q6mjduueqUo8ylhkX+Ome"
    "1hU8hkToVNAhgsQIjRKX/2ACK01I4/TrM3OLx1gA3T+kjQ6E4fr8fm87qzkZBGqXCcGcxGAofEqZJsTkeUnFXJkS2GajE+uK096K"
    "Mx5lfNkwnxm8kEqC9k0H4E4SImrFe4BZSRcGJ5Op5TDnMpb2qreZKgVjLBP/Mw8Z9J6DTTi15ibo5SKaW8i4hl7vo/U6M7+H8eVB"
    "qOTDMpcQYF2YzNTqYG/+B2wZgz0174rqetDf8xIBjaxb4NsfhszrQe0ncYg/JVmxt0lpIvODGxQlqBSEMp/nFwIDAQAB"
)
# Preview placeholder: a raw 32-byte Ed25519 public key (RFC 8463 §4.2), generated once; its private
# key was never kept either.
PLACEHOLDER_ED25519 = "Mt7ng7YsLfcYdqchpE023g6kxPPvEQDpcJOrXSrFCZo="


def build_dkim_rsa(spki_der_b64: str) -> str:
    """Build `v=DKIM1; k=rsa; p=<base64 SubjectPublicKeyInfo>` (RFC 6376 §3.6.1).

    Raises ValueError when the key is not a usable RSA public key: a bad `p=` makes every signature
    fail silently at receivers, so it is a bug to stop at plan time.
    """
    key = _compact(spki_der_b64)
    problem = load_public_key_b64(key, "rsa")
    if problem:
        raise ValueError(problem)
    return f"v=DKIM1; k=rsa; p={key}"


def build_dkim_ed25519(raw_pub_b64: str) -> str:
    """Build `v=DKIM1; k=ed25519; p=<base64 of the raw 32-byte key>` (RFC 8463 §4.2, not an SPKI)."""
    key = _compact(raw_pub_b64)
    problem = load_public_key_b64(key, "ed25519")
    if problem:
        raise ValueError(problem)
    return f"v=DKIM1; k=ed25519; p={key}"


def dkim_record_name(selector: str, domain: str) -> str:
    """`<selector>._domainkey.<domain>` (RFC 6376 §3.6.2.1), lower-case without the trailing dot."""
    selector = selector.strip().lower().strip(".")
    domain = domain.strip().lower().rstrip(".")
    if not selector or not domain:
        raise ValueError(f"selector and domain must be non-empty, got {selector!r} and {domain!r}")
    return f"{selector}._domainkey.{domain}"


def public_key_bits(spki_b64: str) -> int:
    """The size in bits of a base64 public key: an RSA/Ed25519 SPKI or a raw 32-byte Ed25519 key."""
    der = _decode(spki_b64)
    if der is None:
        raise ValueError("public key is not valid base64")
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
    raise ValueError(f"unsupported key type: {_describe(key)}")


def load_public_key_b64(key_b64: str, key_type: str = "rsa") -> str | None:
    """Return what is wrong with a DKIM public key, or None when it is usable.

    `key_type` is the `k=` tag: `rsa` expects a base64 DER SubjectPublicKeyInfo of at least 1024
    bits (RFC 8301 §3.2); `ed25519` expects the base64 of the raw 32-byte key (RFC 8463 §4.2).
    """
    if not _compact(key_b64):
        # RFC 6376 §3.6.1: an empty p= is how a key is revoked, never a key to publish by mistake.
        return "public key is empty (an empty p= revokes the selector)"
    raw = _decode(key_b64)
    if raw is None:
        return "public key is not valid base64"
    if key_type == "ed25519":
        return _ed25519_problem(raw)
    if key_type == "rsa":
        return _rsa_problem(raw)
    return f"unknown key type {key_type!r}; expected rsa or ed25519"


def _rsa_problem(der: bytes) -> str | None:
    try:
        key = load_der_public_key(der)
    except (ValueError, UnsupportedAlgorithm):
        return "public key is not a DER SubjectPublicKeyInfo"
    if not isinstance(key, rsa.RSAPublicKey):
        return f"k=rsa but the key is {_describe(key)}"
    if key.key_size < MIN_RSA_BITS:
        return f"RSA key is {key.key_size} bits; receivers reject under {MIN_RSA_BITS} (RFC 8301 §3.2)"
    return None


def _ed25519_problem(raw: bytes) -> str | None:
    if len(raw) != ED25519_KEY_BYTES:
        try:
            spki = load_der_public_key(raw)
        except (ValueError, UnsupportedAlgorithm):
            spki = None
        if isinstance(spki, ed25519.Ed25519PublicKey):
            return "k=ed25519 takes the raw 32-byte key, not a SubjectPublicKeyInfo (RFC 8463 §4.2)"
        return f"Ed25519 public key must be {ED25519_KEY_BYTES} bytes, got {len(raw)}"
    try:
        ed25519.Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        return "not a valid Ed25519 public key"
    return None


def _describe(key: object) -> str:
    # cryptography's concrete classes are Rust-backed with unhelpful names (ECPublicKey); name the family.
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"an EC key ({key.curve.name})"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "an Ed25519 key"
    return f"a {type(key).__name__}"


def _compact(key_b64: str) -> str:
    # RFC 6376 §3.6.1: whitespace inside p= is ignored; the record carries the key without it.
    return "".join(key_b64.split())


def _decode(key_b64: str) -> bytes | None:
    compact = _compact(key_b64)
    if not compact:
        return None
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        return None


def dkim_secret_key(domain: str, selector: str) -> str:
    """The Pulumi config key (in the `mailinfra` namespace) holding one private key, PEM PKCS#8."""
    return f"dkim_{domain.replace('.', '_').replace('-', '_')}_{selector.replace('-', '_')}"
