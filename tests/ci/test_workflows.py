"""The GitHub workflows parse as YAML and have the shape GitHub accepts (a minimal schema of it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))

STEP = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "uses": {"type": "string"}, "run": {"type": "string"},
                   "with": {"type": "object"}, "env": {"type": "object"}, "if": {"type": "string"},
                   "id": {"type": "string"}, "shell": {"type": "string"}},
    "additionalProperties": False,
    "oneOf": [{"required": ["uses"]}, {"required": ["run"]}],
}
JOB = {
    "type": "object",
    "required": ["runs-on", "steps"],
    "properties": {"runs-on": {"type": "string"}, "steps": {"type": "array", "minItems": 1, "items": STEP},
                   "needs": {"type": ["string", "array"]}, "if": {"type": "string"}, "env": {"type": "object"},
                   "strategy": {"type": "object"}, "timeout-minutes": {"type": "integer"},
                   "permissions": {"type": "object"}},
    "additionalProperties": False,
}
WORKFLOW = {
    "type": "object",
    "required": ["name", "on", "jobs"],
    "properties": {"name": {"type": "string"}, "on": {"type": "object"}, "permissions": {"type": "object"},
                   "env": {"type": "object"}, "concurrency": {"type": "object"},
                   "jobs": {"type": "object", "minProperties": 1, "additionalProperties": JOB}},
    "additionalProperties": False,
}


def load(path: Path) -> dict[str, Any]:
    # PyYAML reads the key `on` as the boolean True (YAML 1.1); GitHub reads it as the string "on".
    data = yaml.safe_load(path.read_text())
    if True in data:
        data["on"] = data.pop(True)
    return dict(data)


def test_both_workflows_exist() -> None:
    assert {p.name for p in WORKFLOWS} >= {"pr.yml", "nightly-drift.yml"}


@pytest.mark.parametrize("path", WORKFLOWS, ids=[p.name for p in WORKFLOWS])
def test_workflow_matches_schema(path: Path) -> None:
    jsonschema.validate(load(path), WORKFLOW)


def test_schema_rejects_a_misspelled_key() -> None:
    broken = load(ROOT / ".github" / "workflows" / "pr.yml")
    broken["jobs"]["test"]["runs_on"] = broken["jobs"]["test"].pop("runs-on")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, WORKFLOW)


def test_nightly_drift_fails_on_drift_and_keeps_junit() -> None:
    flow = load(ROOT / ".github" / "workflows" / "nightly-drift.yml")
    steps = flow["jobs"]["drift"]["steps"]
    drift = next(s for s in steps if "--format junit" in s.get("run", ""))
    assert "|| true" not in drift["run"]  # the exit code of drift must fail the job
    assert "schedule" in flow["on"]
    assert any(s.get("uses", "").startswith("actions/upload-artifact") and s.get("if") == "always()" for s in steps)


def test_pr_review_fails_on_destructive_and_fetches_history() -> None:
    flow = load(ROOT / ".github" / "workflows" / "pr.yml")
    review = flow["jobs"]["review"]["steps"]
    assert any("--fail-on destructive" in s.get("run", "") for s in review)
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
