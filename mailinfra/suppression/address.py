"""The suppression key of an address: one spelling per mailbox (pure; email-validator, no DNS)."""

from __future__ import annotations

import re

from email_validator import EmailNotValidError, validate_email

# The common case, decided without email-validator (which costs ~0.4 ms an address): an ASCII dot-atom local
# part (RFC 5322 §3.2.3) at an LDH domain of 2+ labels, each 1-63 octets, not starting or ending with "-", a
# TLD ending in a letter, no special-use or IDNA name, local part <= 64 and address <= 254 octets (RFC 5321
# §4.5.3.1). Everything else (IDN, quoted local parts, UTF-8) goes to email-validator.
# tests/suppression/test_address.py checks that both agree.
_ATOM = r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_TLD = r"(?!-)[a-z0-9-]{0,62}[a-z]"  # email-validator: every TLD ends with a letter
_PLAIN = re.compile(rf"^(?={_ATOM}(?:\.{_ATOM})*@)(.{{1,64}})@((?:{_LABEL}\.)+{_TLD})$")
# Special-use names, and labels with "--" in the 3rd and 4th place (reserved for IDNA, RFC 5891 §4.2.3.1).
_SLOW_DOMAINS = re.compile(r"(^|\.)(arpa|invalid|local|localhost|onion|test)$|(^|\.)[a-z0-9][a-z0-9-]--")


class BadAddress(ValueError):  # noqa: N818 -- a ValueError for one address, named for what it is
    """Not an address (the message says why, from email-validator)."""


def normalise_address(address: str) -> str:
    """`John.Doe@Example.COM` -> `john.doe@example.com`; an IDN domain in its A-label (punycode) form.

    The local part is case-folded although RFC 5321 §2.4 lets a server tell cases apart: no large mailbox
    provider does, and for a suppression list two spellings of one mailbox must be one key (suppressing a
    case variant too errs on the side a sender's reputation wants). No DNS: check_deliverability=False.
    """
    text = address.strip().strip("<>").strip()
    plain = _PLAIN.match(text.lower()) if len(text) <= 254 and text.isascii() else None
    if plain is not None and not _SLOW_DOMAINS.search(plain[2]):
        return f"{plain[1]}@{plain[2]}"
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
