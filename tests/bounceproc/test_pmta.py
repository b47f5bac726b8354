"""PowerMTA accounting records into reports, on records of the documented shape (PowerMTA User's Guide,
"Accounting Files": one header line naming every column, the record type first, fields a record type does
not have left empty). PowerMTA itself cannot run here."""

from __future__ import annotations

from mailinfra.bounceproc.pmta import read_records, record_reports
from mailinfra.suppression.model import FeedbackType, ReportKind

# The guide's example layout (records d,b in one file) extended with the columns our reader uses.
ACCT = "\n".join([
    'type,timeLogged,orig,rcpt,vmta,dsnAction,dsnStatus,dsnDiag,dsnMta,bounceCat,jobId,envId,feedbackType,userAgent',
    'd,1764676800,b-x@bounce.example.com,ok@gmail.com,tx-ip10,relayed,2.0.0 (success),smtp;250 ok,'
    'mx.gmail.com,,j1,e1,,',
    'b,1764676801,b-x@bounce.example.com,Gone@Gmail.com,tx-ip10,failed,'
    '5.1.1 (bad destination mailbox address),"smtp;550 5.1.1 no such user, sorry",mx.gmail.com,bad-mailbox,j1,e2,,',
    'rb,1764676802,b-x@bounce.example.com,late@yahoo.com,tx-ip10,failed,5.2.1,'
    'smtp;550 5.2.1 disabled,mx.yahoo.com,inactive-mailbox,j1,e3,,',
    'f,1764676803,b-x@bounce.example.com,angry@yahoo.com,tx-ip10,,,,,,j1,e4,abuse,Yahoo!-Mail-Feedback/2.0',
    'b,1764676804,b-x@bounce.example.com,someone@gmail.com,other-vmta,failed,5.1.1,smtp;550,mx,bad-mailbox,j2,e5,,',
    '',
])


def test_bounce_remote_bounce_and_feedback_records_become_reports() -> None:
    """b and rb become bounces, f a complaint; d records and VMTAs that are not ours are skipped; quoted
    commas stay inside their field (RFC 4180)."""
    reports = list(record_reports(read_records(ACCT), {"tx-ip10": "receipts"}, {"receipts": "transactional"},
                                  {"tx-ip10": "tx"}))
    assert [(r.kind, r.recipient) for r in reports] == [
        (ReportKind.BOUNCE, "gone@gmail.com"), (ReportKind.BOUNCE, "late@yahoo.com"),
        (ReportKind.COMPLAINT, "angry@yahoo.com")]
    assert reports[0].status == "5.1.1"  # PowerMTA's "5.1.1 (bad destination mailbox address)"
    assert reports[0].diagnostic == "smtp;550 5.1.1 no such user, sorry"
    assert reports[0].action == "failed" and reports[0].pool == "tx" and reports[0].verp_verified
    assert reports[2].feedback_type is FeedbackType.ABUSE
    assert len({r.dedupe_key for r in reports}) == 3
