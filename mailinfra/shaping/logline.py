"""One Postfix delivery line -> what the shaping service needs: the shared parser (mailinfra.mta.maillog)
reads the line; this module only takes the receiver's reply out of Postfix's status text."""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailinfra.mta import maillog

# The receiver's own reply inside the status text ("host H[A] said: <reply> (in reply to X command)");
# a greeting refusal has "refused to talk to me: <reply>".
_REPLY = re.compile(r"(?:said|refused to talk to me): (?P<reply>.*?)(?: \(in reply to [A-Z /]+ command\))?$")
# A 4xx the pool instance's smtp_reply_filter marked as 5xx so it backs off instead of taking the route
# (mailinfra.mta.replies: "550 5.7.28 mailinfra-backoff: <text>"): read as the receiver's own 4xx again.
_MARKED = re.compile(r"^5(?P<code>\d\d)(?P<sep>[ -])(?:5(?P<detail>\.\d+\.\d+) )?mailinfra-backoff: (?P<text>.*)$")
# What the rules act on: smtp(8) of a pool instance's own transport (`postfix-<pool>/<transport>/smtp`).
_STATUSES = frozenset({"sent", "deferred", "bounced"})


@dataclass(frozen=True, slots=True)
class Delivery:
    instance: str
    transport: str
    recipient: str
    dsn: str
    status: str
    reply: str  # the receiver's reply, "" when Postfix wrote its own reason (connection refused, timeout)


def parse_delivery(line: str) -> Delivery | None:
    """The delivery attempt of a pool transport a log line records, or None for any other line."""
    record = maillog.parse_delivery(line.rstrip("\n"))
    if (record is None or record.agent != "smtp" or not record.transport or record.status not in _STATUSES
            or not record.instance.startswith("postfix-")):
        return None
    reply = _REPLY.search(record.reply)
    text = reply["reply"] if reply else ""
    if marked := _MARKED.match(text):
        detail = f"4{marked['detail']} " if marked["detail"] else ""
        text = f"4{marked['code']}{marked['sep']}{detail}{marked['text']}"
    return Delivery(record.instance, record.transport, record.recipient, record.dsn, record.status, text)
