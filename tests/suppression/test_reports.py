"""Reading DSNs, ARF reports and SES events: who and which stream, and that a forgery identifies nobody."""

from __future__ import annotations

import json

from mailinfra.model.schema import StreamKind
from mailinfra.suppression import verp
from mailinfra.suppression.model import FeedbackType, ReportKind
from mailinfra.suppression.reports import parse_message, parse_ses_event
from tests.suppression import samples as s

SECRET = s.new_secret()
CTX = s.context(SECRET)


def parse(raw: bytes, envelope: str | None) -> list:
    return parse_message(raw, envelope_recipient=envelope, context=CTX, today=s.DAY)


def test_postfix_dsn_to_our_return_path() -> None:
    """Postfix bounce(8) DSN: recipient and stream from the VERP token, status and reply from the fields."""
    rp = s.return_path(SECRET, "bob@example.net")
    [report] = parse(s.postfix_dsn(to=rp, recipient="bob@example.net"), rp)
    assert report.kind is ReportKind.BOUNCE and report.verp_verified
    assert (report.recipient, report.stream, report.stream_kind, report.pool) == (
        "bob@example.net", "news", StreamKind.MARKETING, "mkt")
    assert (report.action, report.status) == ("failed", "5.1.1")
    assert report.diagnostic.startswith("550 5.1.1 <bob@example.net>: Recipient address rejected")
    assert report.remote_mta == "mx.example.net" and report.reporter == "mta1.example.com"
    assert report.message_ref == "<20261202120000.4ABC1@mta1.example.com>"


def test_forged_dsn_identifies_nobody() -> None:
    """A DSN to a made-up token (or none) naming a victim is read, but not verified: it suppresses nobody."""
    forged_rp = "b-aaaaaaaaaaaaaaaaaaaaaaa-victim=example.net@bounce.example.com"
    [report] = parse(s.postfix_dsn(to=forged_rp, recipient="victim@example.net"), forged_rp)
    assert report.recipient == "victim@example.net" and not report.verp_verified and report.stream is None
    # A genuine token for one recipient does not vouch for a DSN about another.
    rp = s.return_path(SECRET, "bob@example.net")
    raw = s.postfix_dsn(to=rp, recipient="victim@example.net")
    assert [r.recipient for r in parse(raw, rp)] == ["bob@example.net"]


def test_multi_recipient_dsn_keeps_the_block_of_our_recipient() -> None:
    """RFC 3464's multi-recipient example: with VERP one message has one recipient; the block naming it."""
    rp = s.return_path(SECRET, "wsnell@sdcc13.ucsd.edu")
    [report] = parse(s.rfc3464_multi_recipient(to=rp), rp)
    assert report.recipient == "wsnell@sdcc13.ucsd.edu" and report.verp_verified
    assert (report.action, report.status, report.diagnostic) == ("failed", "5.0.0", "550 user unknown")
    # Without a token every block is reported, none verified.
    reports = parse(s.rfc3464_multi_recipient(to="owner@example.com"), "owner@example.com")
    assert [r.action for r in reports] == ["failed", "delayed", "failed"]
    assert not any(r.verp_verified for r in reports)
    assert reports[0].status == "5.0.0"  # "5.0.0 (permanent failure)": the comment is not part of the code


def test_hashed_token_takes_the_recipient_from_the_dsn() -> None:
    """An h- token (long recipient) is resolved from Final-/Original-Recipient."""
    long = "firstname.middlename.lastname.department@subdivision.example.org"
    rp = s.return_path(SECRET, long, "receipts")
    [report] = parse(s.postfix_dsn(to=rp, recipient=long), rp)
    assert report.verp_verified and report.recipient == long and report.stream == "receipts"


def test_asynchronous_dsn_from_the_receiver() -> None:
    """Accept-then-bounce: the receiver's own MTA sends the DSN later, to the return path it was given."""
    rp = s.return_path(SECRET, "carol@example.org", "reengage")
    raw = s.postfix_dsn(to=rp, recipient="carol@example.org", status="5.2.1",
                        diagnostic="x-unix; mailbox disabled", message_id="<late-1@mx.example.org>")
    [report] = parse(raw, rp)
    assert report.verp_verified and report.status == "5.2.1" and report.stream_kind is StreamKind.BULK


def test_dsn_identified_by_our_header_when_envelope_is_missing() -> None:
    """A DSN relayed without its envelope (e.g. read from a mailbox) is still ours by X-Mailinfra-Id."""
    raw = s.postfix_dsn(to="x@example.com", recipient="bob@example.net",
                        original_headers=f"{verp.HEADER}: {s.header(SECRET, 'bob@example.net')}\n")
    [report] = parse(raw, None)
    assert report.verp_verified and report.stream == "news"


def test_non_rfc_bounce_goes_to_flufl_bounce() -> None:
    """A qmail failure notice (no multipart/report): flufl.bounce finds the address, the text the code."""
    rp = s.return_path(SECRET, "dave@example.org")
    [report] = parse(s.qmail_bounce(to=rp, recipient="dave@example.org"), rp)
    assert report.recipient == "dave@example.org" and report.verp_verified
    assert (report.action, report.status) == ("failed", "5.1.1")


