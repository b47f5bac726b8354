"""Review (issue 15): every change has a class (destructive, risky, safe) that `--fail-on` takes; what the review
says matches what `pulumi up` does; the comment survives GitHub (size limit, Markdown) and shows what changed."""

from __future__ import annotations

import argparse
import re
import subprocess
from pathlib import Path

import pytest

from mailinfra.audit.findings import Finding, Severity
from mailinfra.audit.render import render_markdown
from mailinfra.cli import review_cmd
from mailinfra.model.load import STACKS_DIR
from mailinfra.review import review_stack
from mailinfra.review.render import GITHUB_COMMENT_LIMIT
from tests.review.test_review import AS_OF, DEV, OTHER_RSA_SPKI, WARMED_BULK, make_repo, sub

STAGING = (STACKS_DIR / "Pulumi.staging.yaml").read_text()
PROD = (STACKS_DIR / "Pulumi.prod.yaml").read_text()

# s2027a replaces s2026a (which retires) straight as the active key.
NEW_SELECTOR = ("          s2027a:\n            state: active\n            algorithm: rsa-2048\n"
                f"            public_key: {OTHER_RSA_SPKI}\n          e2026a:")


def NEW_ACTIVE_SELECTOR(text: str) -> str:  # noqa: N802 -- an edit, named like the other edits
    retire = sub("          s2026a:\n            state: active\n", "          s2026a:\n            state: retiring\n")
    text = retire(text)
    return sub("          e2026a:", NEW_SELECTOR)(text)


def make_stack_repo(tmp_path: Path, name: str, base: str, head: str) -> Path:
    """A repository whose committed stacks/Pulumi.<name>.yaml is `base`, with `head` in the working tree."""
    repo = make_repo(tmp_path, DEV, DEV)
    (repo / "stacks" / f"Pulumi.{name}.yaml").write_text(base)
    subprocess.run(["git", "-C", str(repo), "add", "stacks"], check=True)
    subprocess.run(["git", "-C", str(repo), "commit", "-qm", name], check=True)
    (repo / "stacks" / f"Pulumi.{name}.yaml").write_text(head)
    return repo


def review_args(repo: Path, fail_on: str) -> argparse.Namespace:
    return argparse.Namespace(stack="dev", base="HEAD", fail_on=fail_on, repo=repo, output=None, no_resources=True,
                              append=[], max_chars=GITHUB_COMMENT_LIMIT)


