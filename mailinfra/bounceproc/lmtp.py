"""LMTP from Postfix (RFC 2033): every accepted message is one report; each recipient gets its own reply.

RFC 2033 §4.2: after the final "." the server answers once per accepted RCPT, in RCPT order. Postfix's
lmtp(8) defers a recipient answered 4xx (the report stays queued and is retried), bounces one answered 5xx,
and defers everything when the connection fails. So: 250 once the store has committed, 451 4.3.0 when
anything failed, never 5xx (the report is ours to read; a DSN about a DSN would go to the null sender).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from mailinfra.suppression.store import Applied

log = logging.getLogger("mailinfra.bounceproc")

# process(raw, envelope recipient, now) -> what the store did (committed when it returns).
Process = Callable[[bytes, str, dt.datetime], list[Applied]]


class IntakeHandler:
    """aiosmtpd handler: each message is processed on one worker thread (the store is written serially)."""

    def __init__(self, process: Process) -> None:
        self.process = process
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bounceproc")
        self.processed = 0
        self.failed = 0

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,  # noqa: N802, ARG002
                          address: str, rcpt_options: list[str]) -> str:  # noqa: ARG002
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802, ARG002
        raw = envelope.original_content or b""
        loop = asyncio.get_running_loop()
        replies = []
        for rcpt in envelope.rcpt_tos:
            try:
                applied = await loop.run_in_executor(self.worker, self.process, raw, rcpt,
                                                     dt.datetime.now(dt.UTC))
            except Exception as error:  # any failure keeps the report queued (4xx): retried later
                self.failed += 1
                log.exception("report for %s not processed: %s", rcpt, error)
                replies.append(f"451 4.3.0 <{rcpt}> not processed, try again later")
                continue
            self.processed += 1
            summary = ", ".join(f"{a.decision.action}{' (duplicate)' if a.duplicate else ''}" for a in applied)
            for item in applied:
                log.info("%s: %s%s", rcpt, item.decision.why, " (already applied)" if item.duplicate else "")
            replies.append(f"250 2.0.0 <{rcpt}> processed: {summary or 'no report'}")
        return "\r\n".join(replies) if replies else "250 2.0.0 OK"


def lmtp_factory(handler: IntakeHandler, hostname: str) -> Callable[[], Any]:
    from aiosmtpd.lmtp import LMTP

    # data_size_limit: a DSN with the original attached stays well under 10 MB (Postfix's default
    # message_size_limit); enable_SMTPUTF8: SMTPUTF8 addresses in reports (RFC 6533).
    return lambda: LMTP(handler, hostname=hostname, ident="mailinfra bounce processor",
                        data_size_limit=10_240_000, enable_SMTPUTF8=True, decode_data=False, timeout=300)
