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
    args = argparse.Namespace(stack="dev", base="HEAD", fail_on="destructive", repo=repo, output=None,
                              no_resources=True)
    assert review_cmd.run(args) == 1
    assert "Destructive changes" in capsys.readouterr().out
    args.fail_on = "never"
    assert review_cmd.run(args) == 0


# Moves the winback tier's start three weeks later: every day of its ramp allows less than before.
LATER_WINBACK = sub("warmup: {start: 2026-11-23, schedule: conservative}",
                    "warmup: {start: 2026-12-14, schedule: conservative}")
# One more IP in the active marketing pool, starting on the review's date.
ADD_ACTIVE_IP = sub("        ma3: {}\n",
                    "        ma3: {}\n        ma4: {warmup: {start: 2026-12-01, schedule: standard}}\n")


def test_lowering_a_sending_ips_cap_is_risky_and_fails_the_gate(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """GIVEN a change that lowers the winback IPs' caps WHEN reviewed THEN each IP is a risky cap cut with
    its first lower day, and `--fail-on risky` (the PR workflow's gate) exits 1 (it passed with only "Warmup"
    changed)."""
    repo = make_repo(tmp_path, DEV, LATER_WINBACK(DEV))
    markdown, diff = review_stack("dev", "HEAD", repo=repo, as_of=AS_OF, resources=False)
    assert [(c.ip, c.first_day) for c in diff.cap_cuts] == [("mw1", AS_OF), ("mw2", AS_OF)]
    assert all(c.new_cap < c.old_cap for c in diff.cap_cuts)
    assert "Risky changes" in markdown
    args = argparse.Namespace(stack="dev", base="HEAD", fail_on="risky", repo=repo, output=None,
                              no_resources=True)
    assert review_cmd.run(args) == 1
    args.fail_on = "destructive"  # a cut is risky, not destructive: flagged, and the stricter gate takes it
    assert review_cmd.run(args) == 0
    capsys.readouterr()


def test_adding_an_active_ip_lowers_no_cap(tmp_path: Path) -> None:
    """GIVEN winback warming behind an active tier that has sent for weeks WHEN an IP is added to the active
    pool starting today THEN no cap is lowered: the tier gate follows the active tier's history (it used
    to move to the new IP's start + 14 days, gating winback back to 0)."""
    repo = make_repo(tmp_path, DEV, ADD_ACTIVE_IP(DEV))
    _, diff = review_stack("dev", "HEAD", repo=repo, as_of=AS_OF, resources=False)
    assert [c.ip for c in diff.ips] == ["ma4"]
    assert diff.cap_cuts == []
    assert diff.risky == []


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
    markdown, diff = review_stack("dev", "HEAD", repo=repo, as_of=AS_OF, resources=False)
    assert [f.ip for f in diff.warmup_findings] == (["tx3"] if flagged else [])
    assert ("Warmup findings" in markdown) == flagged


def test_host_file_diffs_name_the_changed_files_and_redact_private_keys() -> None:
    """A private key inlined by a renderer bug is cut out; secret markers stay visible for review."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from mailinfra.review.files import redact_secrets

    pem = ed25519.Ed25519PrivateKey.generate().private_bytes(  # made at test time, never committed
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    body = pem.splitlines()[1]
    text = redact_secrets(f"KeyFile\n{pem}\npassword @@SECRET:routes.ses.smtp_password@@\n")
    assert body not in text and "PRIVATE KEY" not in text
    assert "@@SECRET:routes.ses.smtp_password@@" in text


def test_host_file_diffs_follow_the_plan(tmp_path: Path) -> None:
    """GIVEN a removed IP WHEN reviewed THEN only its pool's Postfix instance files change, on its host, the
    exporter's label map (its transports are gone) and the host's automatic response (mailinfra.shaping)."""
    repo = make_repo(tmp_path, WARMED_BULK(DEV), sub("        bk2: {}\n", "")(WARMED_BULK(DEV)))
    _, diff = review_stack("dev", "HEAD", repo=repo, as_of=AS_OF, resources=False)
    assert {(f.host, f.path, f.change) for f in diff.host_files} == {
        ("mta1", "etc/postfix-bulk/main.cf", "changed"), ("mta1", "etc/postfix-bulk/master.cf", "changed"),
        ("mta1", "etc/mailinfra/shaping.json", "changed"), ("mta1", "etc/mailinfra/metrics.json", "changed")}
    removed = [line for f in diff.host_files for line in f.diff.splitlines() if line.startswith("-")]
    assert any("bk2_default" in line for line in removed)


# ------------------------------------------------------------------ Pulumi resources


def test_removing_a_warmed_ip_removes_its_protected_eip_and_is_destructive(tmp_path: Path) -> None:
    """GIVEN a warmed bk2 WHEN it is removed THEN its EIP (protected) is a removed resource that fails the build."""
    repo = make_repo(tmp_path, WARMED_BULK(DEV), sub("        bk2: {}\n", "")(WARMED_BULK(DEV)))
    markdown, diff = review_stack("dev", "HEAD", repo=repo, as_of=AS_OF)
    removed = {(c.type, c.name): c for c in diff.resources if c.change == "removed"}
    eip = removed[("aws:ec2/eip:Eip", "ip-bk2")]
    assert eip.protect and eip.destructive
    assert ("aws:ec2/eipDomainName:EipDomainName", "ip-bk2-ptr") in removed
    assert [c.name for c in diff.resources if c.destructive] == ["ip-bk2"]
    assert any("ip-bk2 removed" in line for line in diff.destructive)
    assert "| **removed** ⛔ | `aws:ec2/eip:Eip` | ip-bk2 |" in markdown


def test_renaming_an_ip_with_previous_names_replaces_nothing(tmp_path: Path) -> None:
    """A rename carries aliases: the EIP and its PTR are the same resources, renamed, never replaced."""
    repo = make_repo(tmp_path, DEV, sub("        tx2: {}\n", "        tx9: {previous_names: [tx2]}\n")(DEV))
    _, diff = review_stack("dev", "HEAD", repo=repo, as_of=AS_OF)
    by_name = {c.name: c for c in diff.resources}
    # Only the A record is replaced: the default HELO follows the name (tx2.<domain> -> tx9.<domain>), and a
    # Route53 record's name is ForceNew. Its alias still names the old record (the same resource).
    assert [c.name for c in diff.resources if c.change == "replaced"] == ["ip-tx9-a-tx9.mail.example.com"]
    assert by_name["ip-tx9-a-tx9.mail.example.com"].old_name == "ip-tx2-a-tx2.mail.example.com"
    assert by_name["host-mta1-tx9"].change == "renamed"  # same EIP, same private address
    assert not diff.destructive
    assert by_name["ip-tx9"].old_name == "ip-tx2"
    assert by_name["ip-tx9"].change in {"renamed", "updated"}  # the tags carry the IP name
    assert by_name["ip-tx9-ptr"].old_name == "ip-tx2-ptr"
    # The mock derives ids from names; the PTR still points at the same allocation.
    assert "allocationId" not in {i.key for i in by_name["ip-tx9-ptr"].inputs}
    assert "ip-tx2" not in by_name and not any(c.type == "aws:ec2/eip:Eip" and c.change == "added"
                                                     for c in diff.resources)


def test_no_resources_skips_the_program_and_says_so(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, DEV, DEV)
    markdown, diff = review_stack("dev", "HEAD", repo=repo, as_of=AS_OF, resources=False)
    assert not diff.resources_compared and not diff.resources
    assert "Not compared (`--no-resources`)." in markdown


def resource(typ: str, name: str, inputs: dict[str, object], *, protect: bool = False,
             aliases: tuple[str, ...] = (), ident: str | None = None) -> dict[str, object]:
    return {"type": typ, "name": name, "urn": f"urn:pulumi:dev::mailinfra::{typ}::{name}", "component": False,
            "protect": protect, "retain_on_delete": protect, "import_id": None, "aliases": list(aliases),
            "inputs": inputs, "id": ident or f"{name}-id"}


EIP = "aws:ec2/eip:Eip"
INSTANCE = "aws:ec2/instance:Instance"
RECORD = "aws:route53/record:Record"


@pytest.mark.parametrize(("typ", "before", "after", "protect", "expected"), [
    (EIP, {"domain": "vpc"}, {"domain": "standard"}, True, ("replaced", True)),
    (EIP, {"domain": "vpc", "tags": {"pool": "a"}}, {"domain": "vpc", "tags": {"pool": "b"}}, True, ("updated", False)),
    (INSTANCE, {"ami": "ami-1"}, {"ami": "ami-2"}, False, ("replaced", False)),
    (INSTANCE, {"instanceType": "t3.large"}, {"instanceType": "t3.xlarge"}, False, ("updated", False)),
    (INSTANCE, {"subnetId": "subnet-a"}, {"subnetId": "subnet-b"}, False, ("replaced", False)),
    (RECORD, {"zoneId": "Z1", "ttl": 300}, {"zoneId": "Z2", "ttl": 300}, False, ("replaced", False)),
    (RECORD, {"zoneId": "Z1", "ttl": 300}, {"zoneId": "Z1", "ttl": 600}, False, ("updated", False)),
    ("aws:ssm/parameter:Parameter", {"value": "[secret]"}, {"value": "[secret]"}, False, None),  # masked: unseen
])
def test_force_new_inputs_replace_and_only_protected_deletions_are_destructive(
        typ: str, before: dict[str, object], after: dict[str, object], protect: bool,
        expected: tuple[str, bool] | None) -> None:
    from mailinfra.review.resources import diff_resources

    changes = diff_resources([resource(typ, "r", before, protect=protect)],
                             [resource(typ, "r", after, protect=protect)])
    assert [(c.change, c.destructive) for c in changes] == ([expected] if expected else [])


def test_instance_type_change_says_the_instance_stops_and_starts() -> None:
    from mailinfra.review.resources import diff_resources

    [change] = diff_resources([resource(INSTANCE, "h", {"instanceType": "t3.large"})],
                              [resource(INSTANCE, "h", {"instanceType": "t3.xlarge"})])
    assert change.stop_start
    assert (change.inputs[0].key, change.inputs[0].old, change.inputs[0].new) == ("instanceType", "t3.large",
                                                                                   "t3.xlarge")


def test_an_alias_to_a_base_urn_is_a_rename_and_references_follow_it() -> None:
    """GIVEN an EIP renamed with an alias WHEN its PTR holds the (name-derived) mock id THEN nothing changes."""
    from mailinfra.review.resources import diff_resources

    ptr = "aws:ec2/eipDomainName:EipDomainName"
    base = [resource(EIP, "old", {"domain": "vpc"}, protect=True, ident="eipalloc-1"),
            resource(ptr, "p", {"allocationId": "eipalloc-1"})]
    head = [resource(EIP, "new", {"domain": "vpc"}, protect=True, aliases=("old",), ident="eipalloc-2"),
            resource(ptr, "p", {"allocationId": "eipalloc-2"})]
    assert [(c.name, c.change, c.old_name) for c in diff_resources(base, head)] == [("new", "renamed", "old")]
    # Without the alias it is a new EIP and the old one is deleted: destructive.
    head[0]["aliases"] = []
    changes = diff_resources(base, head)
    assert {(c.name, c.change) for c in changes} == {("old", "removed"), ("new", "added"), ("p", "replaced")}
    assert [c.name for c in changes if c.destructive] == ["old"]
