"""Cost in the audit (own vs rent below ~2 M messages a month) and in the review (the delta of a change)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from mailinfra.audit import audit_plan
from mailinfra.model.load import load_stack
from mailinfra.plan.build import build_plan
from mailinfra.review import review_stack
from tests.review.test_review import DEV, make_repo, sub

AS_OF = dt.date(2026, 12, 1)
HOURS = 730
IPV4_PER_HOUR = 0.005  # every public IPv4 address, $0.005 per hour since 2024-02-01 (AWS VPC pricing)


def with_volume(text: str, messages: int) -> str:
    return text + f"\n  mailinfra:volume:\n    messages_per_month: {messages}\n"


def own_vs_rent(tmp_path: Path, text: str) -> list[tuple[str, str, str]]:
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(text)
    stack = load_stack(str(path))
    return [(f.code, str(f.severity), f.where) for f in audit_plan(build_plan(stack, AS_OF), stack.config)
            if f.code == "own-vs-rent"]


@pytest.mark.parametrize(("messages", "noted"), [(500_000, True), (1_999_999, True), (2_000_000, False),
                                                 (30_000_000, False), (None, False)])
def test_a_stated_volume_below_two_million_is_an_audit_note(tmp_path: Path, messages: int | None,
                                                            noted: bool) -> None:
    """The seed's rule of thumb: under ~2 M messages a month an ESP serves better (info; nothing when unstated)."""
    text = DEV if messages is None else with_volume(DEV, messages)
    expected = [("own-vs-rent", "info", "volume.messages_per_month")] if noted else []
    assert own_vs_rent(tmp_path, text) == expected


def test_a_bad_volume_key_is_one_line(tmp_path: Path) -> None:
    from mailinfra.errors import ConfigErrors

    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(DEV + "\n  mailinfra:volume:\n    messages_per_month: lots\n")
    with pytest.raises(ConfigErrors) as caught:
        load_stack(str(path))
    (line,) = [e.line() for e in caught.value.errors]
    assert "volume.messages_per_month: received 'lots'" in line


def test_review_shows_the_cost_of_an_added_ip(tmp_path: Path) -> None:
    """GIVEN dev WHEN an IP is added THEN the review's cost section shows +1 EIP = 730 h x $0.005 = +$3.65."""
    repo = make_repo(tmp_path, DEV, sub("        tx2: {}\n", "        tx2: {}\n        tx3: {}\n")(DEV))
    markdown, _ = review_stack("dev", "HEAD", repo=repo, as_of=AS_OF, resources=False)
    delta = f"+${HOURS * IPV4_PER_HOUR:,.2f}"
    assert f"### Cost ({delta} a month)" in markdown
    row = next(line for line in markdown.splitlines() if line.startswith("| Public IPv4 |"))
    before, after, change = (cell.strip() for cell in row.strip("|").split("|")[1:])
    assert float(after.lstrip("$")) - float(before.lstrip("$")) == pytest.approx(HOURS * IPV4_PER_HOUR)
    assert change == delta
    assert markdown.index("### Cost") < markdown.index("### Topology")


def test_review_without_a_cost_change_says_so(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, DEV, sub("        policy: quarantine\n", "        policy: reject\n")(DEV))
    markdown, _ = review_stack("dev", "HEAD", repo=repo, as_of=AS_OF, resources=False)
    assert "No cost change: $" in markdown


def test_review_keeps_billing_a_removed_ips_retained_eip(tmp_path: Path) -> None:
    """GIVEN a removed IP WHEN reviewed THEN its EIP (protect + retain_on_delete) still costs 730 h x $0.005:
    no saving is shown, and the section says the address stays allocated until released by hand."""
    repo = make_repo(tmp_path, DEV, sub("        bk2: {}\n", "")(DEV))
    markdown, _ = review_stack("dev", "HEAD", repo=repo, as_of=AS_OF, resources=False)
    section = markdown[markdown.index("### Cost"):markdown.index("### Topology")]
    assert "-$3.65" not in section
    assert "No cost change" in section and "bk2" in section and "retained" in section
