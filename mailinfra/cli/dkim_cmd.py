"""`mailinfra dkim keygen`: make a DKIM key pair without the private half ever touching git."""

from __future__ import annotations

import argparse
import base64
import os
from pathlib import Path
from typing import Any

from mailinfra.errors import UsageError


def add_parser(subparsers: Any) -> None:
    dkim = subparsers.add_parser("dkim", help="DKIM key custody")
    actions = dkim.add_subparsers(dest="dkim_command", metavar="ACTION", required=True)
    keygen = actions.add_parser("keygen", help="generate a key pair for a new selector")
    keygen.add_argument("--domain", required=True, help="organizational domain (a key under mailinfra:domains)")
    keygen.add_argument("--selector", required=True, help="the new selector, e.g. s2027a")
    keygen.add_argument("--algorithm", choices=("rsa-2048", "rsa-3072", "rsa-4096", "ed25519"), default="rsa-2048")
    keygen.add_argument("--out-dir", type=Path, default=Path.home() / ".mailinfra" / "dkim", metavar="DIR",
                        help="where the private key is written, 0600 in a 0700 directory (default ~/.mailinfra/dkim)")
    keygen.set_defaults(handler=run_keygen)


def run_keygen(args: argparse.Namespace) -> int:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    from mailinfra.model.schema import _check_domain, _check_selector

    try:
        domain = _check_domain(args.domain)
        selector = _check_selector(args.selector)
    except ValueError as exc:
        raise UsageError(f"--domain/--selector: received {args.domain!r}/{args.selector!r}, expected {exc}") from None
    if args.algorithm == "ed25519":
        ed_key = ed25519.Ed25519PrivateKey.generate()
        public = base64.b64encode(ed_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode()
        pem = ed_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption())
    else:
        rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=int(args.algorithm.split("-")[1]))
        public = base64.b64encode(rsa_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()
        pem = rsa_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    directory = args.out_dir / domain
    path = directory / f"{selector}.pem"
    if path.exists():
        # A published key is reputation: never overwrite it silently (rotate to a new selector instead).
        raise UsageError(f"--selector: received {selector!r}, expected a new selector: {path} already exists")
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        args.out_dir.chmod(0o700)
        directory.chmod(0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
    except OSError as exc:
        raise UsageError(f"--out-dir: cannot write {path} ({exc.strerror or exc})") from None
    from mailinfra.dns.dkim import dkim_secret_key

    secret_key = dkim_secret_key(domain, selector)
    print(f"private key: {path} (0600; never commit it)")
    print("store it as a Pulumi secret:")
    print(f"  pulumi config set --secret mailinfra:{secret_key} < {path}")
    print("add the selector to the stack file under config: (merge with the domain's existing selectors); publish "
          "it as pending, switch to active once it resolves:")
    print(selector_yaml(domain, selector, args.algorithm, public), end="")
    return 0


def selector_yaml(domain: str, selector: str, algorithm: str, public_key: str) -> str:
    """The stack-file fragment for a new selector, indented as under `config:` so it pastes as is."""
    import yaml

    fragment = {"mailinfra:domains": {domain: {"dkim": {"selectors": {selector: {
        "state": "pending", "algorithm": algorithm, "public_key": public_key}}}}}}
    text: str = yaml.safe_dump(fragment, sort_keys=False, width=10_000, indent=2)
    return "".join(f"  {line}\n" for line in text.splitlines())
