"""One Postfix delivery line -> what the shaping service needs (the only log parsing in mailinfra.shaping:
swap it for the shared parser, mailinfra.mta.maillog, when that lands)."""

from __future__ import annotations

import re
from dataclasses import dataclass

# smtp(8) of transport T in instance I logs as `I/T/smtp[pid]` (master.cf syslog_name), one line per recipient:
# "... postfix-mkt-cold/mc1_gmail/smtp[123]: 4Q1x: to=<a@gmail.com>, relay=mx.gmail.com[192.0.2.10]:25, ...,
#  dsn=5.7.1, status=bounced (host mx.gmail.com[192.0.2.10] said: 550 5.7.1 ... (in reply to RCPT TO command))"
_DELIVERY = re.compile(
    r"(?P<instance>postfix-[A-Za-z0-9_.-]+)/(?P<transport>[A-Za-z0-9_]+)/smtp\[\d+\]: [0-9A-Za-z]+: "
    r"to=<(?P<rcpt>[^>]*)>,.* dsn=(?P<dsn>\d\.\d+\.\d+), status=(?P<status>sent|deferred|bounced) \((?P<text>.*)\)$")
# The receiver's own reply inside the status text ("host H[A] said: <reply> (in reply to X command)");
# a greeting refusal has "refused to talk to me: <reply>".
_REPLY = re.compile(r"(?:said|refused to talk to me): (?P<reply>.*?)(?: \(in reply to [A-Z /]+ command\))?$")
# A 4xx the pool instance's smtp_reply_filter marked as 5xx so it backs off instead of taking the route
# (mailinfra.mta.replies: "550 5.7.28 mailinfra-backoff: <text>"): read as the receiver's own 4xx again.
_MARKED = re.compile(r"^5(?P<code>\d\d)(?P<sep>[ -])(?:5(?P<detail>\.\d+\.\d+) )?mailinfra-backoff: (?P<text>.*)$")


@dataclass(frozen=True, slots=True)
class Delivery:
    instance: str
    transport: str
    recipient: str
    dsn: str
    status: str
    reply: str  # the receiver's reply, "" when Postfix wrote its own reason (connection refused, timeout)


def parse_delivery(line: str) -> Delivery | None:
    """The delivery attempt a log line records, or None for any other line."""
    match = _DELIVERY.search(line.rstrip("\n"))
    if match is None:
        return None
    reply = _REPLY.search(match["text"])
    text = reply["reply"] if reply else ""
    if marked := _MARKED.match(text):
        detail = f"4{marked['detail']} " if marked["detail"] else ""
        text = f"4{marked['code']}{marked['sep']}{detail}{marked['text']}"
    return Delivery(match["instance"], match["transport"], match["rcpt"], match["dsn"], match["status"], text)
