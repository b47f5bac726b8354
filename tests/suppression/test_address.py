"""The suppression key: one spelling per mailbox; the fast path agrees with email-validator everywhere."""

from __future__ import annotations

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mailinfra.suppression.address import BadAddress, normalise_address


def slow(address: str) -> str | None:
    try:
        checked = validate_email(address, check_deliverability=False, allow_smtputf8=True, allow_quoted_local=True)
    except EmailNotValidError:
        return None
    return f"{checked.local_part.lower()}@{(checked.ascii_domain or checked.domain).lower()}"


def fast(address: str) -> str | None:
    try:
        return normalise_address(address)
    except BadAddress:
        return None


ATOM = st.text(alphabet="abcXYZ019!#$%&'*+/=?^_`{|}~-.", min_size=1, max_size=70)
LABEL = st.text(alphabet="abz09-", min_size=1, max_size=66)


@settings(max_examples=500)
@example("0@0.0---a")  # "--" in a label's 3rd and 4th place after a hyphen (RFC 5891 §4.2.3.1), found here
@given(st.one_of(st.emails(), st.builds(lambda local, labels: f"{local}@{'.'.join(labels)}",
                                        ATOM, st.lists(LABEL, min_size=1, max_size=4))))
def test_fast_path_agrees_with_email_validator(address: str) -> None:
    assert fast(address) == slow(address)


@pytest.mark.parametrize(("given_", "key"), [
    ("John.Doe@Example.COM", "john.doe@example.com"),
    ("<bob@example.net>", "bob@example.net"),
    ("josé@bücher.example", "josé@xn--bcher-kva.example"),
    ('"odd user"@example.com', '"odd user"@example.com'),
])
def test_spellings(given_: str, key: str) -> None:
    assert normalise_address(given_) == key


@pytest.mark.parametrize("bad", ["", "bob", "bob@", "a..b@example.com", "bob@example", "bob@host.local",
                                 "x@123.456"])
def test_not_addresses(bad: str) -> None:
    with pytest.raises(BadAddress):
        normalise_address(bad)
