"""Report samples shaped as the RFCs and the feedback-loop providers send them.

Each builder keeps the structure and field spelling of its source (cited) and takes the parts a test varies:
the envelope sender our message had (a signed VERP return path, or anything for a forgery), the original's
headers. The secret is made at test time (never a fixed key in git).
"""

from __future__ import annotations

import datetime as dt
import secrets

from mailinfra.model.schema import StreamKind
from mailinfra.suppression import verp
from mailinfra.suppression.reports import Context

DAY = dt.date(2026, 12, 2)
NOW = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)
STREAMS = {"receipts": StreamKind.TRANSACTIONAL, "news": StreamKind.MARKETING, "reengage": StreamKind.BULK}
RP_DOMAIN = "bounce.example.com"
FBL = "fbl@example.com"


def new_secret() -> bytes:
    return secrets.token_bytes(32)


def context(secret: bytes, *, previous: bytes | None = None) -> Context:
    keys = (secret,) if previous is None else (secret, previous)
    return Context(secrets=keys, streams=STREAMS, pools={"receipts": "tx", "news": "mkt", "reengage": "bulk"},
                   fbl_addresses=frozenset({FBL}))


def return_path(secret: bytes, recipient: str, stream: str = "news", day: dt.date = DAY) -> str:
    return verp.build_return_path(recipient, stream, RP_DOMAIN, secret, day=day)


def header(secret: bytes, recipient: str, stream: str = "news", day: dt.date = DAY) -> str:
    return verp.build_header(recipient, stream, secret, day=day)


def postfix_dsn(*, to: str, recipient: str, status: str = "5.1.1", action: str = "failed",
                diagnostic: str = "smtp; 550 5.1.1 <{r}>: Recipient address rejected: User unknown in virtual "
                                  "mailbox table",
                original_headers: str = "", message_id: str = "<20261202120000.4ABC1@mta1.example.com>") -> bytes:
    """A DSN as Postfix's bounce(8) writes it (multipart/report; report-type=delivery-status: a text part,
    message/delivery-status with X-Postfix-* per-message fields, then text/rfc822-headers for RET=HDRS)."""
    diag = diagnostic.format(r=recipient)
    return f"""Return-Path: <>
From: MAILER-DAEMON@mta1.example.com (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: {to}
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="4ABC1.1764676800/mta1.example.com"
Message-Id: {message_id}
Date: Wed,  2 Dec 2026 12:00:00 +0000 (UTC)

This is a MIME-encapsulated message.

--4ABC1.1764676800/mta1.example.com
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mta1.example.com.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

<{recipient}>: host mx.example.net[198.51.100.25] said: {diag.removeprefix("smtp; ")}

--4ABC1.1764676800/mta1.example.com
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mta1.example.com
X-Postfix-Queue-ID: 4ABC1
X-Postfix-Sender: rfc822; {to}
Arrival-Date: Wed,  2 Dec 2026 11:59:58 +0000 (UTC)

Final-Recipient: rfc822; {recipient}
Original-Recipient: rfc822;{recipient}
Action: {action}
Status: {status}
Remote-MTA: dns; mx.example.net
Diagnostic-Code: {diag}

--4ABC1.1764676800/mta1.example.com
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

From: News <news@example.com>
To: {recipient}
Subject: December news
Message-ID: <news-1@example.com>
{original_headers}
--4ABC1.1764676800/mta1.example.com--
""".replace("\n", "\r\n").encode()


def rfc3464_multi_recipient(*, to: str) -> bytes:
    """RFC 3464 Appendix "Multi-Recipient DSN" (the example's fields and texts; our envelope recipient):
    one failed with 5.0.0 "not a registered gateway user", one delayed, one failed "550 user unknown"."""
    return f"""Date: Fri, 8 Jul 1994 09:21:47 -0400
From: Mail Delivery Subsystem <MAILER-DAEMON@CS.UTK.EDU>
Subject: Returned mail: User unknown
To: {to}
Message-Id: <199407081321.JAA18766@CS.UTK.EDU>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
    boundary="JAA13167.773673707/CS.UTK.EDU"

--JAA13167.773673707/CS.UTK.EDU
content-type: text/plain; charset=us-ascii

   ----- The following addresses had delivery problems -----
<arathib@vnet.ibm.com>  (unrecoverable error)
<wsnell@sdcc13.ucsd.edu>  (unrecoverable error)

--JAA13167.773673707/CS.UTK.EDU
content-type: message/delivery-status

Reporting-MTA: dns; cs.utk.edu

Original-Recipient: rfc822;arathib@vnet.ibm.com
Final-Recipient: rfc822;arathib@vnet.ibm.com
Action: failed
Status: 5.0.0 (permanent failure)
Diagnostic-Code: smtp;  550 'arathib@vnet.IBM.COM' is not a registered gateway user
Remote-MTA: dns; vnet.ibm.com

Original-Recipient: rfc822;johnh@hpnjld.njd.hp.com
Final-Recipient: rfc822;johnh@hpnjld.njd.hp.com
Action: delayed
Status: 4.0.0 (hpnjld.njd.jp.com: host name lookup failure)

Original-Recipient: rfc822;wsnell@sdcc13.ucsd.edu
Final-Recipient: rfc822;wsnell@sdcc13.ucsd.edu
Action: failed
Status: 5.0.0
Diagnostic-Code: smtp; 550 user unknown
Remote-MTA: dns; sdcc13.ucsd.edu

--JAA13167.773673707/CS.UTK.EDU
content-type: message/rfc822

[original message goes here]

--JAA13167.773673707/CS.UTK.EDU--
""".encode()


