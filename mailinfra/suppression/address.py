"""The suppression key of an address: one spelling per mailbox (pure; email-validator, no DNS)."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email


class BadAddress(ValueError):  # noqa: N818 -- a ValueError for one address, named for what it is
    """Not an address (the message says why, from email-validator)."""


def normalise_address(address: str) -> str:
    """`John.Doe@Example.COM` -> `john.doe@example.com`; an IDN domain in its A-label (punycode) form.

    The local part is case-folded although RFC 5321 §2.4 lets a server tell cases apart: no large mailbox
    provider does, and for a suppression list two spellings of one mailbox must be one key (suppressing a
    case variant too errs on the side a sender's reputation wants). No DNS: check_deliverability=False.
    """
    text = address.strip().strip("<>").strip()
    try:
        checked = validate_email(text, check_deliverability=False, allow_smtputf8=True,
                                 allow_quoted_local=True, allow_domain_literal=False)
    except EmailNotValidError as exc:
        raise BadAddress(f"{address!r} is not an email address ({exc})") from None
    domain = checked.ascii_domain or checked.domain
    return f"{checked.local_part.lower()}@{domain.lower()}"


def try_normalise(address: str) -> str | None:
    """`normalise_address`, or None for a string that is no address (reports carry junk too)."""
    try:
        return normalise_address(address)
    except BadAddress:
        return None
