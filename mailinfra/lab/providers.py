"""Simulated mailbox providers: aiosmtpd servers that check every message and store it with a verdict.

Run one per provider, inside the lab namespace:
    python -m mailinfra.lab.providers --name gmail --domain gmail.lab --listen 192.0.2.10:25 ...

Behaviour is switched at run time through a control file the server re-reads on every connection
and every RCPT (one word): `ok`, `throttle` (421 4.7.0 at the greeting, Gmail's "try again later"
when it sheds load), `throttle-rcpt` (451 4.7.500 "server busy" on RCPT, Microsoft's), `refuse` (the
connection is reset before the greeting), `silent` (the connection is accepted and never greeted),
`reputation` (Gmail's multi-line 421 4.7.28 "unusual rate of unsolicited mail" on RCPT: a judgement on
the sender, which must back off, not reroute), `complaints` (Yahoo's 421 4.7.0 [TSS04] "user complaints"
at the greeting, the same at connection level) or `postscreen` (a `220-` banner, then the real greeting
after postscreen_greet_wait's default 6 s: slow, not down). Faults apply to the stack's own IPs only:
clients listed with --route are the secondary routes' shared fleets, which keep their reputation
when ours is throttled — that is what makes the secondary route a way out.

Every accepted message is also placed: INBOX or Junk by mailinfra.lab.placement (its authentication verdict
and the per-IP reputation this provider keeps), recorded as `folder` in its verdict and, for a seed mailbox
(`--seed`), filed into the lab's Dovecot (`--imap-lmtp`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import smtplib
import socket
import struct
import time
import uuid
from collections.abc import Sequence
from email import message_from_bytes
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from mailinfra.lab import feedback
from mailinfra.lab.control import read_control, write_control
from mailinfra.lab.imapstore import deliver_lmtp
from mailinfra.lab.layout import FAULT_MODES
from mailinfra.lab.placement import PlacementModel
from mailinfra.lab.verify import verify_message
from mailinfra.placement.probes import PROBE_HEADER

MODES = FAULT_MODES
# postscreen(8)'s default postscreen_greet_wait (postconf(5)): the real server greets after this.
POSTSCREEN_GREET_WAIT_SECONDS = 6.0
# Gmail's reply, line by line (https://support.google.com/a/answer/3726730, 4.7.28).
REPUTATION_REPLY = ("421-4.7.28 [{peer}] Our system has detected an unusual rate of\r\n"
                    "421-4.7.28 unsolicited mail originating from your IP address. To protect our\r\n"
                    "421 4.7.28 users from spam, mail sent from your IP address has been temporarily rate limited.")
# Connection-level modes: they act before (or instead of) the greeting.
CONNECTION_FAULTS = frozenset({"throttle", "refuse", "silent", "complaints", "postscreen"})
# How long a silent provider holds a connection before dropping it (longer than any sane HELO timeout).
SILENT_HOLD_SECONDS = 600
# A recipient whose local part starts with this does not exist: 550 5.1.1 at RCPT, as a provider answers
# an unknown mailbox, so the sending instance bounces the message and its DSN can be followed.
UNKNOWN_LOCALPART = "unknown"


def read_mode(control: Path | None) -> str:
    return read_control(control, MODES)


def read_blocked(path: Path | None) -> frozenset[str]:
    """The client addresses a provider blocks by policy now (an IP blocklisting: the lab's `block_pool`)."""
    if path is None:
        return frozenset()
    try:
        return frozenset(line.strip() for line in path.read_text().splitlines() if line.strip())
    except OSError:
        return frozenset()


def write_mode(control: Path, mode: str) -> None:
    write_control(control, mode, MODES)


class FaultySMTP(SMTP):
    """aiosmtpd's SMTP session, except that a fault mode decides before the greeting."""

    def __init__(self, handler: Any, control: Path | None, exempt: frozenset[str], **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._control = control
        self._exempt = exempt
        self._faulted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        mode = read_mode(self._control)
        connection_fault = mode in CONNECTION_FAULTS
        if self._original_transport is None and peer and peer[0] not in self._exempt and connection_fault:
            self._faulted = True
            self._apply_fault(transport, mode)
            return
        super().connection_made(transport)

    def _apply_fault(self, transport: asyncio.BaseTransport, mode: str) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        if mode == "throttle":
            transport.write(b"421 4.7.0 Try again later, closing connection.\r\n")
            transport.close()
        elif mode == "complaints":
            transport.write(b"421 4.7.0 [TSS04] Messages from your IP temporarily deferred due to unexpected "
                            b"volume or user complaints\r\n")
            transport.close()
        elif mode == "postscreen":
            # The first banner line now, the rest when the real server takes over; the session then
            # runs normally (a client that talks before it would fail postscreen's pregreet test).
            transport.write(b"220-" + self.hostname.encode() + b" ESMTP postscreen\r\n")
            asyncio.get_running_loop().call_later(POSTSCREEN_GREET_WAIT_SECONDS, self._greet_late, transport)
        elif mode == "refuse":
            sock = transport.get_extra_info("socket")
            if sock is not None:
                # SO_LINGER 0: close sends RST, the client sees "Connection reset" like a refusal.
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
        else:  # silent: keep the connection open and never greet
            asyncio.get_running_loop().call_later(SILENT_HOLD_SECONDS, transport.close)

    def _greet_late(self, transport: asyncio.BaseTransport) -> None:
        if transport.is_closing():
            return
        self._faulted = False
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        if self._faulted:
            return
        super().connection_lost(error)

    def data_received(self, data: bytes) -> None:
        if self._faulted:
            return  # a silent server ignores whatever the client says
        super().data_received(data)

    def eof_received(self) -> bool | None:
        if self._faulted:
            return None
        return super().eof_received()


class ProviderHandler:
    """Accept mail for one domain, verify it and store `.eml` + `.json` under `store`."""

    def __init__(self, name: str, domain: str, store: Path, *, control: Path | None,
                 routes: dict[str, str], streams: dict[str, str], blocked: Path | None = None,
                 fbl_address: str | None = None, scrub_arf: bool = False, source: str = "",
                 placement: PlacementModel | None = None, lmtp_socket: Path | None = None,
                 seeds: frozenset[str] = frozenset()) -> None:
        self.name = name
        self.domain = domain.lower()
        self.store = store
        self.control = control
        self.routes = routes  # client address -> route name
        self.streams = streams  # sending domain -> stream
        self.blocked = blocked  # file of client addresses refused with a policy block (550 5.7.1), re-read
        self.fbl_address = fbl_address  # where complaints go (the sender's registered FBL address)
        self.scrub_arf = scrub_arf  # Comcast-like: the recipient removed from every complaint
        self.source = source  # the provider's own address, for the DSNs and complaints it sends
        # The placement model (mailinfra.lab.placement) and the IMAP store the seed mailboxes live in.
        self.placement = placement or PlacementModel()
        self.lmtp_socket = lmtp_socket
        self.seeds = frozenset(a.lower() for a in seeds)
        store.mkdir(parents=True, exist_ok=True)

    # aiosmtpd calls hooks by these names and positional signatures.
    async def handle_RCPT(self, server: SMTP, session: Session,  # noqa: N802, ARG002
                          envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:  # noqa: ARG002
        peer = session.peer[0] if isinstance(session.peer, tuple) else ""
        mode = read_mode(self.control)
        if mode == "throttle-rcpt" and peer not in self.routes:
            return "451 4.7.500 Server busy. Please try again later."
        if mode == "reputation" and peer not in self.routes:
            return REPUTATION_REPLY.format(peer=peer)
        if address.rpartition("@")[2].lower() != self.domain:
            return "550 5.1.1 No such domain here"
        if peer in read_blocked(self.blocked):
            # A policy block of the sending IP (Gmail's wording for a blocked IP): about the pool, not the
            # recipient, so it must suppress nobody (issue 12; Postal #266).
            return f"550 5.7.1 [{peer}] Our system has detected that this message is likely unsolicited mail; " \
                   "blocked by policy"
        unknown = address.lower().startswith(UNKNOWN_LOCALPART)
        if peer not in self.routes:
            self.placement.note_rcpt(peer, unknown=unknown)
        if unknown:
            return "550 5.1.1 The email account that you tried to reach does not exist"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session,  # noqa: N802, ARG002
                          envelope: Envelope) -> str:
        arrival = time.time()
        raw = envelope.original_content or b""
        peer = session.peer[0] if isinstance(session.peer, tuple) else ""
        helo = session.host_name or ""
        mail_from = envelope.mail_from or ""
        verdict = await asyncio.get_running_loop().run_in_executor(
            None, verify_message, raw, peer, helo, mail_from)
        record = verdict.to_json()
        lab_id = verdict.headers.get("X-Lab-Id") or uuid.uuid4().hex
        route = self.routes.get(peer)
        record.update({
            "provider": self.name,
            "lab_id": lab_id,
            "stream": self.streams.get(verdict.from_domain, verdict.headers.get("X-Lab-Stream", "")),
            "tier": verdict.headers.get("X-Lab-Tier", ""),
            "rcpt_tos": list(envelope.rcpt_tos),
            "arrival": arrival,
            "via": f"secondary:{route}" if route else "primary",
        })
        folder, reasons = self.placement.decide(
            peer, dmarc=str(record.get("dmarc", "")), stream=str(record["stream"]),
            one_click=verdict.headers.get("List-Unsubscribe-Post", ""), own_ip=route is None)
        record.update({"folder": folder, "placement_reasons": reasons,
                       "probe": message_from_bytes(raw).get(PROBE_HEADER, "")})
        stem = f"{int(arrival * 1000)}-{lab_id}-{uuid.uuid4().hex[:6]}"
        (self.store / f"{stem}.eml").write_bytes(raw)
        # Written under another name, then renamed: a reader never sees half a verdict.
        partial = self.store / f".{stem}.json.tmp"
        partial.write_text(json.dumps(record, indent=2, sort_keys=True))
        partial.replace(self.store / f"{stem}.json")
        seeds = [r for r in envelope.rcpt_tos if r.lower() in self.seeds]
        if seeds and self.lmtp_socket is not None:
            # Into the seed's IMAP mailbox, in the folder the model chose (Dovecot files it by Sieve).
            await asyncio.get_running_loop().run_in_executor(None, self._file_seeds, seeds, raw, folder)
        for rcpt in envelope.rcpt_tos:
            self._after_accept(rcpt, mail_from, raw, peer)
        return f"250 2.0.0 OK queued as {stem}"

    def _file_seeds(self, seeds: list[str], raw: bytes, folder: str) -> None:
        assert self.lmtp_socket is not None
        for rcpt in seeds:
            try:
                deliver_lmtp(self.lmtp_socket, rcpt, raw, folder)
            except (OSError, smtplib.SMTPException) as error:
                print(f"{self.name}: filing for seed {rcpt} failed: {error}", flush=True)

    def _after_accept(self, rcpt: str, mail_from: str, raw: bytes, peer: str = "") -> None:
        """Accept-then-bounce and complaints, sent a moment later (asynchronous, as providers do)."""
        local = rcpt.partition("@")[0].lower()
        if local.startswith(feedback.BOUNCE_LATER) or local.startswith(feedback.MAILBOX_FULL):
            full = local.startswith(feedback.MAILBOX_FULL)
            status = "5.2.2" if full else "5.1.1"
            text = (f"552 5.2.2 {rcpt}: mailbox full" if full
                    else f"550 5.1.1 {rcpt}: the account has been disabled or removed")
            if mail_from:  # never a DSN about a DSN (RFC 5321 §4.5.5)
                dsn = feedback.build_dsn(reporting_mta=f"mx.{self.domain}", recipient=rcpt, status=status,
                                         diagnostic=text, original=raw, envelope_to=mail_from)
                self._send_later("", mail_from, dsn)
        elif local.startswith(feedback.COMPLAIN) and peer and peer not in self.routes:
            self.placement.note_complaint(peer)  # the provider's own count, whether or not it reports it
        if local.startswith(feedback.COMPLAIN) and self.fbl_address:
            arf = feedback.build_arf(provider=self.name, domain=self.domain, fbl_address=self.fbl_address,
                                     mail_from=mail_from, recipient=rcpt, original=raw, scrubbed=self.scrub_arf)
            self._send_later(f"feedback@{self.domain}", self.fbl_address, arf)

    def _send_later(self, sender: str, recipient: str, raw: bytes) -> None:
        def send() -> None:
            try:
                feedback.send_by_mx(source=self.source, helo=f"mx.{self.domain}", sender=sender,
                                    recipient=recipient, raw=raw)
            except (OSError, smtplib.SMTPException) as error:
                print(f"{self.name}: sending to {recipient} failed: {error}", flush=True)

        asyncio.get_running_loop().call_later(0.2, lambda: asyncio.get_running_loop().run_in_executor(None, send))


async def serve(args: argparse.Namespace) -> None:
    host, _, port = args.listen.rpartition(":")
    routes = dict(item.split("=", 1) for item in args.route)
    streams = dict(item.split("=", 1) for item in args.stream)
    caps = {ip: int(cap) for ip, cap in (item.split("=", 1) for item in args.ip_cap)}
    model = PlacementModel(daily_caps=caps, bulk_streams=frozenset(args.bulk_stream))
    handler = ProviderHandler(args.name, args.domain, Path(args.store), control=args.control,
                              routes=routes, streams=streams, blocked=args.block_file,
                              fbl_address=args.fbl_address, scrub_arf=args.scrub_arf, source=host,
                              placement=model, lmtp_socket=args.imap_lmtp, seeds=frozenset(args.seed))
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: FaultySMTP(handler, args.control, frozenset(routes), hostname=f"mx.{args.domain}",
                           ident=f"{args.name} lab provider", timeout=60),
        host=host, port=int(port), reuse_address=True)
    print(f"{args.name}: listening on {args.listen}", flush=True)
    async with server:
        await server.serve_forever()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="a simulated mailbox provider for the lab")
    parser.add_argument("--name", required=True)
    parser.add_argument("--domain", required=True, help="recipient domain it accepts, e.g. gmail.lab")
    parser.add_argument("--listen", required=True, metavar="ADDR:PORT")
    parser.add_argument("--store", required=True, help="directory for .eml and .json verdicts")
    parser.add_argument("--control", type=Path, default=None, help="file holding the fault mode")
    parser.add_argument("--route", action="append", default=[], metavar="ADDR=NAME",
                        help="a secondary route's address (exempt from faults, counted as 'via secondary')")
    parser.add_argument("--stream", action="append", default=[], metavar="DOMAIN=STREAM",
                        help="sending domain of a stream, to label each message")
    parser.add_argument("--block-file", type=Path, default=None,
                        help="file of client addresses (one a line, re-read at every RCPT) refused with 550 5.7.1")
    parser.add_argument("--fbl-address", default=None, help="where complaints (ARF) are sent")
    parser.add_argument("--scrub-arf", action="store_true", help="remove the recipient from complaints (Comcast)")
    parser.add_argument("--imap-lmtp", type=Path, default=None, help="LMTP socket of the lab's IMAP store")
    parser.add_argument("--seed", action="append", default=[], metavar="ADDRESS",
                        help="a seed mailbox in the IMAP store (its mail is filed there, INBOX or Junk)")
    parser.add_argument("--ip-cap", action="append", default=[], metavar="ADDR=N",
                        help="a sending IP's warmup daily cap at this provider (placement: over it is Junk)")
    parser.add_argument("--bulk-stream", action="append", default=[], metavar="STREAM",
                        help="a marketing/bulk stream, whose mail needs one-click unsubscribe (RFC 8058)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    asyncio.run(serve(parse_args(argv)))


if __name__ == "__main__":
    main()