def rfc3464_simple_timeout(*, to: str, recipient: str = "louisl@larry.slip.umd.edu") -> bytes:
    """RFC 3464 Appendix "Simple DSN": a message given up after 5 days of timeouts (Action: failed,
    Status 4.0.0, "426 connection timed out")."""
    return f"""Date: Thu, 7 Jul 1994 17:16:05 -0400
From: Mail Delivery Subsystem <MAILER-DAEMON@CS.UTK.EDU>
Message-Id: <199407072116.RAA14128@CS.UTK.EDU>
Subject: Returned mail: Cannot send message for 5 days
To: {to}
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
    boundary="RAA14128.773615765/CS.UTK.EDU"

--RAA14128.773615765/CS.UTK.EDU

The original message was received at Sat, 2 Jul 1994 17:10:28 -0400

--RAA14128.773615765/CS.UTK.EDU
content-type: message/delivery-status

Reporting-MTA: dns; cs.utk.edu

Original-Recipient: rfc822;{recipient}
Final-Recipient: rfc822;{recipient}
Action: failed
Status: 4.0.0
Diagnostic-Code: smtp; 426 connection timed out
Last-Attempt-Date: Thu, 7 Jul 1994 17:15:49 -0400

--RAA14128.773615765/CS.UTK.EDU
content-type: message/rfc822

[original message goes here]

--RAA14128.773615765/CS.UTK.EDU--
""".encode()


def qmail_bounce(*, to: str, recipient: str) -> bytes:
    """A qmail-send failure notice (QSBMF, cr.yp.to/proto/qsbmf.txt): no multipart/report at all."""
    return f"""Return-Path: <>
From: MAILER-DAEMON@mx.example.org
To: {to}
Subject: failure notice
Message-ID: <qmail-1@mx.example.org>

Hi. This is the qmail-send program at mx.example.org.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<{recipient}>:
Sorry, no mailbox here by that name. (#5.1.1)

--- Below this line is a copy of the message.

From: news@example.com
To: {recipient}
Subject: December news
""".encode()


def arf(*, feedback_type: str = "abuse", user_agent: str = "SomeGenerator/1.0", mail_from: str = "",
        rcpt_to: str = "", original_headers: str = "", sender: str = "abusedesk@example.com",
        extra_fields: str = "", message_id: str = "<arf-1@example.com>") -> bytes:
    """RFC 5965 Appendix B's example report, with the parts a test varies: Feedback-Type, User-Agent,
    Original-Mail-From/Original-Rcpt-To (empty: left out, as a redacting provider does) and the original's
    headers."""
    fields = [f"Feedback-Type: {feedback_type}", f"User-Agent: {user_agent}", "Version: 1"]
    if mail_from:
        fields.append(f"Original-Mail-From: <{mail_from}>")
    if rcpt_to:
        fields.append(f"Original-Rcpt-To: <{rcpt_to}>")
    fields += ["Arrival-Date: Wed, 2 Dec 2026 10:00:00 +0000", "Reporting-MTA: dns; mail.example.net",
               "Source-IP: 192.0.2.1"]
    if extra_fields:
        fields.append(extra_fields)
    report = "\n".join(fields)
    return f"""From: <{sender}>
Date: Wed, 2 Dec 2026 10:40:36 +0000
Subject: FW: December news
To: <{FBL}>
Message-ID: {message_id}
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report;
     boundary="part1_13d.2e68ed54_boundary"

--part1_13d.2e68ed54_boundary
Content-Type: text/plain; charset="US-ASCII"
Content-Transfer-Encoding: 7bit

This is an email abuse report for an email message received from IP
192.0.2.1 on Wed, 2 Dec 2026 10:00:00 +0000.

--part1_13d.2e68ed54_boundary
Content-Type: message/feedback-report

{report}

--part1_13d.2e68ed54_boundary
Content-Type: message/rfc822
Content-Disposition: inline

From: News <news@example.com>
Received: from mta1.example.com (mta1.example.com [192.0.2.1]) by mail.example.net with ESMTP id
        M63d4137594e46; Wed, 02 Dec 2026 10:00:00 +0000
Subject: December news
MIME-Version: 1.0
Content-type: text/plain
Message-ID: <news-1@example.com>
Date: Wed, 02 Dec 2026 09:59:58 +0000
{original_headers}
Our December news.
--part1_13d.2e68ed54_boundary--
""".encode()