def test_auto_reply_is_no_report() -> None:
    raw = b"From: bob@example.net\r\nTo: x@bounce.example.com\r\nSubject: Out of office\r\n\r\nAway.\r\n"
    assert parse(raw, "x@bounce.example.com") == []


def test_rfc5965_example_refers_to_no_message_of_ours() -> None:
    """RFC 5965 Appendix B's example (a spammer's mail, not ours): parsed, never verified."""
    [report] = parse(s.arf(mail_from="somespammer@example.net", rcpt_to="user@example.com"), s.FBL)
    assert report.kind is ReportKind.COMPLAINT and report.feedback_type is FeedbackType.ABUSE
    assert report.recipient == "user@example.com" and not report.verp_verified
    assert report.ip == "192.0.2.1"


def test_yahoo_cfl_by_original_mail_from() -> None:
    [report] = parse(s.yahoo_cfl(SECRET, "erin@yahoo.com"), s.FBL)
    assert report.verp_verified and report.recipient == "erin@yahoo.com" and report.stream == "news"
    assert report.reporter == "Yahoo!-Mail-Feedback/2.0" and report.message_ref == "<cfl-1@arf.mail.yahoo.com>"


def test_field_names_are_case_insensitive() -> None:
    """RFC 5322 §1.2.2: "Feedback-type" is "Feedback-Type"; some loops write it so."""
    rp = s.return_path(SECRET, "erin@yahoo.com")
    raw = s.arf(mail_from=rp, feedback_type="fraud").replace(b"Feedback-Type:", b"feedback-type:").replace(
        b"Original-Mail-From:", b"ORIGINAL-MAIL-FROM:")
    [report] = parse(raw, s.FBL)
    assert report.feedback_type is FeedbackType.FRAUD and report.verp_verified


def test_microsoft_jmrp_by_our_header() -> None:
    [report] = parse(s.microsoft_jmrp(SECRET, "frank@outlook.com", "reengage"), s.FBL)
    assert report.verp_verified and report.recipient == "frank@outlook.com" and report.stream == "reengage"


def test_comcast_scrubbed_report_still_identified() -> None:
    """Comcast removes the recipient from the report; our header's encoded recipient survives."""
    [report] = parse(s.comcast_scrubbed(SECRET, "gina@comcast.net"), s.FBL)
    assert report.verp_verified and report.recipient == "gina@comcast.net"


def test_forged_arf_identifies_nobody() -> None:
    """An ARF report whose token is another secret's, or altered, names its victim but is not verified."""
    raw = s.comcast_scrubbed(s.new_secret(), "victim@comcast.net")
    assert [r.verp_verified for r in parse(raw, s.FBL)] == [False]
    value = s.header(SECRET, "bob@example.net")
    other = s.header(SECRET, "victim@example.net")
    spliced = ".".join([*value.split(".")[:2], other.split(".")[2]])
    raw = s.arf(original_headers=f"{verp.HEADER}: {spliced}\nTo: victim@example.net\n")
    [report] = parse(raw, s.FBL)
    assert not report.verp_verified and report.recipient == "victim@example.net"


def test_feedback_types() -> None:
    """RFC 5965 §7.3 types are read as such; an unregistered one is `other`."""
    for value, expected in [("not-spam", FeedbackType.NOT_SPAM), ("fraud", FeedbackType.FRAUD),
                            ("Virus", FeedbackType.VIRUS), ("opt-out", FeedbackType.OTHER)]:
        [report] = parse(s.arf(feedback_type=value), s.FBL)
        assert report.feedback_type is expected


def test_ses_bounce_through_sns_envelope() -> None:
    """An SQS body from SNS (Type Notification, Message = the event JSON)."""
    event = s.ses_bounce("Hank@Example.com", tags={"mailinfra-stream": ["receipts"]})
    body = json.dumps({"Type": "Notification", "Message": json.dumps(event)})
    [report] = parse_ses_event(body, context=CTX, today=s.DAY)
    assert (report.recipient, report.stream, report.action, report.status) == (
        "hank@example.com", "receipts", "failed", "5.1.1")
    assert report.verp_verified and report.message_ref.startswith("ses:0100017d-fea5")


def test_ses_stream_from_our_header() -> None:
    headers = [{"name": verp.HEADER, "value": s.header(SECRET, "hank@example.com", "news")}]
    [report] = parse_ses_event(s.ses_bounce("hank@example.com", headers=headers), context=CTX, today=s.DAY)
    assert report.stream == "news" and report.stream_kind is StreamKind.MARKETING


def test_ses_complaint() -> None:
    [report] = parse_ses_event(s.ses_complaint("ivy@example.com", feedback=None), context=CTX, today=s.DAY)
    assert report.kind is ReportKind.COMPLAINT and report.feedback_type is FeedbackType.ABUSE
    [report] = parse_ses_event(s.ses_complaint("ivy@example.com", feedback="not-spam"), context=CTX, today=s.DAY)
    assert report.feedback_type is FeedbackType.NOT_SPAM
