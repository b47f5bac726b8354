"""Signed VERP return paths: they fit RFC 5321's 64-octet local part, they verify, and nothing forged does."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailinfra.suppression import verp
from tests.suppression.samples import DAY, RP_DOMAIN, STREAMS, new_secret

SECRET = new_secret()


def test_short_recipient_is_inline_and_verifies() -> None:
    """A recipient that fits stands in the return path (classic VERP) and verifies to itself and its stream."""
    rp = verp.build_return_path("John.Doe@Example.NET", "news", RP_DOMAIN, SECRET, day=DAY)
    assert rp.startswith("b-") and rp.endswith("-john.doe=example.net@bounce.example.com")
    token = verp.verify_return_path(rp, SECRET, STREAMS, today=DAY)
    assert token == verp.VerpToken("john.doe@example.net", "news", DAY)


def test_long_recipient_is_hashed_and_needs_the_report_to_name_it() -> None:
    """A recipient too long for the local part is bound by the MAC only: the candidate the MAC verifies wins."""
    long = "firstname.middlename.lastname.department@subdivision.example.org"
    rp = verp.build_return_path(long, "receipts", RP_DOMAIN, SECRET, day=DAY)
    assert rp.startswith("h-") and long not in rp
    assert verp.verify_return_path(rp, SECRET, STREAMS, today=DAY) is None
    wrong = ["someone.else@example.org"]
    assert verp.verify_return_path(rp, SECRET, STREAMS, today=DAY, candidates=wrong) is None
    token = verp.verify_return_path(rp, SECRET, STREAMS, today=DAY, candidates=[*wrong, long.upper()])
    assert token is not None and token.recipient == long and token.stream == "receipts"


@given(st.emails())
def test_local_part_never_exceeds_64_octets(address: str) -> None:
    """RFC 5321 §4.5.3.1.1: the local part is at most 64 octets, whatever the recipient."""
    try:
        rp = verp.build_return_path(address, "news", RP_DOMAIN, SECRET, day=DAY)
    except ValueError:
        return  # email-validator refuses some generated shapes (e.g. a TLD it does not accept)
    local = rp.rpartition("@")[0]
    assert len(local.encode()) <= verp.LOCAL_PART_MAX
    assert re.match(verp.LOCAL_PART_PATTERN, local)


def test_receiver_that_upper_cases_the_return_path_still_verifies() -> None:
    """Some MTAs change the case of the envelope sender: every part of the token is case-insensitive."""
    rp = verp.build_return_path("bob@example.net", "news", RP_DOMAIN, SECRET, day=DAY)
    assert verp.verify_return_path(rp.upper(), SECRET, STREAMS, today=DAY) is not None


@pytest.mark.parametrize("position", range(2, 2 + 23))
def test_any_altered_token_character_fails(position: int) -> None:
    """A forger who changes any character of the MAC, the day or the stream code gets nothing."""
    rp = verp.build_return_path("bob@example.net", "news", RP_DOMAIN, SECRET, day=DAY)
    changed = "a" if rp[position] != "a" else "b"
    forged = rp[:position] + changed + rp[position + 1:]
    assert verp.verify_return_path(forged, SECRET, STREAMS, today=DAY) is None


def test_altered_recipient_or_stream_fails() -> None:
    """Pointing a genuine token at another recipient (to suppress them) or another stream fails."""
    rp = verp.build_return_path("bob@example.net", "news", RP_DOMAIN, SECRET, day=DAY)
    assert verp.verify_return_path(rp.replace("bob=", "alice="), SECRET, STREAMS, today=DAY) is None
    assert verp.verify_return_path(rp, SECRET, {"other": STREAMS["news"]}, today=DAY) is None


def test_other_secret_fails_and_rotation_keeps_the_previous_one() -> None:
    rp = verp.build_return_path("bob@example.net", "news", RP_DOMAIN, SECRET, day=DAY)
    newer = new_secret()
    assert verp.verify_return_path(rp, newer, STREAMS, today=DAY) is None
    assert verp.verify_return_path(rp, [newer, SECRET], STREAMS, today=DAY) is not None


def test_old_tokens_expire() -> None:
    """A token older than max_age verifies as nothing: a leaked return path stops working."""
    rp = verp.build_return_path("bob@example.net", "news", RP_DOMAIN, SECRET, day=DAY)
    later = DAY + dt.timedelta(days=61)
    assert verp.verify_return_path(rp, SECRET, STREAMS, today=DAY + dt.timedelta(days=60)) is not None
    assert verp.verify_return_path(rp, SECRET, STREAMS, today=later) is None
    # A token dated after tomorrow unwraps to ~90 years ago: expired, not accepted.
    future = verp.build_return_path("bob@example.net", "news", RP_DOMAIN, SECRET, day=DAY + dt.timedelta(days=3))
    assert verp.verify_return_path(future, SECRET, STREAMS, today=DAY) is None


def test_not_a_token() -> None:
    for address in ("bounces+bob=example.net@bounce.example.com", "postmaster@bounce.example.com", "", "b-"):
        assert verp.verify_return_path(address, SECRET, STREAMS, today=DAY) is None
        assert not re.match(verp.LOCAL_PART_PATTERN, address.rpartition("@")[0])


def test_short_secret_refused() -> None:
    """RFC 2104 §3: a key shorter than the MAC's output weakens it; the stack secret must have 16 bytes."""
    with pytest.raises(verp.VerpError, match="16 bytes"):
        verp.build_return_path("bob@example.net", "news", RP_DOMAIN, b"short", day=DAY)


def test_header_round_trip_and_tampering() -> None:
    """X-Mailinfra-Id carries any recipient (no 64-octet limit) and fails when any part changes."""
    long = "firstname.middlename.lastname.department@subdivision.example.org"
    value = verp.build_header(long, "news", SECRET, day=DAY)
    assert "@" not in value and long not in value
    assert verp.verify_header(value, SECRET, STREAMS, today=DAY) == verp.VerpToken(long, "news", DAY)
    other = verp.build_header("mallory@example.org", "news", SECRET, day=DAY)
    spliced = ".".join([*value.split(".")[:2], other.split(".")[2]])
    assert verp.verify_header(spliced, SECRET, STREAMS, today=DAY) is None
    assert verp.verify_header(value, new_secret(), STREAMS, today=DAY) is None
    assert verp.verify_header("v1.garbage", SECRET, STREAMS, today=DAY) is None
