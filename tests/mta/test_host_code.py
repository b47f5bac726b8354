"""The host services' code as the manifest ships it runs on a host's own interpreter (Debian 12's
/usr/bin/python3 with Debian's python3-* packages), from HOST_PYTHON_PATH alone: no checkout, no venv."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
from pathlib import Path

import pytest

from mailinfra.model.schema import Suppression
from mailinfra.mta.host_code import HOST_PYTHON_PATH, render_host_code
from mailinfra.suppression.policy import policy_from_config, policy_from_rendered

HOST_PYTHON = "/usr/bin/python3"  # ExecStart of templates/mailinfra/*.service.j2
# What each unit runs (`python3 -m <module>`), and the modules those import lazily (SQS drain, LMTP).
ENTRY_MODULES = ("mailinfra.bounceproc.service", "mailinfra.suppression_service.service",
                 "mailinfra.bounceproc.lmtp", "mailinfra.bounceproc.ses", "mailinfra.suppression.dynamodb_store",
                 "aiosmtpd.lmtp", "flufl.bounce", "boto3", "prometheus_client")


def install(root: Path) -> Path:
    for file in render_host_code():
        target = root / file.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(file.content)
    return root / HOST_PYTHON_PATH.lstrip("/")


def host_python(tree: Path, code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # -P: the working directory is not put on sys.path; -s: no user site; the environment has nothing but
    # PATH and the unit's PYTHONPATH, so an import can only come from the tree or Debian's dist-packages.
    return subprocess.run([HOST_PYTHON, "-P", "-s", "-c", code], cwd=cwd, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tree)}, timeout=60, check=False)


def test_the_shipped_tree_imports_on_the_host_interpreter_without_the_checkout(tmp_path: Path) -> None:
    """Every shipped module and each service's lazy imports load from the tree; nothing of pulumi or
    pydantic (Debian 12's pydantic is 1.10) is imported."""
    if not os.access(HOST_PYTHON, os.X_OK):
        pytest.skip(f"{HOST_PYTHON} missing")
    tree = install(tmp_path / "root")
    modules = sorted({f.path.removeprefix(HOST_PYTHON_PATH.lstrip("/") + "/").removesuffix(".py")
                     .removesuffix("/__init__").replace("/", ".") for f in render_host_code()
                      if f.path.endswith(".py") and not f.path.endswith("__main__.py")})
    code = (f"import importlib, json, sys\nfor m in {[*modules, *ENTRY_MODULES]!r}: importlib.import_module(m)\n"
            "print(json.dumps({k: getattr(v, '__file__', None) for k, v in sys.modules.items()}))")
    done = host_python(tree, code, tmp_path)
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout)
    assert all(str(loaded[m]).startswith(f"{tree}/") for m in modules if m.startswith("mailinfra")), loaded
    assert str(loaded["email_validator"]).startswith(f"{tree}/")  # the pinned copy, not Debian's 1.3
    assert not {"pulumi", "pydantic", "mailinfra.model.schema", "mailinfra.plan"} & loaded.keys()


def test_the_processor_starts_from_the_shipped_tree(tmp_path: Path) -> None:
    """`python3 -m mailinfra.bounceproc` (the unit's ExecStart) runs its argument parser from the tree."""
    if not os.access(HOST_PYTHON, os.X_OK):
        pytest.skip(f"{HOST_PYTHON} missing")
    tree = install(tmp_path / "root")
    for module in ("mailinfra.bounceproc", "mailinfra.suppression_service"):
        done = host_python(tree, f"import runpy, sys; sys.argv = ['x', '--help']; runpy.run_module({module!r}, "
                           "run_name='__main__')", tmp_path)
        assert done.returncode == 0 and "--config" in done.stdout, done.stderr


@pytest.mark.parametrize("config", [Suppression(), Suppression(soft_bounce_threshold=5, soft_expiry_days=9,
                                                               complaint_streams=["transactional"],
                                                               token_max_age_days=30)])
def test_the_rendered_policy_reads_as_the_schema_does(config: Suppression) -> None:
    """The host reads `policy` (the plan's model_dump) without the schema, to the same Policy."""
    assert policy_from_rendered(config.model_dump(mode="json")) == policy_from_config(config)


def test_a_mistyped_rendered_policy_names_the_key() -> None:
    dumped = Suppression().model_dump(mode="json") | {"soft_expiry_days": "30"}
    with pytest.raises(ValueError, match=r"^soft_expiry_days: received '30', expected"):
        policy_from_rendered(dumped)
    assert policy_from_rendered(Suppression().model_dump(mode="json")).soft_window == dt.timedelta(days=7)


def test_a_rendered_policy_without_keys_is_the_schema_default() -> None:
    assert policy_from_rendered({}) == policy_from_config(Suppression())
