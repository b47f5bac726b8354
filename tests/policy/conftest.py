"""Run the policy pack the way the Pulumi CLI does, without the CLI.

`analyze` and `analyze_stack` call pulumi-policy's own gRPC servicer (`_PolicyAnalyzerServicer`, the
object `PolicyPack` serves) with the protobuf requests the engine sends: properties as a Struct in
which every unknown is the engine's sentinel string (pulumi/pulumi `plugin/rpc.go`,
`marshalUnknownProperty`). So the props reach our rules as pulumi-policy hands them over, wrapped in
its unknown-checking proxy, not as the plain dicts a hand-made ResourceValidationArgs would carry.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import struct_pb2
from pulumi.runtime.proto import analyzer_pb2

ROOT = Path(__file__).resolve().parents[2]
POLICY_DIR = ROOT / "policy"
if str(POLICY_DIR) not in sys.path:
    sys.path.insert(0, str(POLICY_DIR))  # as the policy host does: runpy.run_path(<pack dir>)

import policies  # noqa: E402
from mailinfra_policy.values import UNKNOWN_SENTINELS  # noqa: E402
from pulumi_policy import EnforcementLevel  # noqa: E402
from pulumi_policy.policy import _PolicyAnalyzerServicer  # noqa: E402

UNKNOWN_STRING = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # what SDKs send for an unknown of any type
assert UNKNOWN_STRING in UNKNOWN_SENTINELS
STACKS = ("dev", "staging", "prod")
CANT_RUN = "can't run policy"
LEVELS = {analyzer_pb2.ADVISORY: "advisory", analyzer_pb2.MANDATORY: "mandatory"}


@dataclass(frozen=True)
class Finding:
    policy: str
    level: str
    message: str
    urn: str


def servicer() -> Any:
    return _PolicyAnalyzerServicer("mailinfra", "1.0.0", policies.POLICIES, EnforcementLevel.MANDATORY)


def to_struct(props: Mapping[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(json.loads(json.dumps(props)))  # numbers become floats, as on the wire
    return struct


def _findings(response: Any) -> list[Finding]:
    return [Finding(d.policyName, LEVELS.get(d.enforcementLevel, str(d.enforcementLevel)),
                    d.message, d.urn) for d in response.diagnostics]


def analyze(resource_type: str, props: Mapping[str, Any], *, name: str = "r", protect: bool = False,
            urn: str | None = None) -> list[Finding]:
    """What the pack reports on one resource (AnalyzeRequest, as the engine sends it)."""
    request = analyzer_pb2.AnalyzeRequest(
        type=resource_type, name=name, urn=urn or f"urn:pulumi:dev::mailinfra::{resource_type}::{name}",
        properties=to_struct(props), options=analyzer_pb2.AnalyzerResourceOptions(protect=protect))
    return _findings(servicer().Analyze(request, None))


def analyze_stack(resources: Iterable[Mapping[str, Any]]) -> list[Finding]:
    """What the pack's stack policies report on a whole run (AnalyzeStackRequest).

    Each resource as the mock run lists it: type, name, urn, protect, inputs, depends_on (names).
    """
    resources = list(resources)
    urns = {r["name"]: r["urn"] for r in resources}
    request = analyzer_pb2.AnalyzeStackRequest(resources=[
        analyzer_pb2.AnalyzerResource(
            type=r["type"], name=r["name"], urn=r["urn"], properties=to_struct(r["inputs"]),
            options=analyzer_pb2.AnalyzerResourceOptions(protect=r.get("protect", False)),
            dependencies=[urns[n] for n in r.get("depends_on", []) if n in urns])
        for r in resources])
    return _findings(servicer().AnalyzeStack(request, None))


def analyze_all(resources: Iterable[Mapping[str, Any]]) -> list[Finding]:
    """Every policy on every resource of a run: per-resource policies, then the stack policies."""
    resources = [r for r in resources if not r.get("component")]
    found = [f for r in resources for f in analyze(r["type"], r["inputs"], name=r["name"],
                                                   protect=r.get("protect", False), urn=r["urn"])]
    return found + analyze_stack(resources)


def run_resources(stack: str) -> list[dict[str, Any]]:
    """The resources the real program registers for a stack under the SDK's mocks (one process a run)."""
    done = subprocess.run([sys.executable, "-m", "mailinfra.deployment.mock_runtime", stack], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=False)
    lines = done.stdout.strip().splitlines()
    assert lines, done.stderr[-3000:]
    result = json.loads(lines[-1])
    assert "error" not in result, result["error"]
    return [r for r in result["resources"] if not r["component"]]


@pytest.fixture(scope="session")
def stack_resources() -> Callable[[str], list[dict[str, Any]]]:
    cache: dict[str, list[dict[str, Any]]] = {}

    def get(stack: str) -> list[dict[str, Any]]:
        if stack not in cache:
            cache[stack] = run_resources(stack)
        return copy.deepcopy(cache[stack])

    return get
