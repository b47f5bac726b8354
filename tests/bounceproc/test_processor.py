"""The processor as Postfix's lmtp(8) meets it: LMTP on a Unix socket, one reply per recipient, 250 only once
the store committed, duplicates (a re-delivery after a crash) counted once, forgeries changing nothing."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import secrets
import signal
import smtplib
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.smtp import Envelope

from mailinfra.bounceproc.lmtp import IntakeHandler
from mailinfra.model.schema import StreamKind
from mailinfra.suppression.sqlite_store import SqliteStore
from mailinfra.suppression_service.feed import decode_page, feed_key
from tests.suppression import samples
from tests.tooling import stop_by_pid

ROOT = Path(__file__).resolve().parents[2]


class Processor:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        # As the host has it: the Pulumi secret as text in a file (read stripped of its newline).
        self.secret = secrets.token_hex(32).encode()
        (tmp / "verp.key").write_bytes(self.secret)
        self.port = _free_port()
        self.config = tmp / "bounceproc.json"
        self.config.write_text(json.dumps({
            "host": "mta1", "lmtp_socket": str(tmp / "run/lmtp.sock"), "socket_group": None,
            "feed_listen": f"127.0.0.1:{self.port}", "store": {"kind": "sqlite", "path": str(tmp / "store.db")},
            "verp_secret_file": str(tmp / "verp.key"), "streams": {k: str(v) for k, v in samples.STREAMS.items()},
            "stream_pools": {"receipts": "tx", "news": "mkt", "reengage": "bulk"},
            "fbl_addresses": [samples.FBL], "policy": {}, "ses_queues": []}))
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        (self.tmp / "run/lmtp.sock").unlink(missing_ok=True)
        self.process = subprocess.Popen([sys.executable, "-m", "mailinfra.bounceproc", "--config", str(self.config)],
                                        env=dict(os.environ, PYTHONPATH=str(ROOT)), stdout=subprocess.DEVNULL,
                                        stderr=(self.tmp / "proc.log").open("a"), text=True)
        deadline = time.monotonic() + 15
        while not (self.tmp / "run/lmtp.sock").exists():
            assert self.process.poll() is None, "the processor exited"
            assert time.monotonic() < deadline, "the processor did not open its socket"
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, as a crash."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.process = None

    def deliver(self, raw: bytes, rcpt: str) -> tuple[int, bytes]:
        """As Postfix's lmtp(8) does: LHLO, MAIL FROM:<>, RCPT, DATA; the per-recipient reply."""
        with smtplib.LMTP(str(self.tmp / "run/lmtp.sock")) as client:
            client.ehlo_or_helo_if_needed()
            client.mail("<>")
            code, _ = client.rcpt(rcpt)
            assert code == 250
            client.putcmd("data")
            assert client.getreply()[0] == 354
            client.send(smtplib.quotedata(raw.decode()).encode() + b"\r\n.\r\n")
            return client.getreply()

    def store(self) -> SqliteStore:
        return SqliteStore(self.tmp / "store.db")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def processor(tmp_path: Path) -> Iterator[Processor]:
    proc = Processor(tmp_path)
    proc.start()
    try:
        yield proc
    finally:
        if proc.process is not None:
            stop_by_pid(proc.process)


def test_a_dsn_to_our_return_path_suppresses_and_reaches_the_feed(processor: Processor) -> None:
    """GIVEN a Postfix DSN (5.1.1) to a signed return path WHEN delivered over LMTP THEN 250 after the commit,
    the address is in the store for every kind, and the feed serves it to a poller with the feed key only."""
    rp = samples.return_path(processor.secret, "gone@gmail.com")
    code, text = processor.deliver(samples.postfix_dsn(to=rp, recipient="gone@gmail.com"), rp)
    assert code == 250, text
    entry = processor.store().check("gone@gmail.com", StreamKind.TRANSACTIONAL, samples.NOW)
    assert entry is not None
    url = f"http://127.0.0.1:{processor.port}/v1/changes?after=0"
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {feed_key(processor.secret)}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        _, changes = decode_page(response.read())
    assert [c.address for c in changes] == ["gone@gmail.com"]
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url, timeout=5)
    assert refused.value.code == 401


def test_a_forged_dsn_and_a_forged_arf_change_nothing(processor: Processor) -> None:
    """A DSN to a return path signed with another secret, and an ARF report about a message with no valid
    token: accepted (250, nothing to retry) and nobody suppressed."""
    forged = samples.return_path(samples.new_secret(), "victim@gmail.com")
    assert processor.deliver(samples.postfix_dsn(to=forged, recipient="victim@gmail.com"), forged)[0] == 250
    arf = samples.arf(rcpt_to="victim2@yahoo.com", mail_from="b-aaaaaaaaaaaaaaaaaaaaaaa-x=y.z@bounce.example.com")
    assert processor.deliver(arf, samples.FBL)[0] == 250
    assert list(processor.store().entries()) == []


def test_a_report_delivered_again_after_a_crash_counts_once(processor: Processor) -> None:
    """GIVEN a soft bounce (mailbox full) processed WHEN the processor is killed (SIGKILL) and Postfix hands
    the same queue file over again THEN the soft count stays 1: the dedupe key was committed with it."""
    rp = samples.return_path(processor.secret, "full@gmail.com")
    dsn = samples.postfix_dsn(to=rp, recipient="full@gmail.com", status="4.2.2", action="failed",
                              diagnostic="smtp; 552 4.2.2 <{r}>: mailbox full")
    assert processor.deliver(dsn, rp)[0] == 250
    processor.kill()
    processor.start()
    code, text = processor.deliver(dsn, rp)
    assert code == 250 and b"duplicate" in text
    assert processor.store().soft_count("full@gmail.com", samples.NOW - dt.timedelta(days=7)) == 1


def test_a_failure_while_processing_answers_451_so_postfix_keeps_the_report() -> None:
    """RFC 2033 §4.2 / lmtp(8): a 4xx per-recipient reply defers that recipient; nothing is lost."""
    def broken(raw: bytes, rcpt: str, now: dt.datetime) -> list:
        raise RuntimeError("store unavailable")

    envelope = Envelope()
    envelope.original_content = b"Subject: x\r\n\r\nx\r\n"
    envelope.rcpt_tos = ["b-x@bounce.example.com", samples.FBL]
    reply = asyncio.run(IntakeHandler(broken).handle_DATA(None, None, envelope))  # type: ignore[arg-type]
    assert reply.split("\r\n") == [
        "451 4.3.0 <b-x@bounce.example.com> not processed, try again later",
        f"451 4.3.0 <{samples.FBL}> not processed, try again later"]
