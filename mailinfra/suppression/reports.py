"""Read DSNs (RFC 3464), ARF reports (RFC 5965) and SES events into Reports (pure: stdlib `email`).

Which recipient and which stream a report is about comes from one of our own signed tokens (verp.py), never
from what the report claims: a DSN is identified by the VERP return path it was delivered to (the envelope
recipient the bounce host's Postfix hands over), an ARF report by the original message it carries (our
X-Mailinfra-Id header, else its Return-Path or the report's Original-Mail-From, both our VERP return path)
because feedback loops such as Comcast's scrub the recipient's address. A report whose token does not verify
still comes back (for the lab report and the logs) with verp_verified=False, and policy.decide ignores it.

Non-RFC bounces (no multipart/report) go to flufl.bounce's detectors (the Mailman project's, maintained:
6.0.0, 2026-10) for the failed addresses; the status, if any, is the enhanced code in the text.
"""

from __future__ import annotations

import datetime as dt
import email
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any

from mailinfra.model.schema import StackConfig, StreamKind
from mailinfra.suppression import verp
from mailinfra.suppression.address import try_normalise
from mailinfra.suppression.model import FeedbackType, Report, ReportKind

_ENHANCED = re.compile(r"(?<![\d.])([45]\.\d{1,3}\.\d{1,3})(?![\d.])")
_TEXT_LIMIT = 4096  # of a non-RFC bounce's text searched for a status and kept as the diagnostic


@dataclass(frozen=True)
class Context:
    """What the processor knows of the stack: secrets (current first), streams and their kinds and pools."""

    secrets: tuple[bytes, ...]
    streams: Mapping[str, StreamKind]
    pools: Mapping[str, str | None] = field(default_factory=dict)
    fbl_addresses: frozenset[str] = frozenset()
    max_age: dt.timedelta = verp.DEFAULT_MAX_AGE


def context_from_config(config: StackConfig, secrets: Iterable[bytes]) -> Context:
    """The processor's Context for a stack: a stream's pool is its own (a marketing stream's active tier)."""
    pools = {key: stream.pool or (stream.tiers.active if stream.tiers else None)
             for key, stream in config.streams.items()}
    return Context(
        secrets=tuple(secrets),
        streams={key: stream.kind for key, stream in config.streams.items()},
        pools=pools,
        fbl_addresses=frozenset(config.bounces.feedback_addresses),
        max_age=dt.timedelta(days=config.bounces.suppression.token_max_age_days),
    )


def message_key(raw: bytes, message: Message | None = None) -> str:
    """The report's identity for dedupe: its Message-ID, else a digest of its bytes."""
    msg = message if message is not None else email.message_from_bytes(raw)
    mid = (msg.get("Message-ID") or "").strip()
    return mid or "sha256:" + hashlib.sha256(raw).hexdigest()[:32]


def parse_message(raw: bytes, *, envelope_recipient: str | None, context: Context,
                  today: dt.date) -> list[Report]:
    """The reports one received message makes: per failed recipient of a DSN, one per ARF report, the
    failed addresses of a non-RFC bounce. [] for a message that is none of these (an auto-reply)."""
    # The compat32 default policy on purpose: several times faster than email.policy.default, and the
    # report fields are read as plain strings anyway.
    msg = email.message_from_bytes(raw)
    ref = message_key(raw, msg)
    if msg.get_content_type() == "multipart/report":
        report_type = str(msg.get_param("report-type") or "").lower()
        if report_type == "delivery-status":
            return _dsn_reports(msg, ref, envelope_recipient, context, today)
        if report_type == "feedback-report":
            return _arf_reports(msg, ref, context, today)
    if envelope_recipient and envelope_recipient.lower() in context.fbl_addresses:
        original = _attached_original(msg)
        if original is not None:  # a feedback loop that sends the complaint as a plain forward
            return [_complaint(msg, ref, original, {}, context, today=today, kind=FeedbackType.ABUSE)]
        return []
    return _plain_bounce(msg, ref, envelope_recipient, context, today)


# ---------------------------------------------------------------- RFC 3464 delivery status notifications


