"""Incident isolation as config (issue 14): one reviewable line takes a pool or IP out of rotation; validation,
the plan, the `isolate` command, the audit and the review all read that line."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mailinfra.audit import audit_plan
from mailinfra.errors import ConfigErrors
from mailinfra.model.load import STACKS_DIR, load_stack, validate_config
from mailinfra.plan.build import build_plan
from mailinfra.review import review_stack
from tests.review.test_review import make_repo

REPO = Path(__file__).resolve().parents[2]
DEV_TEXT = (STACKS_DIR / "Pulumi.dev.yaml").read_text()
DEV = yaml.safe_load(DEV_TEXT)["config"]
AS_OF = dt.date(2026, 12, 20)


def config_with(isolations: dict[str, object]) -> dict[str, object]:
    raw = {k.split(":", 1)[1]: v for k, v in DEV.items() if k.startswith("mailinfra:")}
    raw["isolations"] = isolations
    return raw


def errors_of(isolations: dict[str, object]) -> list[str]:
    try:
        validate_config(config_with(isolations), "dev", "Pulumi.dev.yaml")
    except ConfigErrors as exc:
        return [e.line() for e in exc.errors]
    return []


@pytest.mark.parametrize(("target", "value", "needle"), [
    ("pool:nosuch", {}, "expected a pool of this stack after `pool:`"),
    ("ip:zz9", {}, "expected a ip of this stack after `ip:`"),
    ("pool:bulk@hotmail", {}, "expected a provider after `@`: gmail"),
    ("pool:bulk", {"to": "siblings"}, "expected route for a pool"),
    ("pools:bulk", {}, "pool:<pool> or ip:<ip>"),
])
def test_bad_isolations_are_one_line_each(target: str, value: dict[str, object], needle: str) -> None:
    errors = errors_of({target: {"reason": "blocked by a provider", "since": "2026-12-01", **value}})
    assert len(errors) == 1 and needle in errors[0], errors
    assert errors[0].startswith("Pulumi.dev.yaml") and "mailinfra:isolations" in errors[0]


def test_isolating_every_ip_of_a_pool_to_its_siblings_is_refused() -> None:
    spec = {"reason": "listed on a blocklist", "since": "2026-12-01"}
    errors = errors_of({"ip:bk1": spec, "ip:bk2": spec})
    assert errors and all("every IP of pool bulk is isolated" in e for e in errors)


def test_plan_carries_each_isolation_with_its_alternative() -> None:
    stack = validate_config(config_with({
        "pool:mkt-cold@gmail": {"reason": "Gmail 421 4.7.28 on the cold pool", "since": "2026-12-01"},
        "ip:tx2": {"reason": "SBL listing of tx2", "since": "2026-12-02"},
    }), "dev", "Pulumi.dev.yaml")
    plan = build_plan(stack, AS_OF)
    by_target = {i.target: i for i in plan.isolations}
    cold = by_target["pool:mkt-cold@gmail"]
    assert (cold.kind, cold.pool, cold.provider, cold.to, cold.route) == ("pool", "mkt-cold", "gmail", "route",
                                                                          "relay")
    tx2 = by_target["ip:tx2"]
    assert (tx2.kind, tx2.pool, tx2.ip, tx2.to, tx2.route) == ("ip", "tx", "tx2", "siblings", None)
    assert cold.covers("mc1", "mkt-cold", "gmail") and not cold.covers("mc1", "mkt-cold", "yahoo")
    # Isolated IPs stay allocated, published and warm: the plan's IPs, records and limits do not change.
    plain = build_plan(load_stack("dev", STACKS_DIR), AS_OF)
    assert (plan.ips, plan.records, plan.warmup) == (plain.ips, plain.records, plain.warmup)


def run_cli(cwd: Path, *argv: str) -> tuple[int, str, str]:
    proc = subprocess.run([sys.executable, "-m", "mailinfra.cli.main", *argv], capture_output=True, text=True,
                          cwd=cwd, check=False, timeout=120, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    return proc.returncode, proc.stdout, proc.stderr


def project(tmp_path: Path) -> Path:
    (tmp_path / "stacks").mkdir()
    (tmp_path / "Pulumi.yaml").write_text((REPO / "Pulumi.yaml").read_text())
    (tmp_path / "stacks" / "Pulumi.dev.yaml").write_text(DEV_TEXT)
    return tmp_path


def test_isolate_writes_one_line_and_lift_restores_the_file(tmp_path: Path) -> None:
    root = project(tmp_path)
    stack_file = root / "stacks" / "Pulumi.dev.yaml"
    code, _, err = run_cli(root, "isolate", "dev", "mkt-cold", "--provider", "gmail", "--since", "2026-12-01",
                             "--reason", "Gmail 421 4.7.28: cold pool throttled (OPS-412)")
    assert (code, err) == (0, ""), err
    added = [line for line in stack_file.read_text().splitlines() if line not in DEV_TEXT.splitlines()]
    assert added == ["  mailinfra:isolations:",
                     '    pool:mkt-cold@gmail: {reason: "Gmail 421 4.7.28: cold pool throttled (OPS-412)", '
                     "since: 2026-12-01}"]
    isolations = load_stack(str(stack_file)).config.isolations
    assert isolations["pool:mkt-cold@gmail"].since == dt.date(2026, 12, 1)
    code, _, err = run_cli(root, "isolate", "dev", "tx2", "--reason", "SBL listing")
    assert code == 0, err
    code, _, err = run_cli(root, "isolate", "dev", "mkt-cold@gmail", "--lift")
    assert code == 0, err
    code, _, err = run_cli(root, "isolate", "dev", "ip:tx2", "--lift")
    assert code == 0, err
    assert stack_file.read_text() == DEV_TEXT


@pytest.mark.parametrize(("argv", "needle"), [
    (["nosuch", "--reason", "why not"], "NAME: received 'nosuch', expected a pool or IP of the stack"),
    (["bulk"], "--reason: received nothing"),
    (["bulk", "--reason", "why", "--provider", "hotmail"], "expected a provider after `@`"),
    (["bulk", "--lift"], "expected an isolation of stacks/Pulumi.dev.yaml (there are none)"),
])
def test_isolate_bad_input_writes_nothing(tmp_path: Path, argv: list[str], needle: str) -> None:
    root = project(tmp_path)
    code, out, err = run_cli(root, "isolate", "dev", *argv)
    assert code == 2 and out == "" and err.count("\n") == 1 and needle in err, err
    assert (root / "stacks" / "Pulumi.dev.yaml").read_text() == DEV_TEXT
    assert not list((root / "stacks").glob(".*"))  # the check's scratch file is gone


def test_audit_flags_isolations_older_than_two_weeks() -> None:
    stack = validate_config(config_with({"pool:bulk": {"reason": "blocklisted", "since": "2026-12-01"}}),
                            "dev", "Pulumi.dev.yaml")
    fresh = [f for f in audit_plan(build_plan(stack, dt.date(2026, 12, 10)), stack.config) if f.code == "isolation-age"]
    old = [f for f in audit_plan(build_plan(stack, dt.date(2026, 12, 20)), stack.config) if f.code == "isolation-age"]
    assert [f.severity.value for f in fresh] == ["info"]
    assert [f.severity.value for f in old] == ["warning"] and "isolated for 19 days" in old[0].why


def test_review_shows_what_moves_where(tmp_path: Path) -> None:
    line = '  mailinfra:isolations:\n    pool:tx: {reason: "Yahoo 421 TSS04 on tx", since: 2026-12-01}\n'
    repo = make_repo(tmp_path, DEV_TEXT, DEV_TEXT + line)
    markdown, diff = review_stack("dev", "HEAD", repo=repo, as_of=AS_OF, resources=False)
    (change,) = diff.isolations
    daily = sum(lim.daily_cap for lim in build_plan(load_stack("dev", STACKS_DIR), AS_OF).warmup if lim.pool == "tx")
    assert (change.target, change.change, change.messages_per_day, change.destination) == (
        "pool:tx", "added", daily, "route ses")
    assert f"| `pool:tx` | added | {daily:,} messages/day | route ses |" in markdown
    lifted = make_repo(tmp_path / "lift", DEV_TEXT + line, DEV_TEXT)
    _, diff = review_stack("dev", "HEAD", repo=lifted, as_of=AS_OF, resources=False)
    assert [c.change for c in diff.isolations] == ["lifted"]
