"""Inject lab test messages: the app servers' stand-in, run inside the namespace from an injection address.

    python -m mailinfra.lab.inject --plan-json FILE --log sent.jsonl [--count N] [--stream S] [--provider P]

Every message carries X-Lab-Id (so the report counts each arrival exactly once), X-Lab-Stream and
X-Lab-Tier; the envelope sender is a VERP address of the stream's return path, From the stream's
sending domain, so SPF and DKIM alignment are exercised as in production.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import smtplib
import time
import uuid
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any

from mailinfra.suppression import verp


def build_message(target: dict[str, Any], lab_id: str, rcpt: str, mailinfra_id: str | None = None, *,
                  from_domain: str | None = None, message_id: bool = True) -> EmailMessage:
    """`from_domain`: a From header domain other than the stream's; `message_id=False`: none (as some apps do)."""
    message = EmailMessage()
    message["From"] = f"{target['stream']} <hello@{from_domain or target['sending_domain']}>"
    message["To"] = rcpt
    message["Subject"] = f"lab {target['stream']}/{target['tier']} {lab_id[:8]}"
    message["Date"] = formatdate(localtime=False)
    if message_id:
        message["Message-ID"] = make_msgid(idstring=lab_id, domain=target["sending_domain"])
    message["X-Lab-Id"] = lab_id
    message["X-Lab-Stream"] = target["stream"]
    message["X-Lab-Tier"] = target["tier"]
    if mailinfra_id:
        # The signed token of recipient and stream (mailinfra.suppression.verp): how an ARF report whose
        # provider scrubbed the recipient (Comcast) is still identified.
        message[verp.HEADER] = mailinfra_id
    if target["one_click_unsubscribe"]:
        # RFC 8058: an HTTPS URI plus the One-Click POST marker.
        message["List-Unsubscribe"] = f"<https://{target['sending_domain']}/u/{lab_id}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(f"Lab message {lab_id} for {target['stream']} ({target['pool']}).\n")
    return message


def inject(targets: list[dict[str, Any]], providers: list[dict[str, str]], *, source: str, count: int,
           log: Path, mail_from_domain: str | None = None, rcpt_prefix: str = "user",
           secret: bytes | None = None, rcpts: list[str] | None = None, from_domain: str | None = None,
           message_id: bool = True) -> list[dict[str, Any]]:
    """Send `count` messages per target pool and provider; append one JSON line per message to `log`.

    With the stack secret, the envelope sender is the signed VERP return path of the recipient and stream
    (mailinfra.suppression.verp.build_return_path, as the app would build it) and the message carries the
    X-Mailinfra-Id header; `rcpts`: these local parts instead of generated ones (one message each)."""
    today = dt.datetime.now(dt.UTC).date()
    results = []
    for target in targets:
        with smtplib.SMTP(target["address"], target["port"], source_address=(source, 0), timeout=30) as client:
            client.ehlo("injector.lab")
            for provider in providers:
                for local in rcpts or [None] * count:  # type: ignore[list-item]
                    lab_id = uuid.uuid4().hex
                    rcpt = f"{local or f'{rcpt_prefix}-{lab_id[:6]}'}@{provider['domain']}"
                    domain = mail_from_domain or target["return_path"]
                    header = None
                    if secret is None:
                        envelope_from = f"bounces+{lab_id[:12]}@{domain}"
                    else:
                        envelope_from = verp.build_return_path(rcpt, target["stream"], domain, secret, day=today)
                        header = verp.build_header(rcpt, target["stream"], secret, day=today)
                    entry: dict[str, Any] = {
                        "lab_id": lab_id, "stream": target["stream"], "pool": target["pool"],
                        "tier": target["tier"], "provider": provider["name"], "rcpt": rcpt,
                        "mail_from": envelope_from, "injected_at": time.time(),
                    }
                    try:
                        message = build_message(target, lab_id, rcpt, header, from_domain=from_domain,
                                                message_id=message_id)
                        client.send_message(message, envelope_from, [rcpt])
                        entry["accepted"], entry["reply"] = True, "250"
                    except smtplib.SMTPResponseException as exc:
                        error = exc.smtp_error
                        shown = error.decode() if isinstance(error, bytes) else str(error)
                        entry["accepted"], entry["reply"] = False, f"{exc.smtp_code} {shown}"
                        client.rset()
                    except smtplib.SMTPRecipientsRefused as exc:
                        code, text = next(iter(exc.recipients.values()))
                        shown = text.decode() if isinstance(text, bytes) else str(text)
                        entry["accepted"], entry["reply"] = False, f"{code} {shown}"
                        client.rset()
                    results.append(entry)
    with log.open("a") as out:
        for entry in results:
            out.write(json.dumps(entry) + "\n")
    return results


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="inject lab test messages")
    parser.add_argument("--targets", required=True, help="JSON file: list of pool targets")
    parser.add_argument("--providers", required=True, help="JSON file: list of providers")
    parser.add_argument("--source", required=True)
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--log", required=True, type=Path)
    parser.add_argument("--mail-from-domain", default=None, help="override the envelope sender domain")
    parser.add_argument("--rcpt-prefix", default="user",
                        help="recipient local part prefix (`unknown`: the provider answers 550 5.1.1)")
    parser.add_argument("--rcpt", action="append", default=None,
                        help="a recipient local part (repeatable): one message to each instead of --count")
    parser.add_argument("--verp-secret-file", type=Path, default=None,
                        help="the stack secret: signed VERP return paths (else an unsigned bounces+ address)")
    parser.add_argument("--from-domain", default=None, help="override the From header domain")
    parser.add_argument("--no-message-id", action="store_true", help="send without a Message-ID header")
    args = parser.parse_args(argv)
    secret = (args.verp_secret_file.read_bytes().strip()
              if args.verp_secret_file and args.verp_secret_file.exists() else None)
    targets = json.loads(Path(args.targets).read_text())
    providers = json.loads(Path(args.providers).read_text())
    results = inject(targets, providers, source=args.source, count=args.count, log=args.log,
                     mail_from_domain=args.mail_from_domain, rcpt_prefix=args.rcpt_prefix, secret=secret,
                     rcpts=args.rcpt, from_domain=args.from_domain, message_id=not args.no_message_id)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
