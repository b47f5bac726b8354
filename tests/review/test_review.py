"""Review: golden PR comments for edits to dev, made in a temporary git repository.

Regenerate the golden files only on purpose: MAILINFRA_UPDATE_GOLDEN=1 .venv/bin/pytest tests/review
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from mailinfra.cli import review_cmd
from mailinfra.dns.dkim import PLACEHOLDER_RSA_SPKI
from mailinfra.model.load import STACKS_DIR
from mailinfra.review import review_stack

GOLDEN = Path(__file__).parent / "golden"
AS_OF = dt.date(2026, 12, 1)
DEV = (STACKS_DIR / "Pulumi.dev.yaml").read_text()
# A second 2048-bit public key (its private half was never kept), so a re-key has a fixed golden diff.
OTHER_RSA_SPKI = (
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAvk4LzW7Lr1pquCmK/4HGkn9OGr2G+fQtYxjrMnNuq6i0nbbHNgqA"
    "EZAltKYXBTqMjVpbJTOz9FErKZqcqHjRAI4byBU9MKiR2aTP9EYSZ6PrIO/xixBWMagkNeXO2EaBbzA40YCri3XqBvKrwaYK"
    "TckCpnw9ZDzv7gUFKdmUl1Jq5uPwssJL/+GJfaoSigTjWIOpXoQVp4i20XBY4ZEst67kWw+NViogr6AO5npKWaJU5WD20gJ7"
    "+QD2bn16+rv42rJRLD/nDPRDCpGHREZl9lOhBTUxw1LSQBHm0q549hMEe5EW7O3SqyRkpTNEu2q/LiHky3VUe6RovvGrz8h5"
    "RQIDAQAB"
)

Edit = Callable[[str], str]


def sub(old: str, new: str) -> Edit:
    def edit(text: str) -> str:
        assert old in text, old
        return text.replace(old, new, 1)
    return edit


def both(*edits: Edit) -> Edit:
    def edit(text: str) -> str:
        for one in edits:
            text = one(text)
        return text
    return edit


def with_key(key: str) -> Edit:
    return sub("            algorithm: rsa-2048\n", f"            algorithm: rsa-2048\n            public_key: {key}\n")


WARMED_BULK = sub("warmup: {start: 2026-11-30, schedule: conservative}\n      ips:\n        bk1",
                  "warmup: {warmed: true}\n      ips:\n        bk1")

# name, base edit (committed), head edit (working tree), destructive
CASES: list[tuple[str, Edit | None, Edit, bool]] = [
    ("add_ip", None, sub("        tx2: {}\n", "        tx2: {}\n        tx3: {}\n"), False),
    ("remove_warmed_ip", WARMED_BULK, both(WARMED_BULK, sub("        bk2: {}\n", "")), True),
    ("rekey_selector", with_key(PLACEHOLDER_RSA_SPKI), with_key(OTHER_RSA_SPKI), True),
    ("rotate_to_new_selector", with_key(PLACEHOLDER_RSA_SPKI), both(with_key(PLACEHOLDER_RSA_SPKI), sub(
        "          e2026a:", "          s2027a:\n            state: pending\n            algorithm: rsa-2048\n"
        f"            public_key: {OTHER_RSA_SPKI}\n          e2026a:")), False),
    ("dmarc_policy", None, sub("        policy: quarantine\n", "        policy: reject\n"), False),
    ("no_change", None, lambda text: text, False),
]


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


def make_repo(tmp_path: Path, base: str, head: str) -> Path:
    repo = tmp_path / "repo"
    (repo / "stacks").mkdir(parents=True)
    git(repo, "init", "--quiet", "--initial-branch=main")
    git(repo, "config", "user.email", "t@example.com")
    git(repo, "config", "user.name", "test")
    (repo / "stacks" / "Pulumi.dev.yaml").write_text(base)
    git(repo, "add", "stacks")
    git(repo, "commit", "--quiet", "-m", "base")
    (repo / "stacks" / "Pulumi.dev.yaml").write_text(head)
    return repo


@pytest.mark.parametrize(("name", "base_edit", "head_edit", "destructive"), CASES, ids=[c[0] for c in CASES])
def test_review_matches_golden(tmp_path: Path, name: str, base_edit: Edit | None, head_edit: Edit,
                               destructive: bool) -> None:
    base = base_edit(DEV) if base_edit else DEV
    repo = make_repo(tmp_path, base, head_edit(base if base_edit is None else DEV))
    markdown, diff = review_stack("dev", "HEAD", repo=repo, as_of=AS_OF)
    golden = GOLDEN / f"{name}.md"
    if os.environ.get("MAILINFRA_UPDATE_GOLDEN") == "1":
        golden.write_text(markdown)
    assert markdown == golden.read_text()
    assert bool(diff.destructive) == destructive
    assert "```mermaid" in markdown
    assert git(repo, "worktree", "list").count("\n") == 1  # the temporary worktree is gone


def test_fail_on_destructive_exits_nonzero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = make_repo(tmp_path, WARMED_BULK(DEV), sub("        bk2: {}\n", "")(WARMED_BULK(DEV)))
    args = argparse.Namespace(stack="dev", base="HEAD", fail_on="destructive", repo=repo, output=None)
    assert review_cmd.run(args) == 1
    assert "Destructive changes" in capsys.readouterr().out
    args.fail_on = "never"
    assert review_cmd.run(args) == 0


def test_unknown_base_ref_is_a_usage_error(tmp_path: Path) -> None:
    from mailinfra.errors import UsageError

    repo = make_repo(tmp_path, DEV, DEV)
    with pytest.raises(UsageError, match="--base: received 'nope'"):
        review_stack("dev", "nope", repo=repo, as_of=AS_OF)


@pytest.mark.parametrize(("tx3", "flagged"), [
    ("tx3: {}", True),  # inherits the pool's start (2026-11-16): day 16 on the plan date
    ("tx3: {warmup: {start: 2026-12-01, schedule: transactional}}", False),  # its own day 1
    ("tx3: {warmup: {warmed: true}}", False),  # an adopted, already warm address
])
def test_new_ip_inheriting_a_past_pool_start_is_a_warmup_finding(tmp_path: Path, tx3: str, flagged: bool) -> None:
    """Only a NEW address that would start mid-ramp is flagged; tx1/tx2 warming since then are not."""
    repo = make_repo(tmp_path, DEV, sub("        tx2: {}\n", f"        tx2: {{}}\n        {tx3}\n")(DEV))
    markdown, diff = review_stack("dev", "HEAD", repo=repo, as_of=AS_OF)
    assert [f.ip for f in diff.warmup_findings] == (["tx3"] if flagged else [])
    assert ("Warmup findings" in markdown) == flagged


def test_host_file_diffs_name_the_changed_files_and_redact_private_keys() -> None:
    """A private key inlined by a renderer bug is cut out; secret markers stay visible for review."""
    from mailinfra.review.files import redact_secrets

    pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----"
    text = redact_secrets(f"KeyFile\n{pem}\npassword @@SECRET:routes.ses.smtp_password@@\n")
    assert "MIIEvQ" not in text and "BEGIN PRIVATE KEY" not in text
    assert "@@SECRET:routes.ses.smtp_password@@" in text


def test_host_file_diffs_follow_the_plan(tmp_path: Path) -> None:
    """GIVEN a removed IP WHEN reviewed THEN only its pool's Postfix instance files change, on its host."""
    repo = make_repo(tmp_path, WARMED_BULK(DEV), sub("        bk2: {}\n", "")(WARMED_BULK(DEV)))
    _, diff = review_stack("dev", "HEAD", repo=repo, as_of=AS_OF)
    assert {(f.host, f.path, f.change) for f in diff.host_files} == {
        ("mta1", "etc/postfix-bulk/main.cf", "changed"), ("mta1", "etc/postfix-bulk/master.cf", "changed")}
    removed = [line for f in diff.host_files for line in f.diff.splitlines() if line.startswith("-")]
    assert any("bk2_default" in line for line in removed)
