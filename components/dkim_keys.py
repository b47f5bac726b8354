"""DkimKeys: custody of DKIM private keys and their delivery to the hosts that sign with them.

Custody (designed with `mailinfra dkim keygen`):
- the public half is in the stack file (`domains.<d>.dkim.selectors.<s>.public_key`), so a re-plan never
  changes a published key and the plan's DKIM TXT is exactly that key;
- the private half is a Pulumi secret, `mailinfra:dkim_<domain>_<selector>` (dots and hyphens as
  underscores), encrypted in the stack file by the stack's secrets provider, never in git in clear;
- each host that signs for the domain gets its own SSM SecureString copy under
  `/mailinfra/<stack>/<host>/dkim/<domain>/<selector>`, which only that host's role may read.

Rotation is a new selector with a new key (`pending`: published, copied to the hosts; `active`: signing;
`retiring`: still published, removed from the hosts; `retired`: withdrawn). A key is never reused.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.tags import stack_tags
from mailinfra.dns.dkim import dkim_secret_key
from mailinfra.errors import MailinfraError
from mailinfra.plan.model import DkimKeyPlan, HostPlan, Plan

# Hosts need the keys they sign with now (active) and next (pending, so the switch is a config change).
DELIVERED_STATES = ("pending", "active")


def dkim_parameter_name(stack: str, host: str, key: DkimKeyPlan) -> str:
    """SSM parameter names are unique per account and region: the Pulumi stack name (unique per project)
    keeps two stacks in one account apart; `environment` is only a label (docs/configuration.md)."""
    return f"/mailinfra/{stack}/{host}/dkim/{key.domain}/{key.selector}"


def delivered_keys(plan: Plan, host: HostPlan) -> list[DkimKeyPlan]:
    """The keys a host receives: those of the org domains of the streams it carries."""
    domains = {plan.stream(s).org_domain for s in host.streams}
    return [k for k in plan.dkim_keys if k.domain in domains and k.state in DELIVERED_STATES]


def public_half(private_pem: str, algorithm: str) -> str:
    """The base64 public key as the DKIM record carries it: SPKI DER for RSA, raw 32 bytes for Ed25519."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    public = key.public_key()
    if algorithm == "ed25519":
        if not isinstance(public, ed25519.Ed25519PublicKey):
            raise ValueError("the private key is not an Ed25519 key")
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    else:
        raw = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(raw).decode()


def check_private_keys(plan: Plan, where: str) -> None:
    """Prove every delivered key's secret is the private half of its published key, before the program
    registers any resource: a failure inside `.apply` would stop `pulumi up` after other resources had
    started (Pulumi does not roll back). The config secret's plain value is readable synchronously
    (`pulumi.Config.get`, the decrypted value); it is never logged, only compared.

    Raises MailinfraError with one line naming `where` (the stack file) and the secret's key."""
    config = pulumi.Config("mailinfra")
    dry_run = pulumi.runtime.is_dry_run()
    for key in plan.dkim_keys:
        if key.state not in DELIVERED_STATES:
            continue
        secret_name = f"mailinfra:{dkim_secret_key(key.domain, key.selector)}"
        if key.placeholder:
            if not dry_run:
                # Publishing the preview placeholder would make every signature fail at receivers.
                raise MailinfraError(
                    f"{where}: mailinfra:domains.{key.domain}.dkim.selectors.{key.selector}.public_key: received "
                    "nothing, expected the public key from `mailinfra dkim keygen` before `pulumi up`")
            continue  # preview only: nothing is published for real
        pem = config.get(dkim_secret_key(key.domain, key.selector))
        if pem is None:
            raise MailinfraError(f"{where}: {secret_name}: received nothing, expected the private key "
                                 f"written by `mailinfra dkim keygen` (pulumi config set --secret {secret_name})")
        try:
            derived = public_half(pem, key.algorithm)
        except (ValueError, TypeError):
            if dry_run:
                continue  # `pulumi preview` without the secret's value (e.g. a preview placeholder)
            raise MailinfraError(f"{where}: {secret_name}: received a value that is not a PEM private key, "
                                 "expected the file written by `mailinfra dkim keygen`") from None
        if derived != key.public_key:
            # A host signing with a key whose public half is not published fails DKIM everywhere.
            raise MailinfraError(f"{where}: {secret_name}: received the private half of another key, expected "
                                 f"the private half of domains.{key.domain}.dkim.selectors.{key.selector}.public_key")


@dataclass
class DkimKeysArgs:
    plan: Plan
    hosts: Sequence[HostPlan]


class DkimKeys(pulumi.ComponentResource):
    """Reads each delivered key's secret once and copies it per host (checked by `check_private_keys`,
    which the program runs before registering anything)."""

    def __init__(self, name: str, args: DkimKeysArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mailinfra:dkim_keys:DkimKeys", name, None, opts)
        config = pulumi.Config("mailinfra")
        namespace = args.plan.stack
        self.private_keys: dict[tuple[str, str], pulumi.Output[str]] = {}
        for key in args.plan.dkim_keys:
            if key.state in DELIVERED_STATES:
                self.private_keys[(key.domain, key.selector)] = config.require_secret(
                    dkim_secret_key(key.domain, key.selector))
        self.parameters: dict[str, list[aws.ssm.Parameter]] = {}
        for host in args.hosts:
            self.parameters[host.name] = [
                aws.ssm.Parameter(
                    f"{name}-{host.name}-{key.domain}-{key.selector}",
                    name=dkim_parameter_name(namespace, host.name, key),
                    type="SecureString",
                    value=self.private_keys[(key.domain, key.selector)],
                    description=f"DKIM private key {key.selector} of {key.domain} for host {host.name}",
                    tags=stack_tags(args.plan.environment, host=host.name, purpose="dkim"),
                    opts=pulumi.ResourceOptions(parent=self),
                )
                for key in delivered_keys(args.plan, host)
            ]
        self.register_outputs({"parameter_names": {h: [p.name for p in ps] for h, ps in self.parameters.items()}})