def _dsn_reports(msg: Message, ref: str, envelope_recipient: str | None, context: Context,
                 today: dt.date) -> list[Report]:
    per_message, per_recipient = _dsn_fields(msg)
    original = _attached_original(msg)
    candidates = [addr for block in per_recipient for addr in _recipients_of(block)]
    if original is not None:
        candidates += [addr for _, addr in getaddresses(original.get_all("To", []))]
    token = _token_for(envelope_recipient, original, context, today, candidates)
    reporter = _type_value(per_message.get("Reporting-MTA", ""))
    reports: list[Report] = []
    for block in _blocks_for(per_recipient, token):
        claimed = next(iter(_recipients_of(block)), "")
        recipient = token.recipient if token else (try_normalise(claimed) or claimed)
        if not recipient:
            continue
        reports.append(Report(
            kind=ReportKind.BOUNCE, recipient=recipient, stream=token.stream if token else None,
            stream_kind=context.streams.get(token.stream) if token else None,
            pool=context.pools.get(token.stream) if token else None,
            action=(block.get("Action") or "").strip().lower() or None,
            status=_status(block.get("Status")), diagnostic=_type_value(block.get("Diagnostic-Code", "")),
            reporter=reporter, message_ref=ref, verp_verified=token is not None,
            remote_mta=_type_value(block.get("Remote-MTA", "")),
            arrival=_date(per_message.get("Arrival-Date")),
        ))
    return reports


def _dsn_fields(msg: Message) -> tuple[Message, list[Message]]:
    """The per-message fields and the per-recipient blocks of the message/delivery-status part.

    The stdlib parser reads message/delivery-status into one Message per block (RFC 3464 §2.1: blocks
    separated by blank lines), the first being the per-message fields."""
    for part in msg.walk():
        if part.get_content_type() == "message/delivery-status":
            payload = part.get_payload()
            blocks = [b for b in payload if isinstance(b, Message)] if isinstance(payload, list) else []
            if not blocks and isinstance(payload, str):
                blocks = [email.message_from_string(chunk) for chunk in re.split(r"\r?\n\r?\n", payload.strip())]
            if blocks:
                return blocks[0], [b for b in blocks[1:] if b.get("Final-Recipient") or b.get("Action")]
    return Message(), []


def _blocks_for(blocks: list[Message], token: verp.VerpToken | None) -> list[Message]:
    """The blocks about the token's recipient: the ones naming it, else (a forward changed the final
    recipient) all of them, folded into the one failed block if any failed."""
    if token is not None:
        named = [b for b in blocks if token.recipient in {try_normalise(a) for a in _recipients_of(b)}]
        if named:
            return named[:1]
        failed = [b for b in blocks if (b.get("Action") or "").strip().lower() == "failed"]
        return (failed or blocks)[:1]
    return blocks


def _recipients_of(block: Message) -> list[str]:
    # RFC 3464 §2.3.1-2: "Original-Recipient: rfc822;addr" (what we sent to) before "Final-Recipient".
    found = [_type_value(block.get(name, "")) for name in ("Original-Recipient", "Final-Recipient")]
    return [addr for addr in found if addr]


# ---------------------------------------------------------------- RFC 5965 abuse reports


def _arf_reports(msg: Message, ref: str, context: Context, today: dt.date) -> list[Report]:
    fields = _feedback_fields(msg)
    kind = _feedback_type(fields.get("Feedback-Type", ""))
    original = _attached_original(msg)
    return [_complaint(msg, ref, original, fields, context, today=today, kind=kind)]


def _complaint(msg: Message, ref: str, original: Message | None, fields: Mapping[str, str], context: Context, *,
               today: dt.date, kind: FeedbackType) -> Report:
    candidates = [addr for _, addr in getaddresses([fields.get("Original-Rcpt-To", "")])]
    if original is not None:
        candidates += [addr for _, addr in getaddresses(original.get_all("To", []))]
    # RFC 5965 §3.5: Original-Mail-From is the original's envelope sender (our VERP return path).
    token = _token_for(fields.get("Original-Mail-From"), original, context, today, candidates)
    claimed = next((try_normalise(c) for c in candidates if try_normalise(c)), None) or ""
    reporter = fields.get("User-Agent") or fields.get("Reporting-MTA") or _domain_of(msg.get("From", ""))
    return Report(
        kind=ReportKind.COMPLAINT, recipient=token.recipient if token else claimed,
        stream=token.stream if token else None,
        stream_kind=context.streams.get(token.stream) if token else None,
        pool=context.pools.get(token.stream) if token else None,
        feedback_type=kind, reporter=reporter.strip(), message_ref=ref, verp_verified=token is not None,
        ip=(fields.get("Source-IP") or "").strip() or None, arrival=_date(fields.get("Arrival-Date")),
    )


