"""Run the Pulumi program as `pulumi up` would, under the mock runtime, and keep its resources.

An edge module: the program runs in a subprocess (the SDK's runtime state is global, one program per
process), given a Pulumi config built from the stack file. The lab passes its own secrets (DKIM keys,
route passwords it generated), so the resources carry them in clear (`--reveal-secrets`); nothing from
a deployment run is written to review artifacts.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from secrets import token_hex
from typing import Any

from mailinfra.errors import MailinfraError

TIMEOUT_SECONDS = 300


class DeploymentError(MailinfraError):
    """The program refused the stack or failed under the mock runtime."""


@dataclass(frozen=True)
class Resource:
    """One resource as the program registers it (inputs in the provider's wire names)."""

    type: str  # Pulumi type token, e.g. aws:route53/record:Record
    name: str
    urn: str
    parent: str | None
    inputs: Mapping[str, Any]
    protect: bool = False
    retain_on_delete: bool = False
    import_id: str | None = None
    depends_on: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    component: bool = False
    # What the (mock) provider returned, wire names: e.g. an Eip's publicIp. Only an up run has them.
    outputs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Deployment:
    """Every resource one program run declares (ordered by URN) and the stack outputs."""

    stack: str
    resources: tuple[Resource, ...]
    outputs: Mapping[str, Any] = field(default_factory=dict)

    def of_type(self, *tokens: str) -> list[Resource]:
        return [r for r in self.resources if r.type in tokens]

    def named(self, name: str) -> Resource:
        for resource in self.resources:
            if resource.name == name:
                return resource
        raise KeyError(name)

    def children(self, parent: str) -> list[Resource]:
        return [r for r in self.resources if r.parent == parent]


def resources_from_json(entries: Sequence[Mapping[str, Any]]) -> tuple[Resource, ...]:
    """Resources from `mailinfra.deployment.mock_runtime` JSON (the same entries plan.json lists)."""
    return tuple(Resource(
        type=e["type"], name=e["name"], urn=e["urn"], parent=e.get("parent"), inputs=e.get("inputs") or {},
        protect=bool(e.get("protect")), retain_on_delete=bool(e.get("retain_on_delete")),
        import_id=e.get("import_id"), depends_on=tuple(e.get("depends_on") or ()),
        aliases=tuple(e.get("aliases") or ()), component=bool(e.get("component")),
        outputs=e.get("outputs") or {}) for e in entries)


def run_deployment(
    stack: str,
    config: Mapping[str, str],
    secret_keys: Sequence[str] = (),
    *,
    as_of: dt.date | None = None,
) -> Deployment:
    """The resources `pulumi up` would create for `stack` with this Pulumi config (a mock run, not a dry run).

    `as_of`: the date the program plans as of (MAILINFRA_AS_OF), e.g. the lab's warmup date.
    """
    env = dict(os.environ)
    if as_of is not None:
        env["MAILINFRA_AS_OF"] = as_of.isoformat()
    with tempfile.TemporaryDirectory(prefix="mailinfra-deploy-") as directory:
        # The config holds the caller's secrets: a 0700 directory of its own, removed on return.
        given = Path(directory) / "config.json"
        given.write_text(json.dumps({"config": dict(config), "secret_keys": list(secret_keys)}), encoding="utf-8")
        given.chmod(0o600)
        command = [sys.executable, "-m", "mailinfra.deployment.mock_runtime", stack, "--config-json", str(given),
                   "--up", "--reveal-secrets"]
        try:
            done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=TIMEOUT_SECONDS,
                                  check=False)
        except subprocess.TimeoutExpired:
            raise DeploymentError(f"stack {stack}: the program did not finish in {TIMEOUT_SECONDS} s") from None
    try:
        result = json.loads(done.stdout.strip().splitlines()[-1]) if done.stdout.strip() else {}
    except json.JSONDecodeError:
        result = {}
    if "resources" not in result:
        reason = result.get("error") or " ".join(done.stderr.strip().splitlines()[-3:]) or f"exit {done.returncode}"
        raise DeploymentError(f"stack {stack}: the program failed under the mock runtime: {reason}")
    return Deployment(stack, resources_from_json(result["resources"]), result.get("outputs") or {})


def deployment_config(
    stack: str,
    *,
    dkim_keys: Sequence[tuple[str, str, str, str]] = (),
    secrets: Mapping[str, str] | None = None,
    stacks_dir: Path | None = None,
) -> tuple[dict[str, str], list[str]]:
    """The stack file's Pulumi config with the caller's own keys and secrets in place.

    `dkim_keys`: (domain, selector, public key as the record carries it, private PEM): the public half
    goes into `domains.<d>.dkim.selectors.<s>.public_key`, the private half into its config secret, as
    `mailinfra dkim keygen` and `pulumi config set --secret` would put them.
    `secrets`: config key (without namespace) -> value, each set as a secret (route passwords).
    """
    from mailinfra.deployment.mock_runtime import preview_config
    from mailinfra.dns.dkim import dkim_secret_key
    from mailinfra.model.load import NAMESPACE

    config, secret_keys = preview_config(stack, stacks_dir)
    domains = json.loads(config[f"{NAMESPACE}:domains"])
    for domain, selector, public, private in dkim_keys:
        domains[domain]["dkim"]["selectors"][selector]["public_key"] = public
        key = f"{NAMESPACE}:{dkim_secret_key(domain, selector)}"
        config[key] = private
        secret_keys.append(key)
    config[f"{NAMESPACE}:domains"] = json.dumps(domains)
    # The stack secret of the VERP tokens and the suppression feed (components/suppression.py requires it at
    # `up`): one of the caller's own unless given, made now and never kept, like the lab's DKIM keys.
    chosen = {"verp_secret": token_hex(32), **(secrets or {})}
    for name, value in chosen.items():
        key = f"{NAMESPACE}:{name}"
        config[key] = value
        secret_keys.append(key)
    return config, sorted(set(secret_keys))