def test_selector_added_straight_as_active_is_risky_and_fail_on_takes_it(tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """Before: `--fail-on destructive` passed it silently (signing switches before the record propagates)."""
    repo = make_repo(tmp_path, DEV, NEW_ACTIVE_SELECTOR(DEV))
    markdown, diff = review_stack("dev", "HEAD", repo=repo, as_of=AS_OF, resources=False)
    assert not diff.destructive
    assert any("s2027a" in line and "pending" in line for line in diff.risky)
    assert "### ⚠️ Risky changes" in markdown
    assert review_cmd.run(review_args(repo, "destructive")) == 0
    assert review_cmd.run(review_args(repo, "risky")) == 1
    assert review_cmd.run(review_args(repo, "any")) == 1
    capsys.readouterr()


def test_pending_selector_is_not_risky(tmp_path: Path) -> None:
    pending = NEW_SELECTOR.replace("state: active", "state: pending")
    repo = make_repo(tmp_path, DEV, sub("          e2026a:", pending)(DEV))
    _, diff = review_stack("dev", "HEAD", repo=repo, as_of=AS_OF, resources=False)
    assert diff.keys and not diff.risky and not diff.destructive
    assert not diff.fails("risky") and diff.fails("any")


def test_moving_a_pool_between_hosts_is_risky(tmp_path: Path) -> None:
    """Its IPs' private addresses leave one ENI for another in one apply."""
    moved = sub("      hosts: [pmta1]\n      warmup: {start: 2026-12-07", "      hosts: [mta1]\n      warmup: "
                "{start: 2026-12-07")(STAGING)
    repo = make_stack_repo(tmp_path, "staging", STAGING, moved)
    _, diff = review_stack("staging", "HEAD", repo=repo, as_of=AS_OF, resources=False)
    moves = [c for c in diff.ips if c.change == "moved"]
    assert moves and all(c.risky for c in moves)
    assert any("moved between hosts" in line for line in diff.risky)


def test_ttl_change_is_visible(tmp_path: Path) -> None:
    """Before: "No changes to DNS records" (only values were compared)."""
    repo = make_repo(tmp_path, DEV, sub("    ttl_seconds: 3600\n", "    ttl_seconds: 300\n")(DEV))
    markdown, diff = review_stack("dev", "HEAD", repo=repo, as_of=AS_OF, resources=False)
    assert diff.records and all((c.old_ttl, c.new_ttl) == (3600, 300) for c in diff.records)
    assert "**3600 → 300**" in markdown
    assert "No changes to" not in markdown


def test_renamed_stream_reads_as_a_rename(tmp_path: Path) -> None:
    renamed = sub("  mailinfra:streams:\n    transactional:\n",
                  "  mailinfra:streams:\n    tx-mail:\n      previous_names: [transactional]\n")(DEV)
    repo = make_repo(tmp_path, DEV, renamed)
    markdown, diff = review_stack("dev", "HEAD", repo=repo, as_of=AS_OF, resources=False)
    assert [(c.kind, c.name, c.change) for c in diff.names] == [("stream", "tx-mail", "renamed")]
    assert "| stream | tx-mail | renamed | from transactional" in markdown


def test_removed_ip_says_what_up_really_does(tmp_path: Path) -> None:
    """Every EIP is protected and retained: before, the review said the address was released for good."""
    repo = make_repo(tmp_path, WARMED_BULK(DEV), sub("        bk2: {}\n", "")(WARMED_BULK(DEV)))
    _, diff = review_stack("dev", "HEAD", repo=repo, as_of=AS_OF, resources=False)
    (line,) = [c.detail for c in diff.ips if c.change == "removed"]
    assert "cannot be" not in line and "releases" not in line
    assert "`pulumi up` fails on the protected EIP" in line and "stays allocated" in line


def test_comment_folds_to_fit_and_says_so(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, DEV, sub("        tx2: {}\n", "        tx2: {}\n        tx3: {}\n")(DEV))
    full, _ = review_stack("dev", "HEAD", repo=repo, as_of=AS_OF, resources=False)
    limit = len(full) - 500
    folded, _ = review_stack("dev", "HEAD", repo=repo, as_of=AS_OF, resources=False, max_chars=limit)
    assert len(folded) <= limit
    assert "folded to fit GitHub's comment limit" in folded
    assert folded.startswith(full.split("\n\n", 2)[0])  # the summary comes first either way


def test_prod_comment_with_two_new_ips_and_the_audit_stays_under_githubs_limit(tmp_path: Path) -> None:
    """The issue's case: adding 2 IPs in prod made 54.8 KB before the audit was appended."""
    from mailinfra.audit import audit_plan
    from mailinfra.model.load import load_stack
    from mailinfra.plan.build import build_plan

    head = sub("        com-ma7: {host: pmta1}\n", "        com-ma7: {host: pmta1}\n        com-ma98: {host: pmta2}\n"
               "        com-ma99: {host: pmta1}\n")(PROD)
    repo = make_stack_repo(tmp_path, "prod", PROD, head)
    stack = load_stack(str(repo / "stacks" / "Pulumi.prod.yaml"))
    audit = render_markdown("prod", audit_plan(build_plan(stack, AS_OF), stack.config))
    audit_file = tmp_path / "audit.md"
    audit_file.write_text(audit)
    args = argparse.Namespace(stack="prod", base="HEAD", fail_on="never", repo=repo, output=tmp_path / "c.md",
                              no_resources=False, append=[audit_file], max_chars=GITHUB_COMMENT_LIMIT)
    assert review_cmd.run(args) == 0
    comment = (tmp_path / "c.md").read_text()
    assert len(comment) <= GITHUB_COMMENT_LIMIT
    assert comment.rstrip().endswith(audit.rstrip())


def test_topology_marks_what_changed(tmp_path: Path) -> None:
    """Before: the diagram showed the new topology only."""
    repo = make_repo(tmp_path, DEV, sub("        tx2: {}\n", "        tx2: {}\n        tx3: {}\n")(DEV))
    markdown, _ = review_stack("dev", "HEAD", repo=repo, as_of=AS_OF, resources=False)
    diagram = markdown.split("```mermaid", 1)[1].split("```", 1)[0]
    assert "classDef changed" in diagram and re.search(r"class [^\n]*p_tx[, \n]", diagram)
    unchanged, _ = review_stack("dev", "HEAD", repo=make_repo(tmp_path / "b", DEV, DEV), as_of=AS_OF,
                                resources=False)
    assert "classDef" not in unchanged


def test_text_meant_as_text_is_not_swallowed_as_html() -> None:
    """`fbl@<your domain>` rendered as an HTML tag on GitHub (the `<...>` vanished)."""
    finding = Finding("bounces-fbl", Severity.WARNING, "mailinfra:bounces", "no FBL mailbox",
                      "set bounces.fbl_mailbox (e.g. fbl@<your domain>)")
    text = render_markdown("dev", [finding])
    assert "fbl@&lt;your domain&gt;" in text and "<your domain>" not in text


def test_review_md_shows_spf_whole_and_dkim_cells_intact(tmp_path: Path) -> None:
    """Before: SPF cut mid-list, DKIM cells ending in a garbled `…2 strings)_`."""
    from mailinfra.cli.main import main

    assert main(["preview", "dev", "--out", str(tmp_path), "--no-resources", "--as-of", str(AS_OF)]) == 0
    review = (tmp_path / "review.md").read_text()
    spf_rows = [line for line in review.splitlines() if "v=spf1" in line and "bounce." in line]
    assert spf_rows and all(re.search(r"-all` ", row) for row in spf_rows), spf_rows
    dkim_rows = [line for line in review.splitlines() if "k=rsa" in line]
    assert dkim_rows and not any("strings)_`" in row for row in dkim_rows)
    assert all("_(published as 2 strings of ≤ 255 bytes)_" in row for row in dkim_rows)
