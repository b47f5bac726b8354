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
import functools
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesParser
from email.utils import getaddresses
from typing import TYPE_CHECKING, Any

from mailinfra.model.kinds import StreamKind
from mailinfra.suppression import verp
from mailinfra.suppression.address import try_normalise
from mailinfra.suppression.model import FeedbackType, Report, ReportKind

if TYPE_CHECKING:  # the schema (pydantic) is not on the hosts: mailinfra.mta.host_code
    from mailinfra.model.schema import StackConfig

_HEADERS = BytesParser()
_REPORT_TYPE = re.compile(r'report-type\s*=\s*"?([A-Za-z0-9-]+)', re.IGNORECASE)
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
    if msg.get_content_maintype() == "multipart" and msg.get_content_subtype() == "report":
        # RFC 6522 §3: the report-type parameter; read with a regexp (Message.get_param re-parses every
        # parameter, a third of the cost of reading a report).
        found = _REPORT_TYPE.search(str(msg.get("Content-Type", "")))
        report_type = found[1].lower() if found else ""
        if report_type == "delivery-status":
            return _dsn_reports(msg, ref, envelope_recipient, context, today)
        if report_type == "feedback-report":
            return _arf_reports(msg, ref, context, today)
    if envelope_recipient and envelope_recipient.lower() in context.fbl_addresses:
        original = _lazy(_parts(msg))
        if original() is not None:  # a feedback loop that sends the complaint as a plain forward
            return [_complaint(msg, ref, original, {}, context, today=today, kind=FeedbackType.ABUSE)]
        return []
    return _plain_bounce(msg, ref, envelope_recipient, context, today)


# ---------------------------------------------------------------- RFC 3464 delivery status notifications


def _dsn_reports(msg: Message, ref: str, envelope_recipient: str | None, context: Context,
                 today: dt.date) -> list[Report]:
    parts = _parts(msg)
    per_message, per_recipient = _dsn_fields(parts)
    original = _lazy(parts)

    def candidates() -> list[str]:
        found = [addr for block in per_recipient for addr in _recipients_of(block)]
        attached = original()
        if attached is not None:
            found += [addr for _, addr in getaddresses(attached.get_all("To", []))]
        return found

    token = _token_for(envelope_recipient, original, context, today, candidates)
    reporter = _type_value(per_message.get("reporting-mta", ""))
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
            action=block.get("action", "").strip().lower() or None,
            status=_status(block.get("status")), diagnostic=_type_value(block.get("diagnostic-code", "")),
            reporter=reporter, message_ref=ref, verp_verified=token is not None,
            remote_mta=_type_value(block.get("remote-mta", "")),
            arrival=per_message.get("arrival-date", "").strip(),
        ))
    return reports


def _parts(msg: Message) -> list[tuple[str, Message]]:
    """(content type, part) of a report's top-level parts: reports are one level deep (RFC 6522 §3)."""
    payload = msg.get_payload()
    parts = payload if isinstance(payload, list) else []
    return [(part.get_content_type(), part) for part in parts if isinstance(part, Message)]


Fields = dict[str, str]


def _fields(block: Message) -> Fields:
    """A block's fields by lower-cased name (the first of each, as Message.get), read once: Message.get
    scans every header per call."""
    fields: Fields = {}
    for name, value in block.items():
        fields.setdefault(name.lower(), str(value))
    return fields


def _dsn_fields(parts: list[tuple[str, Message]]) -> tuple[Fields, list[Fields]]:
    """The per-message fields and the per-recipient blocks of the message/delivery-status part.

    The stdlib parser reads message/delivery-status into one Message per block (RFC 3464 §2.1: blocks
    separated by blank lines), the first being the per-message fields."""
    for ctype, part in parts:
        if ctype == "message/delivery-status":
            payload = part.get_payload()
            blocks = [b for b in payload if isinstance(b, Message)] if isinstance(payload, list) else []
            if not blocks and isinstance(payload, str):
                blocks = [email.message_from_string(chunk) for chunk in re.split(r"\r?\n\r?\n", payload.strip())]
            if blocks:
                fields = [_fields(b) for b in blocks]
                return fields[0], [f for f in fields[1:] if "final-recipient" in f or "action" in f]
    return {}, []


def _blocks_for(blocks: list[Fields], token: verp.VerpToken | None) -> list[Fields]:
    """The blocks about the token's recipient: the ones naming it, else (a forward changed the final
    recipient) all of them, folded into the one failed block if any failed."""
    if token is not None:
        named = [b for b in blocks if any(_same(token.recipient, a) for a in _recipients_of(b))]
        if named:
            return named[:1]
        failed = [b for b in blocks if b.get("action", "").strip().lower() == "failed"]
        return (failed or blocks)[:1]
    return blocks


def _same(recipient: str, address: str) -> bool:
    return address.strip().strip("<>").lower() == recipient or try_normalise(address) == recipient


def _recipients_of(block: Fields) -> list[str]:
    # RFC 3464 §2.3.1-2: "Original-Recipient: rfc822;addr" (what we sent to) before "Final-Recipient".
    found = [_type_value(block.get(name, "")) for name in ("original-recipient", "final-recipient")]
    return [addr for addr in found if addr]


