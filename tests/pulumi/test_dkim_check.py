"""A DKIM private key that is not the published one stops `pulumi up` before any resource is registered:
Pulumi does not roll back, so a refusal raised later (inside an `.apply`) left EIPs, records and hosts
half-created."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.pulumi.conftest import ROOT, generate_keys
from tests.pulumi.test_program import _with_keys

# One program run (a fresh interpreter: the runtime is process-global) that reports what reached the
# engine even when the program fails: every RegisterResource the mock monitor saw.
_COUNTING_RUN = """
import json, sys
from mailinfra.deployment import mock_runtime as p
seen = []
add = p._Recorder.add
def counting(self, request, urn, inputs, *rest):
    seen.append(request.type + " " + request.name)
    add(self, request, urn, inputs, *rest)
p._Recorder.add = counting
given = json.load(open(sys.argv[1]))
try:
    p.run_program(sys.argv[2], given["config"], given["secret_keys"], preview=False)
    error = None
except p.ProgramError as exc:
    error = str(exc)
print(json.dumps({"error": error, "registered": seen}))
"""


def _up_counting(stack: str, config: dict[str, str], secret_keys: list[str], tmp: Path) -> dict[str, Any]:
    path = tmp / "config.json"
    # `up` requires the stack's VERP secret (components/suppression.py): the test's own, made now.
    config = {**config, "mailinfra:verp_secret": secrets.token_hex(32)}
    secret_keys = [*secret_keys, "mailinfra:verp_secret"]
    path.write_text(json.dumps({"config": config, "secret_keys": secret_keys}))
    done = subprocess.run([sys.executable, "-c", _COUNTING_RUN, str(path), stack], cwd=ROOT,
                          capture_output=True, text=True, timeout=180, check=False)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_mismatched_private_key_registers_no_resource(plans, tmp_path):
    plan = plans("dev")
    config, secret_keys = _with_keys("dev", plan, generate_keys(plan), swap=True)
    run = _up_counting("dev", config, secret_keys, tmp_path)
    assert run["registered"] == []
    assert run["error"].startswith("stacks/Pulumi.dev.yaml: mailinfra:dkim_example_com_")
    assert "received the private half of another key" in run["error"] and "\n" not in run["error"]
    assert "PRIVATE KEY" not in run["error"]


def test_matching_keys_deploy(plans, tmp_path):
    """The same run with every key matching registers the stack (the check refuses only a mismatch)."""
    plan = plans("dev")
    config, secret_keys = _with_keys("dev", plan, generate_keys(plan))
    run = _up_counting("dev", config, secret_keys, tmp_path)
    assert run["error"] is None and len(run["registered"]) > 50
