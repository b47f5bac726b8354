"""What a simulated provider sends back after accepting a message: an asynchronous DSN (RFC 3464) to the
return path, or an ARF complaint (RFC 5965) to the sender's FBL address, delivered by MX like a provider
would (inside the lab namespace, whose DNS is the lab's).

- DSN: multipart/report; report-type=delivery-status: a human part, message/delivery-status (Reporting-MTA,
  per-recipient Final-Recipient, Action: failed, Status, Diagnostic-Code), then the original's headers
  (text/rfc822-headers, RET=HDRS), sent with the null reverse path (RFC 5321 §4.5.5).
- ARF: multipart/report; report-type=feedback-report: a human part, message/feedback-report (Feedback-Type,
  User-Agent, Version, Original-Mail-From and Original-Rcpt-To unless scrubbed), then the original. A
  scrubbing provider (Comcast's loop, /work/shared/notes/deliverability.md) removes the recipient everywhere:
  no Original-Rcpt-To, the original's To redacted and its envelope fields left out.
"""

from __future__ import annotations

import email
import smtplib
from email.message import Message
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formatdate, make_msgid

# Recipient local parts the providers treat specially after accepting (a lab convention, like `unknown`).
BOUNCE_LATER = "bounce-later"  # accepted, then a 5.1.1 DSN (the mailbox was removed in between)
MAILBOX_FULL = "full"  # accepted, then a 5.2.2 DSN (mailbox full: a soft failure)
COMPLAIN = "complain"  # accepted, then the recipient presses "this is spam": an ARF report


def build_dsn(*, reporting_mta: str, recipient: str, status: str, diagnostic: str, original: bytes,
              envelope_to: str) -> bytes:
    report = MIMEMultipart("report", report_type="delivery-status")
    report["From"] = f"MAILER-DAEMON@{reporting_mta}"
    report["To"] = envelope_to
    report["Subject"] = "Delivery Status Notification (Failure)"
    report["Date"] = formatdate()
    report["Message-ID"] = make_msgid(domain=reporting_mta)
    report["Auto-Submitted"] = "auto-replied"
    report.attach(MIMEText(f"Your message to {recipient} could not be delivered.\n\n{diagnostic}\n"))
    # RFC 3464 §2.1: one per-message block, then one block per recipient. The email package holds a
    # message/delivery-status body as a list of header blocks (its generator flattens each in turn; a plain
    # string payload fails there), so each block is a Message of its own.
    status_part = MIMEBase("message", "delivery-status")
    per_message = Message()
    per_message["Reporting-MTA"] = f"dns; {reporting_mta}"
    per_recipient = Message()
    per_recipient["Final-Recipient"] = f"rfc822; {recipient}"
    per_recipient["Action"] = "failed"
    per_recipient["Status"] = status
    per_recipient["Diagnostic-Code"] = f"smtp; {diagnostic}"
    status_part.set_payload([per_message, per_recipient])
    report.attach(status_part)
    headers = MIMEBase("text", "rfc822-headers")
    headers.set_payload(original.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0].decode("ascii", "replace"))
    report.attach(headers)
    return report.as_bytes()


def build_arf(*, provider: str, domain: str, fbl_address: str, mail_from: str, recipient: str,
              original: bytes, scrubbed: bool) -> bytes:
    report = MIMEMultipart("report", report_type="feedback-report")
    report["From"] = f"feedback@{domain}"
    report["To"] = fbl_address
    report["Subject"] = "Complaint about message"
    report["Date"] = formatdate()
    report["Message-ID"] = make_msgid(domain=domain)
    report.attach(MIMEText(f"This is an email abuse report for a message received by {provider}.\n"))
    fields = ["Feedback-Type: abuse", f"User-Agent: {provider}-lab-feedback/1.0", "Version: 1"]
    if not scrubbed:
        fields += [f"Original-Mail-From: <{mail_from}>", f"Original-Rcpt-To: <{recipient}>"]
    feedback = MIMEBase("message", "feedback-report")
    feedback.set_payload("\n".join(fields) + "\n")
    report.attach(feedback)
    message = email.message_from_bytes(original)
    if scrubbed:
        for name in ("To", "Cc", "Delivered-To"):
            if name in message:
                message.replace_header(name, "[redacted]")
    attached = MIMEBase("message", "rfc822")
    attached.attach(message)
    report.attach(attached)
    return report.as_bytes()


def mx_host(domain: str) -> str:
    """The most preferred MX of `domain` (the lab DNS answers inside the namespace)."""
    import dns.resolver

    answers = sorted(dns.resolver.resolve(domain, "MX"), key=lambda r: r.preference)
    return str(answers[0].exchange).rstrip(".")


def send_by_mx(*, source: str, helo: str, sender: str, recipient: str, raw: bytes) -> None:
    host = mx_host(recipient.rpartition("@")[2])
    with smtplib.SMTP(host, 25, source_address=(source, 0), local_hostname=helo, timeout=30) as client:
        client.sendmail(sender, [recipient], raw)


def original_of(raw: bytes) -> Message:
    return email.message_from_bytes(raw)