def _feedback_fields(msg: Message) -> dict[str, str]:
    """The message/feedback-report part's fields. The stdlib parser reads an unknown message/* part as a
    sub-message whose headers are those fields; a parser that kept it as text gets them parsed here."""
    for part in msg.walk():
        if part.get_content_type() == "message/feedback-report":
            payload = part.get_payload()
            report = payload[0] if isinstance(payload, list) and payload else None
            if not isinstance(report, Message):
                report = email.message_from_string(str(payload))
            return {name: str(value) for name, value in report.items()}
    return {}


def _feedback_type(value: str) -> FeedbackType:
    try:
        return FeedbackType(value.strip().lower())
    except ValueError:
        return FeedbackType.OTHER


# ---------------------------------------------------------------- non-RFC bounces (flufl.bounce)


def _plain_bounce(msg: Message, ref: str, envelope_recipient: str | None, context: Context,
                  today: dt.date) -> list[Report]:
    from flufl.bounce import all_failures

    temporary, permanent = all_failures(msg)
    if not temporary and not permanent:
        return []
    text = _text_of(msg)
    found = _ENHANCED.search(text)
    status = found[1] if found else ("5.0.0" if permanent else "4.0.0")
    candidates = [a.decode("utf-8", "replace") for a in (*permanent, *temporary)]
    token = _token_for(envelope_recipient, _attached_original(msg), context, today, candidates)
    failed = {try_normalise(a.decode("utf-8", "replace")) for a in permanent}
    reports = []
    for address in candidates:
        recipient = try_normalise(address)
        if recipient is None:
            continue
        verified = token is not None and token.recipient == recipient
        if token is not None and not verified and len(candidates) == 1:
            recipient, verified = token.recipient, True  # a forward: the bounce names the final address
        reports.append(Report(
            kind=ReportKind.BOUNCE, recipient=recipient, stream=token.stream if verified and token else None,
            stream_kind=context.streams.get(token.stream) if verified and token else None,
            pool=context.pools.get(token.stream) if verified and token else None,
            action="failed" if try_normalise(address) in failed else "delayed", status=status,
            diagnostic=" ".join(text.split())[:500], reporter=_domain_of(msg.get("From", "")),
            message_ref=ref, verp_verified=verified,
        ))
    return reports


def _text_of(msg: Message) -> str:
    for part in msg.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                return payload[:_TEXT_LIMIT].decode(part.get_content_charset() or "utf-8", "replace")
    return ""


# ---------------------------------------------------------------- SES events (SNS -> SQS)


