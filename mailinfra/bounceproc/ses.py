"""Drain the SES events queue of each SES route (SES -> SNS topic -> SQS queue, components/secondary_route.py).

A message is deleted only after its reports are applied (committed): a processor stopped in between sees it
again after the visibility timeout, and the store's dedupe key (SES's feedbackId) keeps it from counting
twice. A message that keeps failing goes to the dead-letter queue after maxReceiveCount receives (the
queue's redrive policy), so one bad event never blocks the rest.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from mailinfra.suppression.model import Report
from mailinfra.suppression.reports import Context, parse_ses_event
from mailinfra.suppression.store import Applied

log = logging.getLogger("mailinfra.bounceproc.ses")

# SQS ReceiveMessage: at most 10 messages, long polling up to 20 s (fewer empty receives, lower cost).
BATCH = 10
WAIT_SECONDS = 20


def drain_once(sqs: Any, queue_url: str, context: Context,
               apply: Callable[[list[Report], dt.datetime], list[Applied]], *, wait_seconds: int = WAIT_SECONDS) -> int:
    """Receive one batch, apply each event's reports, delete what was applied; the number of events applied."""
    response = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=BATCH, WaitTimeSeconds=wait_seconds)
    done = 0
    for message in response.get("Messages", []):
        now = dt.datetime.now(dt.UTC)
        try:
            reports = parse_ses_event(message["Body"], context=context, today=now.date())
            apply(reports, now)
        except Exception as error:  # left in the queue: retried, then dead-lettered by the redrive policy
            log.warning("SES event %s not applied: %s", message.get("MessageId"), error)
            continue
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        done += 1
    return done
