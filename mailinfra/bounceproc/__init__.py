"""The bounce and complaint processor of a bounce host (`python -m mailinfra.bounceproc --config ...`).

- `config.py`: the rendered configuration (mailinfra.mta.intake) -> the core's Context and Policy.
- `lmtp.py`: LMTP (RFC 2033) from Postfix's primary instance: DSNs and ARF reports, one reply per recipient,
  250 only once the decision is committed (a 4xx or a dead socket leaves the report in Postfix's queue).
- `feed.py`: the change feed the hosts' lookup services poll (mailinfra.suppression_service.feed).
- `ses.py`: drains the SES events queue (SNS -> SQS) of each SES route.
- `pmta.py`: reads PowerMTA accounting records (b, rb, f) into reports.
- `service.py`: all of the above in one process.

The work is the core's (mailinfra.suppression.pipeline): parse, decide, apply with the report's dedupe key,
in one store transaction, so a report handed over twice (a crash after the commit and before the reply, an
SQS redelivery) counts once.
"""
