"""The lab's secondary route: an SMTP relay (with AUTH over STARTTLS when the route has credentials)
that delivers every accepted message onwards to the recipient's MX from its own address.

Every AUTH attempt is recorded (--auth-log: route, whether it came over TLS, mechanism, login, accepted;
never the password), so a test can show which relay was handed the credentials. A control file switches
the relay, per new connection, to the ways a relay (or someone on the path pretending to be it) can fail
the sender's TLS: `no-starttls` (STARTTLS not offered, AUTH offered in plaintext) and `untrusted-cert`
(STARTTLS with a self-signed certificate no CA vouches for).

It keeps no queue: a message is accepted (250) only once the next hop accepted it, otherwise the
client gets a 451 and keeps the message — so the relay itself can neither lose nor duplicate mail.
    python -m mailinfra.lab.relay --name relay --listen 192.0.2.21:587 --source 192.0.2.21 ...
"""

from __future__ import annotations

import argparse
import asyncio
import json
import smtplib
import ssl
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dns.exception
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from mailinfra.lab.control import read_control, write_control
from mailinfra.lab.resolver import shared_resolver

ONWARD_TIMEOUT_SECONDS = 20
MODES = ("ok", "no-starttls", "untrusted-cert")


def read_mode(control: Path | None) -> str:
    return read_control(control, MODES)


def write_mode(control: Path, mode: str) -> None:
    write_control(control, mode, MODES)


class RelayHandler:
    def __init__(self, name: str, source: str, helo: str, log: Path) -> None:
        self.name = name
        self.source = source
        self.helo = helo
        self.log = log
        log.parent.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server: SMTP, session: Session,  # noqa: N802, ARG002
                          envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        started = time.time()
        error = await asyncio.get_running_loop().run_in_executor(
            None, self.deliver, envelope.mail_from or "", list(envelope.rcpt_tos), raw)
        entry: dict[str, Any] = {
            "route": self.name, "received": started, "client": session.peer[0] if session.peer else "",
            "mail_from": envelope.mail_from, "rcpt_tos": list(envelope.rcpt_tos), "error": error,
            "lab_id": _header(raw, b"X-Lab-Id"),
        }
        with self.log.open("a") as out:
            out.write(json.dumps(entry) + "\n")
        if error:
            return f"451 4.4.1 next hop did not accept the message: {error}"[:200]
        return "250 2.0.0 OK relayed"

    def deliver(self, mail_from: str, rcpts: list[str], raw: bytes) -> str:
        """Deliver to each recipient domain's MX; '' when every hop accepted, else the first error."""
        by_domain: dict[str, list[str]] = defaultdict(list)
        for rcpt in rcpts:
            by_domain[rcpt.rpartition("@")[2].lower()].append(rcpt)
        for domain, group in by_domain.items():
            try:
                # Cached for the MX record's TTL, as a real relay's resolver does.
                answer = shared_resolver().resolve(domain, "MX")
                best = min(answer, key=lambda r: r.preference)
                mx = str(best.exchange).rstrip(".")
                with smtplib.SMTP(mx, 25, local_hostname=self.helo, source_address=(self.source, 0),
                                  timeout=ONWARD_TIMEOUT_SECONDS) as client:
                    client.sendmail(mail_from, group, raw)
            except (OSError, smtplib.SMTPException, dns.exception.DNSException) as exc:
                return f"{domain}: {exc.__class__.__name__}: {exc}"
        return ""


def _header(raw: bytes, name: bytes) -> str:
    for line in raw.split(b"\r\n\r\n", 1)[0].replace(b"\r\n", b"\n").split(b"\n"):
        if line.lower().startswith(name.lower() + b":"):
            return line.split(b":", 1)[1].strip().decode(errors="replace")
    return ""


class Authenticator:
    def __init__(self, name: str, username: str, password: str, log: Path | None = None) -> None:
        self.name = name
        self.username = username.encode()
        self.password = password.encode()
        self.log = log

    def __call__(self, server: SMTP, session: Session, envelope: Envelope,  # noqa: ARG002
                 mechanism: str, auth_data: Any) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            self.username, self.password)
        if self.log is not None:
            login = auth_data.login.decode(errors="replace") if isinstance(auth_data, LoginPassword) else ""
            entry = {"route": self.name, "time": time.time(), "client": session.peer[0] if session.peer else "",
                     "tls": session.ssl is not None, "mechanism": mechanism, "login": login, "accepted": ok}
            with self.log.open("a") as out:
                out.write(json.dumps(entry) + "\n")
        return AuthResult(success=ok, handled=False)


def read_auth_attempts(log: Path) -> list[dict[str, Any]]:
    """The AUTH attempts a relay recorded (no passwords), oldest first."""
    if not log.is_file():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def _tls_context(cert: str | None, key: str | None) -> ssl.SSLContext | None:
    if not cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


async def serve(args: argparse.Namespace) -> None:
    host, _, port = args.listen.rpartition(":")
    handler = RelayHandler(args.name, args.source, args.helo, Path(args.log))
    tls = _tls_context(args.tls_cert, args.tls_key)
    untrusted = _tls_context(args.untrusted_cert, args.untrusted_key)
    control = Path(args.control) if args.control else None
    authenticator = None
    if args.credentials:
        username, _, password = Path(args.credentials).read_text().strip().partition(":")
        authenticator = Authenticator(args.name, username, password, Path(args.auth_log) if args.auth_log else None)

    def factory() -> SMTP:
        mode = read_mode(control)
        context = None if mode == "no-starttls" else untrusted if mode == "untrusted-cert" and untrusted else tls
        # no-starttls: a relay that offers AUTH without TLS (auth_require_tls off), as a careless or
        # hostile one does; otherwise AUTH only after STARTTLS.
        return SMTP(handler, hostname=args.helo, ident=f"{args.name} lab route", tls_context=context,
                    authenticator=authenticator, auth_required=authenticator is not None,
                    auth_require_tls=context is not None, timeout=60)

    server = await asyncio.get_running_loop().create_server(factory, host=host, port=int(port), reuse_address=True)
    print(f"{args.name}: relaying on {args.listen} from {args.source}", flush=True)
    async with server:
        await server.serve_forever()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="a secondary route (relay) for the lab")
    parser.add_argument("--name", required=True)
    parser.add_argument("--listen", required=True, metavar="ADDR:PORT")
    parser.add_argument("--source", required=True, help="address onward deliveries leave from")
    parser.add_argument("--helo", required=True, help="name onward deliveries say HELO with")
    parser.add_argument("--log", required=True, help="JSON-lines log of relayed messages")
    parser.add_argument("--credentials", default=None, help="file holding user:password (AUTH required)")
    parser.add_argument("--tls-cert", default=None)
    parser.add_argument("--tls-key", default=None)
    parser.add_argument("--untrusted-cert", default=None, help="self-signed certificate of mode untrusted-cert")
    parser.add_argument("--untrusted-key", default=None)
    parser.add_argument("--control", default=None, help=f"file holding the mode: {', '.join(MODES)}")
    parser.add_argument("--auth-log", default=None, help="JSON-lines log of AUTH attempts (no passwords)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    asyncio.run(serve(parse_args(argv)))


if __name__ == "__main__":
    main()
