"""The bounce host's intake as Postfix reads it: the rendered recipient map, queried with postmap (regexp(5)
is Postfix's own matcher), accepts the core's signed VERP return paths and the FBL addresses, nothing else."""

from __future__ import annotations

import datetime as dt
import secrets
import subprocess
from pathlib import Path

import pytest

from components.secondary_route import ses_configuration_set_name
from mailinfra.model.load import load_stack
from mailinfra.mta.intake import ses_event_queue_name
from mailinfra.mta.render import render_host
from mailinfra.plan.build import build_plan
from mailinfra.suppression import verp
from tests.tooling import require_tool


@pytest.fixture(scope="module")
def recipient_map(tmp_path_factory: pytest.TempPathFactory) -> Path:
    plan = build_plan(load_stack("dev"))
    files = {f.path: f.content for f in render_host(plan, "mta1")}
    root = tmp_path_factory.mktemp("intake")
    (root / "main.cf").write_text("compatibility_level = 3.6\n")
    (root / "bounce_recipients").write_text(files["etc/postfix/bounce_recipients"])
    return root


def accepted(root: Path, address: str) -> bool:
    done = subprocess.run([require_tool("postmap"), "-c", str(root), "-q", address,
                           f"regexp:{root / 'bounce_recipients'}"], capture_output=True, text=True, check=False)
    assert "warning" not in done.stderr and "fatal" not in done.stderr, done.stderr
    return done.returncode == 0


@pytest.mark.parametrize("recipient", ["someone@gmail.com", "a.very.long.recipient.name.beyond.inline@example.org"])
def test_signed_return_paths_of_both_forms_are_accepted(recipient_map: Path, recipient: str) -> None:
    """`b-` (recipient inline) and `h-` (hashed, long recipient) forms, as the core builds them."""
    address = verp.build_return_path(recipient, "marketing", "bounce.news.example.com", secrets.token_bytes(32),
                                     day=dt.date(2026, 12, 2))
    assert accepted(recipient_map, address), address


@pytest.mark.parametrize("address", [
    "bounces+anything@bounce.news.example.com",  # the old catch-all VERP shape
    "bounces@bounce.news.example.com",  # names no message
    "postmaster-bounce@bounce.news.example.com",
    "b-short-x=y.z@bounce.news.example.com",  # not a token's length
])
def test_anything_else_at_a_return_path_domain_is_unknown(recipient_map: Path, address: str) -> None:
    assert not accepted(recipient_map, address)


@pytest.mark.parametrize("address", ["postmaster@bounce.news.example.com", "PostMaster@bounce.mail.example.com"])
def test_postmaster_is_accepted_at_every_intake_domain(recipient_map: Path, address: str) -> None:
    """RFC 5321 §4.5.1: a server that delivers mail for a domain MUST accept its reserved, case-insensitive
    "postmaster" mailbox (before: 550 5.1.1 at RCPT, like any unknown address)."""
    assert accepted(recipient_map, address)
    assert not accepted(recipient_map, address.replace("@", "-x@"))


def test_a_person_writing_to_postmaster_is_no_report() -> None:
    """What the processor makes of a human message at postmaster@: no report (it answers 250 and keeps
    nothing), never an exception (which would answer 451 and keep it queued for days)."""
    from mailinfra.suppression.reports import parse_message
    from tests.suppression.samples import context

    raw = (b"From: A Person <someone@example.org>\r\nTo: postmaster@bounce.news.example.com\r\n"
           b"Subject: your server\r\nMessage-ID: <1@example.org>\r\n\r\nHello.\r\n")
    assert parse_message(raw, envelope_recipient="postmaster@bounce.news.example.com",
                         context=context(secrets.token_bytes(32)), today=dt.date(2026, 12, 2)) == []


def test_the_fbl_address_is_accepted_exactly(recipient_map: Path) -> None:
    assert accepted(recipient_map, "fbl@bounce.news.example.com")
    assert not accepted(recipient_map, "fbl2@bounce.news.example.com")


def test_the_processor_names_the_queue_the_components_create() -> None:
    """The pure copy of the SES events queue's name equals the component's (`<configuration set>-events`)."""
    for stack, route in [("dev", "ses"), ("a-very-long-stack-name-for-testing", "a-very-long-route-name-too")]:
        assert ses_event_queue_name(stack, route) == f"{ses_configuration_set_name(stack, route)}-events"
