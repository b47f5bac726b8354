"""The pack loads from its own folder alone, as `pulumi policy publish` ships it.

publish uploads the pack folder (pulumi/pulumi httpstate `Publish`: archive of the pack root) and the
CLI that runs a published pack installs only its requirements.txt into the pack's venv
(`completePythonInstall`), then the policy host runs `runpy.run_path(<pack dir>)`
(pulumi/policy/__main__.py). So: copy policy/ alone to a temporary folder, run it there in an
isolated interpreter where the project cannot be imported, and check every module it loaded comes
from the standard library, the pack, or a distribution its requirements.txt brings in.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import grpc
import policies
from google.protobuf import empty_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from tests.policy.conftest import POLICY_DIR, UNKNOWN_STRING, to_struct

LOADER = r'''
import importlib.abc, importlib.metadata as md, json, re, runpy, sys
from pathlib import Path

pack = Path(sys.argv[1]).resolve()
project = Path(sys.argv[2]).resolve()

class NotShipped(importlib.abc.MetaPathFinder):
    """The project is not there when a published pack runs: nothing of it may be imported."""
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("mailinfra", "components"):
            raise ModuleNotFoundError(f"No module named {name!r} (not in the policy pack)")
        return None

sys.meta_path.insert(0, NotShipped())
venv = Path(sys.prefix).resolve()  # the interpreter's own site-packages stay (the project's .venv here)
sys.path[:] = [p for p in sys.path if p and (Path(p).resolve().is_relative_to(venv)
                                             or not Path(p).resolve().is_relative_to(project))]

import pulumi_policy
captured = {}
class CapturedPack:  # PolicyPack itself would start the gRPC server and wait for the engine
    def __init__(self, name, policies, enforcement_level=None, **_):
        captured["name"] = name
        captured["policies"] = [[p.name, p.enforcement_level.value] for p in policies]
pulumi_policy.PolicyPack = CapturedPack
runpy.run_path(str(pack), run_name="__main__")

def key(name): return re.sub(r"[-_.]+", "-", name).lower()
wanted, todo = set(), [l.strip() for l in (pack / "requirements.txt").read_text().splitlines()]
while todo:
    line = todo.pop().split("#")[0].strip()
    if not line or "extra ==" in line:
        continue
    name = key(re.split(r"[<>=!~;\[ (]", line, maxsplit=1)[0])
    if name in wanted:
        continue
    wanted.add(name)
    todo += md.requires(name) or []
owners = md.packages_distributions()
foreign = []
for module in list(sys.modules.values()):
    top = module.__name__.split(".")[0]
    origin = getattr(module, "__file__", None) or ""
    if top in sys.stdlib_module_names or top in sys.builtin_module_names or not origin:
        continue
    if Path(origin).resolve().is_relative_to(pack) or top in ("__main__", "policies"):
        continue
    if not {key(d) for d in owners.get(top, [])} & wanted:
        foreign.append(module.__name__)
captured["foreign"] = sorted(foreign)
print(json.dumps(captured))
'''


# The policy host as the CLI starts it (`python -u -m pulumi.policy <engine> <pack dir>`), with the
# project's modules blocked as above; PolicyPack then serves the Analyzer gRPC service on loopback.
SERVE = r'''
import importlib.abc, runpy, sys
class NotShipped(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("mailinfra", "components"):
            raise ModuleNotFoundError(f"No module named {name!r} (not in the policy pack)")
        return None
sys.meta_path.insert(0, NotShipped())
sys.argv = ["pulumi.policy", "127.0.0.1:1", "."]
runpy.run_module("pulumi.policy", run_name="__main__")
'''


def copy_pack(tmp_path: Path, pack: Path) -> Path:
    copy = tmp_path / "published" / "mailinfra-policy"
    shutil.copytree(pack, copy, ignore=shutil.ignore_patterns("__pycache__", "venv"))
    return copy


def load_copy(tmp_path: Path, pack: Path) -> dict[str, object]:
    copy = copy_pack(tmp_path, pack)
    done = subprocess.run([sys.executable, "-I", "-c", LOADER, str(copy), str(POLICY_DIR.parent)],
                          cwd=copy, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_the_pack_folder_alone_loads_with_only_its_requirements(tmp_path: Path) -> None:
    loaded = load_copy(tmp_path, POLICY_DIR)
    assert loaded["name"] == "mailinfra"
    assert loaded["policies"] == [[p.name, p.enforcement_level.value] for p in policies.POLICIES]
    assert loaded["foreign"] == []


def test_requirements_name_what_the_pack_imports() -> None:
    requirements = (POLICY_DIR / "requirements.txt").read_text()
    for distribution in ("pulumi-policy", "pulumi", "cryptography"):
        assert f"\n{distribution}>=" in f"\n{requirements}"


def test_the_copied_pack_serves_the_analyzer_as_the_cli_starts_it(tmp_path: Path) -> None:
    """GIVEN the folder alone, started like the CLI's policy host, WHEN the engine's requests arrive over
    gRPC, THEN it describes its policies and judges a resource (an unknown id beside a public 587)."""
    copy = copy_pack(tmp_path, POLICY_DIR)
    server = subprocess.Popen([sys.executable, "-I", "-u", "-c", SERVE], cwd=copy, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        port = server.stdout.readline().strip()  # PolicyPack prints its port, as the CLI expects
        assert port.isdigit(), server.stderr.read() if server.stderr else ""
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = analyzer_pb2_grpc.AnalyzerStub(channel)
            info = stub.GetAnalyzerInfo(empty_pb2.Empty(), timeout=30)
            assert info.name == "mailinfra"
            assert [p.name for p in info.policies] == [p.name for p in policies.POLICIES]
            rule = {"ipProtocol": "tcp", "fromPort": 587, "toPort": 587, "cidrIpv4": "0.0.0.0/0",
                    "securityGroupId": UNKNOWN_STRING}
            response = stub.Analyze(analyzer_pb2.AnalyzeRequest(
                type="aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", name="inject",
                urn="urn:pulumi:prod::mailinfra::x::inject", properties=to_struct(rule)), timeout=30)
        found = [(d.policyName, d.enforcementLevel) for d in response.diagnostics]
        assert found == [("smtp-ingress", analyzer_pb2.MANDATORY)]
    finally:
        server.kill()  # by its own handle: the server this test started
        server.wait(timeout=30)
