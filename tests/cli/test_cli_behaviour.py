"""The command line as a new user tries it (issue 15): where a stack name is read from, pipes, dates, --version."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from mailinfra.model.load import STACKS_DIR, load_stack
from mailinfra.plan.build import build_plan
from mailinfra.plan.dates import first_day

REPO = Path(__file__).resolve().parents[2]


def run_cli(*argv: str, cwd: Path = REPO) -> tuple[int, str, str]:
    # PYTHONPATH: this checkout's code, wherever the interpreter's editable install points.
    proc = subprocess.run([sys.executable, "-m", "mailinfra.cli.main", *argv], capture_output=True, text=True,
                          cwd=cwd, check=False, timeout=120, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    return proc.returncode, proc.stdout, proc.stderr


def make_project(root: Path, environment: str) -> Path:
    """A Pulumi project of the user's own: Pulumi.yaml with stackConfigDir, and a dev stack of theirs."""
    (root / "stacks").mkdir(parents=True)
    (root / "Pulumi.yaml").write_text((REPO / "Pulumi.yaml").read_text())
    text = (STACKS_DIR / "Pulumi.dev.yaml").read_text()
    data = yaml.safe_load(text)
    old = data["config"]["mailinfra:environment"]
    (root / "stacks" / "Pulumi.dev.yaml").write_text(
        text.replace(f"mailinfra:environment: {old}", f"mailinfra:environment: {environment}"))
    return root


def test_stack_name_is_read_from_the_project_of_the_working_directory(tmp_path: Path) -> None:
    """As `pulumi` does (nearest Pulumi.yaml upwards, its stackConfigDir): a second checkout's `dev` is its own.
    Before: always the installed checkout's stacks/ (a worktree's `validate dev` read another tree's file)."""
    project = make_project(tmp_path / "other-checkout", "mine")
    (project / "sub" / "dir").mkdir(parents=True)
    code, out, err = run_cli("preview", "dev", "--no-resources", "--format", "json", "--out", str(tmp_path / "o"),
                             cwd=project / "sub" / "dir")
    assert (code, err) == (0, "")
    assert json.loads(out)["environment"] == "mine"


def test_stack_name_outside_any_project_is_a_usage_error(tmp_path: Path) -> None:
    code, out, err = run_cli("validate", "dev", cwd=tmp_path)
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and f"no Pulumi.yaml in {tmp_path.resolve()}" in err


def test_preview_accepts_a_stack_file_outside_stacks(tmp_path: Path) -> None:
    """validate, audit and render took any stack file; preview ran the program for stacks/ only (before: exit 2)."""
    stack = tmp_path / "elsewhere.yaml"
    shutil.copy(STACKS_DIR / "Pulumi.dev.yaml", stack)
    code, _out, err = run_cli("preview", str(stack), "--out", str(tmp_path / "out"))
    assert code == 0, err
    plan = json.loads((tmp_path / "out" / "plan.json").read_text())
    assert plan["resources"], "the Pulumi program ran for the file"


