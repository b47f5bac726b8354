"""Run the real Pulumi program under the mock runtime, one subprocess per run.

The SDK's runtime state (root stack, config, monitor) is process-global, so every program run gets
a fresh interpreter: `python -m mailinfra.deployment.mock_runtime`.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from mailinfra.model.load import STACKS_DIR, load_stack
from mailinfra.plan import Plan, build_plan

ROOT = Path(__file__).resolve().parents[2]
STACKS = [s for s in ("dev", "staging", "prod") if (STACKS_DIR / f"Pulumi.{s}.yaml").is_file()]


def run_mock(stack: str, tmp: Path, config: dict[str, str] | None = None, secret_keys: list[str] | None = None,
             *, up: bool = False, as_of: str | None = None) -> dict[str, Any]:
    """One program run; returns the JSON of `python -m mailinfra.deployment.mock_runtime` (or {"error": ...}).
    `as_of`: the date the program takes for today (MAILINFRA_AS_OF)."""
    command = [sys.executable, "-m", "mailinfra.deployment.mock_runtime", stack, "--fingerprint-secrets"]
    if up and config is not None and "mailinfra:verp_secret" not in config:
        # `up` requires the stack's VERP secret (components/suppression.py): the test's own, made now.
        config = {**config, "mailinfra:verp_secret": secrets.token_hex(32)}
        secret_keys = [*(secret_keys or []), "mailinfra:verp_secret"]
    if config is not None:
        path = tmp / f"config-{stack}-{len(list(tmp.iterdir()))}.json"
        path.write_text(json.dumps({"config": config, "secret_keys": secret_keys or []}))
        command += ["--config-json", str(path)]
    if up:
        command.append("--up")
    env = {**os.environ, "MAILINFRA_AS_OF": as_of} if as_of else None
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=180, check=False, env=env)
    lines = done.stdout.strip().splitlines()
    assert lines, f"no output; stderr:\n{done.stderr[-3000:]}"
    return json.loads(lines[-1])


def preview_config(stack: str) -> tuple[dict[str, str], list[str]]:
    from mailinfra.deployment.mock_runtime import preview_config as build

    return build(stack)


@pytest.fixture(scope="session")
def mock_runs(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], dict[str, Any]]:
    """stack -> its preview run (cached for the session)."""
    cache: dict[str, dict[str, Any]] = {}
    tmp = tmp_path_factory.mktemp("mock-runs")

    def get(stack: str) -> dict[str, Any]:
        if stack not in cache:
            cache[stack] = run_mock(stack, tmp)
            assert "error" not in cache[stack], cache[stack].get("error")
        return cache[stack]

    return get


@pytest.fixture(scope="session")
def plans() -> Callable[[str], Plan]:
    cache: dict[str, Plan] = {}

    def get(stack: str) -> Plan:
        if stack not in cache:
            cache[stack] = build_plan(load_stack(stack))
        return cache[stack]

    return get


def generate_keys(plan: Plan) -> dict[tuple[str, str], tuple[str, str]]:
    """(domain, selector) -> (private PEM, base64 public as the stack file holds it), fresh keys."""
    keys = {}
    for key in plan.dkim_keys:
        if key.algorithm == "ed25519":
            ed = ed25519.Ed25519PrivateKey.generate()
            public = ed.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            pem = ed.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption())
        else:
            private = rsa.generate_private_key(public_exponent=65537, key_size=int(key.algorithm.split("-")[1]))
            public = private.public_key().public_bytes(serialization.Encoding.DER,
                                                       serialization.PublicFormat.SubjectPublicKeyInfo)
            pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
        keys[(key.domain, key.selector)] = (pem.decode(), base64.b64encode(public).decode())
    return keys


def resources_of(run: dict[str, Any], type_token: str) -> list[dict[str, Any]]:
    return [r for r in run["resources"] if r["type"] == type_token]


def user_data_of(run: dict[str, Any], host: str) -> str:
    """The host's cloud-config as EC2 receives it (gzip-decoded when the program compressed it)."""
    import gzip

    inputs = next(r for r in resources_of(run, "aws:ec2/instance:Instance")
                  if r["name"] == f"host-{host}-instance")["inputs"]
    if inputs.get("userDataBase64"):
        return gzip.decompress(base64.b64decode(inputs["userDataBase64"])).decode()
    return str(inputs["userData"])


def manifest_of(run: dict[str, Any], host: str) -> dict[str, Any]:
    """The host's config manifest (components/mta_host.py:render_manifest), decoded."""
    content = next(o for o in resources_of(run, "aws:s3/bucketObjectv2:BucketObjectv2")
                   if o["name"] == f"host-{host}-bundle")["inputs"]["content"]
    return dict(json.loads(content))


def manifest_files(run: dict[str, Any], host: str) -> dict[str, dict[str, Any]]:
    """Path -> {path, mode, content, fills, postmap} of the host's manifest files."""
    return {f["path"]: f for f in manifest_of(run, host)["files"]}