def parse_ses_event(body: str | Mapping[str, Any], *, context: Context, today: dt.date) -> list[Report]:
    """The reports of one SES event notification (an SQS message body: the SNS envelope or the raw event).

    SES publishes to our own topic only (the components' topic policy), and only SES may: the channel is
    authenticated, so its recipients are taken as verified. The stream comes from our X-Mailinfra-Id header
    when SES includes headers, else from the `mailinfra-stream` message tag."""
    event = json.loads(body) if isinstance(body, str) else dict(body)
    if event.get("Type") == "Notification" and isinstance(event.get("Message"), str):
        event = json.loads(event["Message"])
    kind = event.get("eventType") or event.get("notificationType")
    mail = event.get("mail") or {}
    ref = "ses:" + str(event.get("bounce", event.get("complaint", {})).get("feedbackId") or mail.get("messageId"))
    stream = _ses_stream(mail, context, today)
    common: dict[str, Any] = {
        "stream": stream, "stream_kind": context.streams.get(stream) if stream else None,
        "pool": context.pools.get(stream) if stream else None, "message_ref": ref, "verp_verified": True,
        "ip": mail.get("sourceIp"),
    }
    reports: list[Report] = []
    if kind == "Bounce":
        bounce = event.get("bounce") or {}
        permanent = bounce.get("bounceType") == "Permanent"
        for rcpt in bounce.get("bouncedRecipients", []):
            address = try_normalise(str(rcpt.get("emailAddress", "")))
            if address is None:
                continue
            reports.append(Report(
                kind=ReportKind.BOUNCE, recipient=address,
                # SES's Permanent is RFC 3464's failed; Transient bounces are retried by SES itself.
                action=(rcpt.get("action") or ("failed" if permanent else "delayed")).lower(),
                status=rcpt.get("status") or ("5.0.0" if permanent else "4.0.0"),
                diagnostic=str(rcpt.get("diagnosticCode") or bounce.get("bounceSubType") or ""),
                reporter=str(bounce.get("reportingMTA") or "amazonses.com"), **common))
    elif kind == "Complaint":
        complaint = event.get("complaint") or {}
        # SES: complaintFeedbackType is the ARF Feedback-Type when the provider sent one; a complaint without
        # one is still a complaint (the recipient pressed "spam").
        feedback = _feedback_type(str(complaint.get("complaintFeedbackType") or "abuse"))
        for rcpt in complaint.get("complainedRecipients", []):
            address = try_normalise(str(rcpt.get("emailAddress", "")))
            if address is not None:
                reports.append(Report(kind=ReportKind.COMPLAINT, recipient=address, feedback_type=feedback,
                                      reporter=str(complaint.get("userAgent") or "amazonses.com"), **common))
    return reports


def _ses_stream(mail: Mapping[str, Any], context: Context, today: dt.date) -> str | None:
    for header in mail.get("headers", []) or []:
        if str(header.get("name", "")).lower() == verp.HEADER.lower():
            token = verp.verify_header(str(header.get("value", "")), context.secrets, context.streams,
                                       today=today, max_age=context.max_age)
            if token is not None:
                return token.stream
    tagged = (mail.get("tags") or {}).get("mailinfra-stream") or []
    return next((s for s in tagged if s in context.streams), None)


# ---------------------------------------------------------------- shared


def _token_for(return_path: str | None, original: Message | None, context: Context, today: dt.date,
               candidates: list[str]) -> verp.VerpToken | None:
    """Our token for the report: the return path it names, the original's X-Mailinfra-Id header, or the
    original's Return-Path, in that order; None when none verifies."""
    tries: list[str] = [return_path] if return_path else []
    if original is not None:
        header = original.get(verp.HEADER)
        if header:
            token = verp.verify_header(str(header), context.secrets, context.streams, today=today,
                                       max_age=context.max_age)
            if token is not None:
                return token
        tries += [addr for _, addr in getaddresses(original.get_all("Return-Path", []))]
    for address in tries:
        token = verp.verify_return_path(address, context.secrets, context.streams, today=today,
                                        max_age=context.max_age, candidates=candidates)
        if token is not None:
            return token
    return None


def _attached_original(msg: Message) -> Message | None:
    """The original message (message/rfc822) or its headers (text/rfc822-headers) a report carries."""
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype == "message/rfc822":
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                return payload[0]
        if ctype == "text/rfc822-headers":
            raw = part.get_payload(decode=True)
            if isinstance(raw, bytes):
                return email.message_from_bytes(raw)
    return None


def _type_value(value: object) -> str:
    """`rfc822; user@example.com` -> `user@example.com` (RFC 3464 §2.1.2 address-type; diagnostic-type)."""
    text = " ".join(str(value or "").split())
    kind, sep, rest = text.partition(";")
    return rest.strip() if sep and kind.strip().replace("-", "").isalnum() else text


def _status(value: object) -> str | None:
    found = _ENHANCED.search(str(value or "")) or re.search(r"\b2\.\d{1,3}\.\d{1,3}\b", str(value or ""))
    return found[0] if found else None


def _date(value: object) -> dt.datetime | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(str(value))
    except (TypeError, ValueError):
        return None


def _domain_of(header: str) -> str:
    addresses = getaddresses([header])
    return addresses[0][1].rpartition("@")[2].lower() if addresses and addresses[0][1] else ""


__all__ = ["Context", "context_from_config", "message_key", "parse_message", "parse_ses_event"]
