"""DKIM keys made for one lab run: private halves 0600 in a 0700 root-only directory.

The plan's public keys are preview placeholders whose private halves were never kept, so the lab
generates its own pair per selector and publishes the public half in the lab zones instead.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from mailinfra.plan.model import Plan


@dataclass(frozen=True, slots=True)
class LabKey:
    domain: str
    selector: str
    algorithm: str
    public_key: str  # what the DNS record's p= carries (RSA: SPKI DER, Ed25519: raw 32 bytes)
    private_path: Path


def generate_lab_keys(plan: Plan, keys_dir: Path) -> tuple[LabKey, ...]:
    """One fresh key pair per published selector of the plan, written under keys_dir/<domain>/."""
    _private_dir(keys_dir)
    result = []
    for key in plan.dkim_keys:
        if not key.published:
            continue
        directory = keys_dir / key.domain
        _private_dir(directory)
        path = directory / f"{key.selector}.private"
        public, pem = _generate(key.algorithm)
        path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        result.append(LabKey(key.domain, key.selector, key.algorithm, public, path))
    return tuple(result)


def _generate(algorithm: str) -> tuple[str, bytes]:
    if algorithm == "ed25519":
        ed_key = ed25519.Ed25519PrivateKey.generate()
        raw = ed_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        pem = ed_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption())
        return base64.b64encode(raw).decode(), pem
    bits = int(algorithm.split("-")[1]) if "-" in algorithm else 2048
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    spki = rsa_key.public_key().public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
    pem = rsa_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    return base64.b64encode(spki).decode(), pem


def _private_dir(path: Path) -> None:
    # OpenDKIM refuses keys in group/world-accessible places (RequireSafeKeys); root-only it is.
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chown(path, 0, 0)
    path.chmod(0o700)