def test_a_closed_pipe_ends_quietly_like_a_unix_filter() -> None:
    """`mailinfra preview dev | head -1`: before, `internal error BrokenPipeError` and exit 70."""
    proc = subprocess.Popen([sys.executable, "-m", "mailinfra.cli.main", "preview", "dev", "--no-resources",
                             "--format", "json", "--out", "/tmp/mailinfra-pipe-test"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO,
                            env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before the first write
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141  # 128 + SIGPIPE, what `yes | head -1` leaves for `yes`
    assert err == ""
    shutil.rmtree("/tmp/mailinfra-pipe-test", ignore_errors=True)


def test_as_of_speaks_one_vocabulary_everywhere(tmp_path: Path) -> None:
    """`--as-of warmed` was refused by preview while `lab up` accepted it."""
    expected = first_day(load_stack("dev", STACKS_DIR), "warmed")
    code, out, err = run_cli("preview", "dev", "--as-of", "warmed", "--no-resources", "--out", str(tmp_path))
    assert code == 0, err
    assert f"as of {expected}" in out.splitlines()[0]
    for command in (["preview", "dev"], ["render", "dev", "--host", "mta1", "--out", str(tmp_path / "r")],
                    ["warmup", "dev"]):
        code, _, err = run_cli(*command, "--as-of", "someday")
        assert code == 2 and "expected a date YYYY-MM-DD, `today` or one of all-sending, warmed" in err, command


def test_named_day_is_the_first_day_it_holds() -> None:
    stack = load_stack("dev", STACKS_DIR)
    day = first_day(stack, "warmed", start=dt.date(2026, 11, 1))
    assert all(limit.status == "warmed" for limit in build_plan(stack, day).warmup)
    assert not all(limit.status == "warmed" for limit in build_plan(stack, day - dt.timedelta(days=1)).warmup)


def test_version_is_the_installed_distribution() -> None:
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    code, out, _ = run_cli("--version")
    assert (code, out) == (0, f"mailinfra {version}\n")


def test_keygen_prints_yaml_that_pastes_into_the_stack_file(tmp_path: Path) -> None:
    """Before: a dotted path (`mailinfra:domains.example.com.dkim.selectors.s2:`), which is no key of the file."""
    code, out, _ = run_cli("dkim", "keygen", "--domain", "example.com", "--selector", "s2027b",
                           "--out-dir", str(tmp_path / "keys"))
    assert code == 0
    fragment = out.split("resolves:\n", 1)[1]
    text = (STACKS_DIR / "Pulumi.dev.yaml").read_text()
    data = yaml.safe_load(text)
    pasted = yaml.safe_load("config:\n" + fragment)["config"]["mailinfra:domains"]["example.com"]
    data["config"]["mailinfra:domains"]["example.com"]["dkim"]["selectors"].update(pasted["dkim"]["selectors"])
    stack_file = tmp_path / "Pulumi.keyed.yaml"
    stack_file.write_text(yaml.safe_dump(data, sort_keys=False))
    plan = build_plan(load_stack(str(stack_file)))
    key = next(k for k in plan.dkim_keys if k.selector == "s2027b")
    assert key.state == "pending"


@pytest.mark.parametrize(("text", "line", "meaning"), [
    ("config:\n  mailinfra:environment: dev\n   mailinfra:x: 1\n", 3, "indented deeper than the key above it"),
    ("config:\n  mailinfra:environment: dev\n mailinfra:x: 1\n", 3, "indented deeper than the keys before it"),
    ("config:\n  mailinfra:environment: \"dev\n", 3, "a quote opened on line 2 is never closed"),
    ("config:\n\tmailinfra:environment: dev\n", 2, "a tab character; YAML indents with spaces only"),
    ("config:\n  mailinfra:pools: [a, b\n  x: 1\n", 3, "a `[` list opened on line 2 is not closed"),
    ("config:\n  mailinfra:pools: {a: 1\n", 3, "a `{` mapping opened on line 2 is not closed"),
])
def test_yaml_mistakes_are_told_in_the_authors_terms(tmp_path: Path, text: str, line: int, meaning: str) -> None:
    """Before: PyYAML's parser states only (`expected <block end>, but found '<block mapping start>'`)."""
    path = tmp_path / "Pulumi.bad.yaml"
    path.write_text(text)
    code, _, err = run_cli("validate", str(path))
    assert code == 1 and err.count("\n") == 1
    assert err.startswith(f"{path}:{line}: ") and meaning in err, err


def test_terminal_and_review_md_count_resources_alike(tmp_path: Path) -> None:
    """Before: the CLI said 113 resources where review.md said 102 (components counted in one only)."""
    code, out, err = run_cli("preview", "dev", "--out", str(tmp_path))
    assert code == 0, err
    plan = json.loads((tmp_path / "plan.json").read_text())
    components = sum(1 for r in plan["resources"] if r.get("component"))
    wording = f"{len(plan['resources']) - components} Pulumi resources and {components} components"
    assert wording in out
    assert f"## Pulumi resources: {wording}" in (tmp_path / "review.md").read_text()
