"""The lookup service as Postfix sees it: Postfix's own socketmap client (`postmap -q`) asks it, and a feed
of changes reaches it within a poll."""

from __future__ import annotations

import datetime as dt
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

from mailinfra.model.schema import StreamKind
from mailinfra.suppression.model import ALL_KINDS, BounceClass, Entry, Source
from mailinfra.suppression.store import Change
from mailinfra.suppression_service import socketmap
from mailinfra.suppression_service.feed import authorized, decode_page, encode_page
from tests.tooling import require_tool, stop_by_pid

ROOT = Path(__file__).resolve().parents[2]
DAY = dt.datetime(2026, 12, 1, 10, tzinfo=dt.UTC)


def entry(address: str, source: Source, scope: frozenset[StreamKind], **more: Any) -> Entry:
    return Entry(address=address, scope=scope, reason="test", cls=more.pop("cls", None), source=source,
                 first_seen=DAY, last_seen=DAY, **more)


HARD = entry("gone@gmail.com", Source.BOUNCE, ALL_KINDS, cls=BounceClass.BAD_MAILBOX)
COMPLAINT = entry("angry@yahoo.com", Source.COMPLAINT, frozenset({StreamKind.MARKETING, StreamKind.BULK}))


class Feed:
    """A bounce host's feed: changes appended by the test, served with the processor's protocol."""

    def __init__(self, secret: bytes) -> None:
        self.secret = secret
        self.changes: list[Change] = []
        self.unauthorized = 0
        self.down = False  # the bounce host's processor not answering yet (503)
        self.clients: set[str] = set()  # the source addresses of the polls
        feed = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                feed.clients.add(self.client_address[0])
                if feed.down:
                    self.send_response(503)
                    self.end_headers()
                    return
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
              "replica": str(tmp_path / "cache"), "feeds": [feed.url], "poll_seconds": 0.2,
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
    if "socketmap server temporary error" in done.stderr:
        return 2, done.stderr.strip()  # TEMP (not synced yet): postmap dies with exit 1, as for not found
    return done.returncode, done.stdout.strip()


def wait_for(predicate: Any, timeout: float = 30.0) -> float:  # postmap takes seconds on a loaded machine
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
    assert postmap_query(socket_path, "transactional", "Gone@Gmail.com") == (
        0, "550 5.7.1 <gone@gmail.com>: recipient suppressed (hard bounce 2026-12-01)")
    assert postmap_query(socket_path, "bulk", "angry@yahoo.com") == (
        0, "550 5.7.1 <angry@yahoo.com>: recipient suppressed (complaint 2026-12-01)")
    assert postmap_query(socket_path, "transactional", "angry@yahoo.com")[0] == 1
    assert postmap_query(socket_path, "marketing", "someone@gmail.com")[0] == 1


def test_a_removal_in_the_feed_lifts_the_refusal(service: tuple[Path, Feed, bytes]) -> None:
    """An entry removed at the store (feed entry null) is mailed again after the next poll."""
    socket_path, feed, _ = service
    feed.changes.append(Change(1, "back@gmail.com", entry("back@gmail.com", Source.BOUNCE, ALL_KINDS)))
    wait_for(lambda: postmap_query(socket_path, "marketing", "back@gmail.com")[0] == 0)
    feed.changes.append(Change(2, "back@gmail.com", None))
    wait_for(lambda: postmap_query(socket_path, "marketing", "back@gmail.com")[0] == 1)


def postmap_lookup(socket_path: Path, kind: str, address: str) -> subprocess.CompletedProcess[str]:
    config = socket_path.parent / "postfix-config"
    config.mkdir(exist_ok=True)
    (config / "main.cf").write_text("compatibility_level = 3.6\n")
    return subprocess.run([require_tool("postmap"), "-c", str(config), "-q", address,
                           f"socketmap:unix:{socket_path}:{kind}"], capture_output=True, text=True, check=False,
                          timeout=20)


