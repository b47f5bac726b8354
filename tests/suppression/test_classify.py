"""Classification of real receiver replies: address-level failures suppress, blocks about us never do."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailinfra.suppression.classify import RuleError, Severity, classify, load_rules
from mailinfra.suppression.model import BounceClass as C

H, S, P, N = Severity.HARD, Severity.SOFT, Severity.POOL, Severity.NONE

# (Status field, Diagnostic-Code as the provider sends it, class, severity). The replies are the
# providers' published or widely quoted texts; the code column is what RFC 3463 makes of them.
CASES = [
    # Gmail
    ("5.1.1", "smtp; 550-5.1.1 The email account that you tried to reach does not exist. Please try "
     "double-checking the recipient's email address for typos", C.BAD_MAILBOX, H),
    ("5.2.2", "smtp; 552-5.2.2 The email account that you tried to reach is over quota", C.QUOTA, S),
    ("5.7.1", "smtp; 550-5.7.1 Our system has detected that this message is likely unsolicited mail",
     C.SPAM_RELATED, P),
    ("5.7.26", "smtp; 550-5.7.26 This mail has been blocked because the sender is unauthenticated. Gmail "
     "requires all senders to authenticate with either SPF or DKIM.", C.POLICY, P),
    ("4.7.28", "smtp; 421-4.7.28 Gmail has detected an unusual rate of unsolicited mail", C.SPAM_RELATED, P),
    # Microsoft (Outlook.com): mailbox unavailable comes as 5.5.0, blocks as 5.7.1 with an S-code
    ("5.0.0", "smtp; 550 5.5.0 Requested action not taken: mailbox unavailable (S2017062302)", C.BAD_MAILBOX, H),
    ("5.7.1", "smtp; 550 5.7.1 Unfortunately, messages from [192.0.2.1] weren't sent. Please contact your "
     "Internet service provider since part of their network is on our block list (S3150)", C.REPUTATION, P),
    # Yahoo
    ("5.0.0", "smtp; 554 delivery error: dd This user doesn't have a yahoo.com account (bob@yahoo.com) "
     "[0] - mta1.mail.example.yahoo.com", C.BAD_MAILBOX, H),
    ("5.0.0", "smtp; 554 delivery error: dd Sorry your message to bob@yahoo.com cannot be delivered. This "
     "mailbox is disabled (554.30)", C.INACTIVE_MAILBOX, H),
    ("4.7.0", "smtp; 421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected volume "
     "or user complaints", C.REPUTATION, P),
    # Comcast
    ("5.0.0", "smtp; 554 resimta-ch2-18v.sys.comcast.net comcast 192.0.2.1 Comcast block for spam. Please "
     "see http://postmaster.comcast.net/smtp-error-codes.php#BL000000", C.REPUTATION, P),
    # Spamhaus listing as Postfix receivers word it: a 5.7.1 about our IP, never the recipient
    ("5.7.1", "smtp; 554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org",
     C.REPUTATION, P),
    # 5.7.x that mention the mailbox still never suppress (issue 12; Postal #266, #1243)
    ("5.7.1", "smtp; 550 5.7.1 <bob@example.net>: Recipient address rejected: Access denied", C.POLICY, P),
    ("5.7.13", "smtp; 525 5.7.13 User account disabled", C.POLICY, P),
    # Postfix receivers, RFC 3463 address-level codes
    ("5.1.1", "smtp; 550 5.1.1 <bob@example.net>: Recipient address rejected: User unknown in virtual "
     "mailbox table", C.BAD_MAILBOX, H),
    ("5.1.2", "smtp; 550 5.1.2 <bob@nonexistent.example>: Recipient address rejected: Domain not found",
     C.BAD_DOMAIN, H),
    ("5.1.10", "smtp; 556 5.1.10 Recipient address has null MX", C.BAD_DOMAIN, H),
    ("5.1.6", "smtp; 550 5.1.6 Recipient no longer on server", C.INACTIVE_MAILBOX, H),
    ("5.2.1", "x-unix; mailbox disabled", C.INACTIVE_MAILBOX, H),
    ("5.1.3", "smtp; 501 5.1.3 Bad recipient address syntax", C.BAD_MAILBOX, H),
    # Not about the mailbox
    ("5.4.4", "X-Postfix; Host or domain name not found. Name service error for name=example.invalid "
     "type=MX: Host not found", C.ROUTING, N),
    ("4.4.7", "X-Postfix; delivery temporarily suspended: connect to mx.example.net[198.51.100.25]:25: "
     "Connection timed out", C.NO_ANSWER, N),
    ("4.0.0", "smtp; 426 connection timed out", C.OTHER, N),
    ("5.3.4", "smtp; 552 5.3.4 Message size exceeds fixed maximum message size", C.MESSAGE, N),
    ("5.1.8", "smtp; 553 5.1.8 <news@example.com>: Sender address rejected: Domain not found", C.POLICY, P),
    # A transient address failure never suppresses at once
    ("4.2.2", "smtp; 452 4.2.2 Mailbox full", C.QUOTA, S),
    ("4.1.1", "smtp; 450 4.1.1 <bob@example.net>: Recipient address rejected: unverified address",
     C.INACTIVE_MAILBOX, S),
    ("4.0.0", "smtp; 450 user unknown", C.BAD_MAILBOX, S),
    # A generic permanent failure with no known text: nothing
    ("5.0.0", "smtp; 550 Administrative prohibition", C.OTHER, N),
]


@pytest.mark.parametrize(("status", "diagnostic", "cls", "severity"), CASES,
                         ids=[f"{c[0]}-{c[1][6:40]}" for c in CASES])
def test_provider_replies(status: str, diagnostic: str, cls: C, severity: Severity) -> None:
    verdict = classify(status, diagnostic.partition("; ")[2])
    assert (verdict.cls, verdict.severity) == (cls, severity), verdict.rule


def test_enhanced_code_in_the_text_refines_a_generic_status() -> None:
    """Postfix writes Status 5.0.0 when the reply carried its code only in the text; the text's wins."""
    assert classify("5.0.0", "550 5.1.1 no such user").status == "5.1.1"
    assert classify("5.0.0", "550 4.2.2 mailbox full").status == "5.2.2"  # the declared class stays
    assert classify("5.2.2", "552 5.1.1 odd").status == "5.2.2"  # a specific Status is kept


def test_bad_rule_file_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[rule]]\nid = "x"\nclass = "nonsense"\nseverity = "hard"\n')
    with pytest.raises(RuleError, match=r"bad.toml: rule x: received .*expected a class"):
        load_rules((bad,))
    missing = tmp_path / "missing.toml"
    missing.write_text('[[rule]]\nid = "y"\nseverity = "hard"\n')
    with pytest.raises(RuleError, match=r"missing.toml: rule y: class: received nothing"):
        load_rules((missing,))