# ---------------------------------------------------------------- RFC 5965 abuse reports


def _arf_reports(msg: Message, ref: str, context: Context, today: dt.date) -> list[Report]:
    parts = _parts(msg)
    fields = _feedback_fields(parts)
    kind = _feedback_type(fields.get("feedback-type", ""))
    return [_complaint(msg, ref, _lazy(parts), fields, context, today=today, kind=kind)]


def _complaint(msg: Message, ref: str, original: Callable[[], Message | None], fields: Mapping[str, str],
               context: Context, *, today: dt.date, kind: FeedbackType) -> Report:
    def candidates() -> list[str]:
        found = [addr for _, addr in getaddresses([fields.get("original-rcpt-to", "")])]
        attached = original()
        if attached is not None:
            found += [addr for _, addr in getaddresses(attached.get_all("To", []))]
        return found

    # RFC 5965 §3.5: Original-Mail-From is the original's envelope sender (our VERP return path).
    token = _token_for(fields.get("original-mail-from"), original, context, today, candidates)
    claimed = "" if token else next((c for c in map(try_normalise, candidates()) if c), "")
    reporter = fields.get("user-agent") or fields.get("reporting-mta") or _domain_of(msg.get("From", ""))
    return Report(
        kind=ReportKind.COMPLAINT, recipient=token.recipient if token else claimed,
        stream=token.stream if token else None,
        stream_kind=context.streams.get(token.stream) if token else None,
        pool=context.pools.get(token.stream) if token else None,
        feedback_type=kind, reporter=reporter.strip(), message_ref=ref, verp_verified=token is not None,
        ip=(fields.get("source-ip") or "").strip() or None, arrival=(fields.get("arrival-date") or "").strip(),
    )


def _feedback_fields(parts: list[tuple[str, Message]]) -> dict[str, str]:
    """The message/feedback-report part's fields. The stdlib parser reads an unknown message/* part as a
    sub-message whose headers are those fields; a parser that kept it as text gets them parsed here."""
    for ctype, part in parts:
        if ctype == "message/feedback-report":
            payload = part.get_payload()
            report = payload[0] if isinstance(payload, list) and payload else None
            if not isinstance(report, Message):
                report = email.message_from_string(str(payload))
            return _fields(report)  # field names are case-insensitive (RFC 5322 §1.2.2)
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
    token = _token_for(envelope_recipient, _lazy(_parts(msg)), context, today, lambda: candidates)
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


def _token_for(return_path: str | None, original: Callable[[], Message | None], context: Context,
               today: dt.date, candidates: Callable[[], list[str]]) -> verp.VerpToken | None:
    """Our token for the report: the return path it names, else the original's X-Mailinfra-Id header, else
    the original's Return-Path; None when none verifies. The original is read only when needed."""
    token = _verify_address(return_path, context, today, candidates) if return_path else None
    if token is not None:
        return token
    message = original()
    if message is None:
        return None
    header = message.get(verp.HEADER)
    if header:
        token = verp.verify_header(str(header), context.secrets, context.streams, today=today,
                                   max_age=context.max_age)
        if token is not None:
            return token
    for _, address in getaddresses(message.get_all("Return-Path", [])):
        token = _verify_address(address, context, today, candidates)
        if token is not None:
            return token
    return None


def _verify_address(address: str, context: Context, today: dt.date,
                    candidates: Callable[[], list[str]]) -> verp.VerpToken | None:
    # The report's addresses are only needed for an h- token (the recipient is not in it).
    named = candidates() if address.lstrip("<").lower().startswith("h-") else ()
    return verp.verify_return_path(address, context.secrets, context.streams, today=today,
                                   max_age=context.max_age, candidates=named)


def _lazy(parts: list[tuple[str, Message]]) -> Callable[[], Message | None]:
    """The attached original, read on first use (a DSN identified by its return path never needs it)."""
    return functools.cache(lambda: _attached_original(parts))


def _attached_original(parts: list[tuple[str, Message]]) -> Message | None:
    """The original message (message/rfc822) or its headers (text/rfc822-headers) a report carries."""
    for ctype, part in parts:
        if ctype == "message/rfc822":
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                return payload[0]
        if ctype == "text/rfc822-headers":
            raw = part.get_payload(decode=True)
            if isinstance(raw, bytes):
                return _HEADERS.parsebytes(raw, headersonly=True)
    return None


def _type_value(value: object) -> str:
    """`rfc822; user@example.com` -> `user@example.com` (RFC 3464 §2.1.2 address-type; diagnostic-type)."""
    text = " ".join(str(value or "").split())
    kind, sep, rest = text.partition(";")
    return rest.strip() if sep and kind.strip().replace("-", "").isalnum() else text


def _status(value: object) -> str | None:
    found = _ENHANCED.search(str(value or "")) or re.search(r"\b2\.\d{1,3}\.\d{1,3}\b", str(value or ""))
    return found[0] if found else None


def _domain_of(header: str) -> str:
    addresses = getaddresses([header])
    return addresses[0][1].rpartition("@")[2].lower() if addresses and addresses[0][1] else ""


__all__ = ["Context", "context_from_config", "message_key", "parse_message", "parse_ses_event"]