def test_a_replica_that_never_synced_defers_instead_of_letting_mail_through(tmp_path: Path) -> None:
    """GIVEN a new host whose bounce host's feed does not answer yet WHEN Postfix asks THEN the lookup is a
    lookup error (socketmap TEMP; smtpd answers 451 4.3.0), not NOTFOUND: an empty replica knows nobody.
    Once one sync completed (even of an empty feed) an unknown address is NOTFOUND, also after a restart
    with the feed down again (the replica file keeps what it knew)."""
    secret = secrets.token_bytes(32)
    (tmp_path / "verp.key").write_bytes(secret)
    feed = Feed(secret)
    feed.down = True
    config = {"socket": str(tmp_path / "run/lookup.sock"), "socket_group": None,
              "replica": str(tmp_path / "cache"), "feeds": [feed.url], "poll_seconds": 0.2,
              "verp_secret_file": str(tmp_path / "verp.key")}
    (tmp_path / "lookup.json").write_text(json.dumps(config))

    def start() -> subprocess.Popen[str]:
        process = subprocess.Popen([sys.executable, "-m", "mailinfra.suppression_service", "--config",
                                    str(tmp_path / "lookup.json")], env=dict(os.environ, PYTHONPATH=str(ROOT)),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
        wait_for((tmp_path / "run/lookup.sock").exists)
        return process

    process = start()
    try:
        time.sleep(0.5)  # polls fail meanwhile
        done = postmap_lookup(tmp_path / "run/lookup.sock", "marketing", "someone@gmail.com")
        # Postfix's socketmap client (src/util/dict_sockmap.c) reads "TEMP" as "socketmap server temporary
        # error" and sets DICT_ERR_RETRY: postmap dies with a query error, smtpd defers (451 4.3.0).
        # NOTFOUND would be a silent exit 1 with nothing on stderr.
        assert "socketmap server temporary error: replica of" in done.stderr, done.stderr
        assert "not synced yet" in done.stderr and "query error" in done.stderr and done.stdout == ""
        feed.down = False
        wait_for(lambda: postmap_query(tmp_path / "run/lookup.sock", "marketing", "someone@gmail.com")[0] == 1)
    finally:
        stop_by_pid(process)
    feed.down = True
    (tmp_path / "run/lookup.sock").unlink(missing_ok=True)
    process = start()
    try:
        assert postmap_query(tmp_path / "run/lookup.sock", "marketing", "someone@gmail.com")[0] == 1
    finally:
        stop_by_pid(process)
        feed.server.shutdown()


def test_a_remote_feed_is_polled_from_the_configured_source_address(tmp_path: Path) -> None:
    """`source_address` (the host's first private address, the one the bounce host's group admits) is the
    source of every poll of another host's feed."""
    secret = secrets.token_bytes(32)
    (tmp_path / "verp.key").write_bytes(secret)
    feed = Feed(secret)
    url = feed.url.replace("127.0.0.1", "localhost")  # not this host's own loopback feed
    config = {"socket": str(tmp_path / "run/lookup.sock"), "socket_group": None, "replica": str(tmp_path / "cache"),
              "feeds": [url], "poll_seconds": 0.2, "verp_secret_file": str(tmp_path / "verp.key"),
              "source_address": "127.0.0.2"}
    (tmp_path / "lookup.json").write_text(json.dumps(config))
    process = subprocess.Popen([sys.executable, "-m", "mailinfra.suppression_service", "--config",
                                str(tmp_path / "lookup.json")], env=dict(os.environ, PYTHONPATH=str(ROOT)),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
    try:
        wait_for(lambda: bool(feed.clients))
        wait_for(lambda: postmap_query(tmp_path / "run/lookup.sock", "marketing", "x@gmail.com")[0] == 1)
        assert feed.clients == {"127.0.0.2"}
    finally:
        stop_by_pid(process)
        feed.server.shutdown()


def test_the_feed_page_round_trips_entries_and_removals() -> None:
    """What the processor encodes is what the lookup decodes: the entry (times, scope, expiry) or a removal."""
    soft = entry("full@example.org", Source.BOUNCE, ALL_KINDS, cls=BounceClass.QUOTA,
                 expires=DAY + dt.timedelta(days=30))
    last, changes = decode_page(encode_page(7, [Change(6, soft.address, soft), Change(7, "x@example.org", None)]))
    assert last == 7
    assert changes == [Change(6, soft.address, soft), Change(7, "x@example.org", None)]


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