def yahoo_cfl(secret: bytes, recipient: str, stream: str = "news") -> bytes:
    """Yahoo's Complaint Feedback Loop: ARF from feedback@arf.mail.yahoo.com, User-Agent
    Yahoo!-Mail-Feedback/2.0, the original with its DKIM-Signature (CFL keys on d=) and envelope fields."""
    rp = return_path(secret, recipient, stream)
    return arf(user_agent="Yahoo!-Mail-Feedback/2.0", sender="feedback@arf.mail.yahoo.com", mail_from=rp,
               rcpt_to=recipient, message_id="<cfl-1@arf.mail.yahoo.com>",
               original_headers=f"Return-Path: <{rp}>\nTo: {recipient}\nDKIM-Signature: v=1; a=rsa-sha256; "
                                "d=example.com; s=s1; h=from:to:subject; bh=x; b=y\n")


def microsoft_jmrp(secret: bytes, recipient: str, stream: str = "news") -> bytes:
    """Microsoft JMRP (Junk Mail Reporting Program) in ARF: from staff@hotmail.com, a copy of the junked
    message with its headers (X-Mailinfra-Id among them); Original-Rcpt-To given."""
    return arf(user_agent="Microsoft JMRP", sender="staff@hotmail.com", rcpt_to=recipient,
               message_id="<jmrp-1@hotmail.com>",
               original_headers=f"To: {recipient}\n{verp.HEADER}: {header(secret, recipient, stream)}\n")


def comcast_scrubbed(secret: bytes, recipient: str, stream: str = "news") -> bytes:
    """Comcast's feedback loop scrubs the recipient: no Original-Rcpt-To, the To: and Return-Path redacted
    (/work/shared/notes/deliverability.md). Only our own X-Mailinfra-Id header is left to identify it."""
    return arf(user_agent="Comcast FBL", sender="feedbackloop@comcastfbl.senderscore.net",
               message_id="<comcast-1@comcast.net>",
               original_headers=f"To: [redacted]\nReturn-Path: <[redacted]>\n"
                                f"{verp.HEADER}: {header(secret, recipient, stream)}\n")


def ses_bounce(recipient: str, *, bounce_type: str = "Permanent", status: str = "5.1.1",
               headers: list[dict[str, str]] | None = None, tags: dict[str, list[str]] | None = None) -> dict:
    """An SES event-publishing Bounce event (SES Developer Guide, "Contents of event data ... Bounce")."""
    return {
        "eventType": "Bounce",
        "bounce": {
            "bounceType": bounce_type, "bounceSubType": "General",
            "bouncedRecipients": [{"emailAddress": recipient, "action": "failed", "status": status,
                                   "diagnosticCode": f"smtp; 550 {status} user unknown"}],
            "timestamp": "2026-12-02T11:59:38.237Z",
            "feedbackId": "0100017d-fea503bc-7497-49e1-881b-a0379bb037d3-000000",
            "reportingMTA": "dsn; a8-70.smtp-out.amazonses.com",
        },
        "mail": {"timestamp": "2026-12-02T11:59:37.000Z", "source": "news@example.com",
                 "sourceIp": "192.0.2.10", "messageId": "0100017d-aaaa", "destination": [recipient],
                 "headersTruncated": False, "headers": headers or [], "tags": tags or {}},
    }


def ses_complaint(recipient: str, *, feedback: str | None = "abuse", tags: dict[str, list[str]] | None = None
                  ) -> dict:
    complaint: dict = {"complainedRecipients": [{"emailAddress": recipient}],
                       "timestamp": "2026-12-02T12:00:00.000Z", "feedbackId": "0100017d-cccc",
                       "userAgent": "Yahoo!-Mail-Feedback/2.0"}
    if feedback:
        complaint["complaintFeedbackType"] = feedback
    return {"eventType": "Complaint", "complaint": complaint,
            "mail": {"messageId": "0100017d-bbbb", "destination": [recipient], "tags": tags or {}}}
