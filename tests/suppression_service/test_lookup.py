"""The lookup service as Postfix sees it: Postfix's own socketmap client (`postmap -q`) asks it, and a feed
of changes reaches it within a poll."""

from __future__ import annotations

import http.server
import json
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mailinfra.suppression_service import socketmap
from mailinfra.suppression_service.feed import authorized, encode_page
from mailinfra.suppression_service.replica import Change, Replica, answer_text
from tests.tooling import require_tool, stop_by_pid

ROOT = Path(__file__).resolve().parents[2]
HARD = {"scope": ["bulk", "marketing", "transactional"], "source": "bounce", "cls": "bad-mailbox",
        "reason": "5.1.1 user unknown", "first_seen": "2026-12-01T10:00:00+00:00", "expires": None}
COMPLAINT = {"scope": ["bulk", "marketing"], "source": "complaint", "cls": None, "reason": "abuse (Yahoo)",
             "first_seen": "2026-12-01T11:00:00+00:00", "expires": None}


class Feed:
    """A bounce host's feed: changes appended by the test, served with the processor's protocol."""

    def __init__(self, secret: bytes) -> None:
        self.secret = secret
        self.changes: list[Change] = []
        self.unauthorized = 0
        feed = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if not authorized(self.headers.get("Authorization"), feed.secret):
                    feed.unauthorized += 1
                    self.send_response(401)
                    self.end_headers()
                    return
                after = int(self.path.split("after=")[1].split("&")[0])
                page = [c for c in feed.changes if c.seq > after]
                body = encode_page(max([after, *(c.seq for c in page)]), page)
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/v1/changes"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[Path, Feed, bytes]]:
    secret = secrets.token_bytes(32)
    (tmp_path / "verp.key").write_bytes(secret)
    feed = Feed(secret)
    config = {"socket": str(tmp_path / "run/lookup.sock"), "socket_group": None,
              "replica": str(tmp_path / "cache/replica.db"), "feeds": [feed.url], "poll_seconds": 0.2,
              "verp_secret_file": str(tmp_path / "verp.key")}
    (tmp_path / "lookup.json").write_text(json.dumps(config))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    process = subprocess.Popen([sys.executable, "-m", "mailinfra.suppression_service", "--config",
                                str(tmp_path / "lookup.json")], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 10
        while not (tmp_path / "run/lookup.sock").exists():
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            assert time.monotonic() < deadline, "the lookup service did not create its socket"
            time.sleep(0.05)
        yield tmp_path / "run/lookup.sock", feed, secret
    finally:
        stop_by_pid(process)
        feed.server.shutdown()


def postmap_query(socket_path: Path, kind: str, address: str) -> tuple[int, str]:
    """Postfix's socketmap client: exit 0 and the value when found, 1 when not found, 2+ on a lookup error."""
    config = socket_path.parent / "postfix-config"
    config.mkdir(exist_ok=True)
    (config / "main.cf").write_text("compatibility_level = 3.6\n")
    done = subprocess.run([require_tool("postmap"), "-c", str(config), "-q", address,
                           f"socketmap:unix:{socket_path}:{kind}"],
                          capture_output=True, text=True, check=False, timeout=20)
    assert "lookup error" not in done.stderr, done.stderr
    return done.returncode, done.stdout.strip()


def wait_for(predicate: Any, timeout: float = 5.0) -> float:
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < timeout, "not reached in time"
        time.sleep(0.05)
    return time.monotonic() - started


def test_postfix_gets_the_refusal_for_the_streams_an_entry_covers(service: tuple[Path, Feed, bytes]) -> None:
    """GIVEN a complaint (marketing, bulk) and a hard bounce (every kind) in the feed WHEN Postfix's
    socketmap client asks THEN each is refused with 550 5.7.1 for the kinds it covers, and a complained-about
    address still gets transactional mail; an unknown address is NOTFOUND (postmap exit 1)."""
    socket_path, feed, _ = service
    feed.changes += [Change(1, "gone@gmail.com", HARD), Change(2, "angry@yahoo.com", COMPLAINT)]
    wait_for(lambda: postmap_query(socket_path, "marketing", "angry@yahoo.com")[0] == 0)
    assert postmap_query(socket_path, "transactional", "gone@gmail.com") == (
        0, "550 5.7.1 recipient suppressed (hard bounce 2026-12-01)")
    assert postmap_query(socket_path, "bulk", "angry@yahoo.com") == (
        0, "550 5.7.1 recipient suppressed (complaint 2026-12-01)")
    assert postmap_query(socket_path, "transactional", "angry@yahoo.com")[0] == 1
    assert postmap_query(socket_path, "marketing", "someone@gmail.com")[0] == 1


def test_a_removal_in_the_feed_lifts_the_refusal(service: tuple[Path, Feed, bytes]) -> None:
    """An entry removed at the store (feed entry null) is mailed again after the next poll."""
    socket_path, feed, _ = service
    feed.changes.append(Change(1, "back@gmail.com", HARD))
    wait_for(lambda: postmap_query(socket_path, "marketing", "back@gmail.com")[0] == 0)
    feed.changes.append(Change(2, "back@gmail.com", None))
    wait_for(lambda: postmap_query(socket_path, "marketing", "back@gmail.com")[0] == 1)


def test_an_expired_soft_entry_no_longer_refuses(tmp_path: Path) -> None:
    """A soft (quota) entry refuses until its expiry, not after."""
    replica = Replica(tmp_path / "r.db")
    soft = dict(HARD, cls="quota", expires="2026-12-31T00:00:00+00:00")
    replica.apply("feed", [Change(1, "Full@Example.org", soft)], 1)
    import datetime as dt

    assert replica.lookup("full@example.org", "marketing", dt.datetime(2026, 12, 30, tzinfo=dt.UTC)) == \
        "550 5.7.1 recipient suppressed (soft bounces 2026-12-01)"
    assert replica.lookup("full@example.org", "marketing", dt.datetime(2026, 12, 31, 1, tzinfo=dt.UTC)) is None


def test_the_feed_refuses_a_poller_without_the_stack_secret(tmp_path: Path) -> None:
    """The feed key is derived from the stack secret: another secret is 401."""
    assert not authorized("Bearer " + "0" * 64, b"secret")
    assert not authorized(None, b"secret")
    from mailinfra.suppression_service.feed import feed_key

    assert authorized(f"Bearer {feed_key(b'secret')}", b"secret")


def test_a_dead_lookup_service_defers_postfix(tmp_path: Path) -> None:
    """No service behind the socket: Postfix's client reports a lookup error, which smtpd turns into
    451 4.3.0 (fail closed), never 'not found' (postmap says so on stderr; 'not found' is silent)."""
    (tmp_path / "main.cf").write_text("compatibility_level = 3.6\n")
    done = subprocess.run([require_tool("postmap"), "-c", str(tmp_path), "-q", "a@b.example",
                           f"socketmap:unix:{tmp_path / 'nothing.sock'}:marketing"],
                          capture_output=True, text=True, check=False, timeout=20)
    assert "lookup error" in done.stderr
    assert done.stdout == ""


@pytest.mark.parametrize(("payload", "expected"), [
    (b"9:marketing,", b"marketing"),
    (b"0:,", b""),
])
def test_netstrings_round_trip(payload: bytes, expected: bytes) -> None:
    assert socketmap.decode_netstring(payload) == (expected, b"")
    assert socketmap.encode_netstring(expected) == payload


def test_a_partial_netstring_waits_for_more() -> None:
    assert socketmap.decode_netstring(b"12:marketing a") == (None, b"12:marketing a")
    with pytest.raises(socketmap.NetstringError):
        socketmap.decode_netstring(b"3:abcX")


def test_answer_text_names_the_reason_and_date() -> None:
    assert answer_text(COMPLAINT) == "550 5.7.1 recipient suppressed (complaint 2026-12-01)"
