"""Probes sent by the sender, filed by a real Dovecot (LMTP + Sieve) into INBOX or Junk, read back over IMAP by
the reader service: the exported placement equals where the messages were filed.

Dovecot is Debian's dovecot-imapd/-lmtpd/-sieve 2.3, started on loopback by the test and stopped by PID.
IMAP facts relied on: RFC 6154 `\\Junk` on the Junk mailbox (Dovecot `special_use`), RFC 3501 §6.4.4 `SEARCH
HEADER <name> ""` matches every message with the header, INTERNALDATE is the delivery time (RFC 3501 §2.3.3).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from mailinfra.lab.imapstore import ImapStore, dovecot_available, start_store
from mailinfra.placement.metrics import PlacementMetrics
from mailinfra.placement.probes import plan_probes, slot_of
from mailinfra.placement.render import reader_config
from mailinfra.placement.sender import SenderConfig, send_probes
from mailinfra.placement.service import Reader, ReaderConfig, read_reader_config
from mailinfra.plan.model import Plan
from mailinfra.suppression import verp

pytestmark = [pytest.mark.tools,
              pytest.mark.skipif(not dovecot_available(), reason="Debian dovecot-imapd/-lmtpd/-sieve not installed")]

SLOT = slot_of(dt.datetime(2026, 12, 20, 10, 0, tzinfo=dt.UTC).timestamp(), 3600)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Capture:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        self.messages.append((envelope.mail_from or "", list(envelope.rcpt_tos), envelope.original_content or b""))
        return "250 2.0.0 OK"


@pytest.fixture
def store(seeded_plan: Plan) -> Iterator[ImapStore]:
    # Not under tmp_path: pytest's base is 0700 and Dovecot's auth/mail users must reach the store.
    root = Path(tempfile.mkdtemp(prefix="mailinfra-dovecot-"))
    root.chmod(0o755)
    users = {s.address: f"pw-{s.name}" for s in seeded_plan.seeds}
    started = start_store(root / "store", "127.0.0.1", _free_port(), users)
    yield started
    started.stop()
    shutil.rmtree(root)


def _reader_config(plan: Plan, store: ImapStore, tmp_path: Path) -> ReaderConfig:
    body: dict[str, Any] = reader_config(plan)
    for seed in body["seeds"]:
        password = tmp_path / f"seed-{seed['name']}"
        password.write_text(store.users[seed["username"]] + "\n")
        seed.update(imap_host=store.address, imap_port=store.port, tls="none", password_file=str(password))
    body["state_file"] = str(tmp_path / "state.json")
    (tmp_path / "reader.json").write_text(__import__("json").dumps(body))
    return read_reader_config(tmp_path / "reader.json")


def _send(plan: Plan, now: float) -> list[tuple[str, list[str], bytes]]:
    capture = Capture()
    controller = Controller(capture, hostname="127.0.0.1", port=_free_port())
    controller.start()
    try:
        probes = tuple(dataclasses.replace(p, injection_port=controller.port) for p in plan_probes(plan))
        config = SenderConfig(plan.stack, "mta1", plan.placement.interval_seconds, "", "127.0.0.1", probes)
        results = send_probes(config, secret=SECRET, now=now)
    finally:
        controller.stop()
    assert [r.error for r in results] == [None] * len(probes)
    return capture.messages


SECRET = secrets.token_bytes(32)


def test_placement_equals_the_folders_messages_were_filed_into(store: ImapStore, seeded_plan: Plan,
                                                               tmp_path: Path) -> None:
    """GIVEN every pool's probe to every seed, the first pool's filed into Junk, one probe never delivered,
    the rest into INBOX; WHEN the reader polls after the missing deadline; THEN each pool x provider counts
    exactly those folders, once, and the arrival delay of every delivered probe is observed."""
    messages = _send(seeded_plan, SLOT + 3)
    pools = [p.name for p in seeded_plan.pools if p.hosts]
    junked, lost = pools[0], (pools[1], seeded_plan.seeds[1].name)
    expected: dict[tuple[str, str, str], int] = {}
    seed_by_address = {s.address: s for s in seeded_plan.seeds}
    for mail_from, rcpts, raw in messages:
        # The envelope sender is the seed's signed VERP return path of the pool's stream (like real mail).
        seed = seed_by_address[rcpts[0]]
        token = verp.verify_return_path(mail_from, SECRET, [s.name for s in seeded_plan.streams],
                                        today=dt.date(2026, 12, 20))
        assert token is not None and token.recipient == seed.address
        pool = raw.split(b"X-Mailinfra-Probe: ", 1)[1].split(b".", 1)[0].decode()
        if (pool, seed.name) == lost:
            folder = "missing"
        else:
            folder = "spam" if pool == junked else "inbox"
            store.deliver(seed.address, raw, "Junk" if folder == "spam" else "INBOX")
        expected[(pool, seed.provider, folder)] = expected.get((pool, seed.provider, folder), 0) + 1

    metrics = PlacementMetrics()
    config = _reader_config(seeded_plan, store, tmp_path)
    reader = Reader(config, metrics, started=SLOT)
    assert reader.poll(now=SLOT + seeded_plan.placement.missing_after_seconds + 60) == []
    assert reader.poll(now=SLOT + seeded_plan.placement.missing_after_seconds + 120) == []  # counted once

    streams = {p.name: p.stream for p in seeded_plan.pools}
    for pool in pools:
        for seed in seeded_plan.seeds:
            for folder in ("inbox", "spam", "missing"):
                value = metrics.registry.get_sample_value("mailinfra_placement_total", {
                    "stream": streams[pool], "pool": pool, "provider": seed.provider, "folder": folder})
                assert value == expected.get((pool, seed.provider, folder), 0), (pool, seed.name, folder)
            delivered = sum(v for (p, prov, f), v in expected.items()
                            if p == pool and prov == seed.provider and f != "missing")
            observed = metrics.registry.get_sample_value("mailinfra_placement_delay_seconds_count",
                                                         {"pool": pool, "provider": seed.provider}) or 0
            assert observed == delivered

    # A restarted reader keeps its state: nothing is counted again.
    again = PlacementMetrics()
    Reader(config, again, started=SLOT).poll(now=SLOT + 4000)
    assert sum(s.value for m in again.registry.collect() if m.name == "mailinfra_placement"
               for s in m.samples if s.name.endswith("_total")) == 0


def test_a_probe_not_yet_due_is_not_missing(store: ImapStore, seeded_plan: Plan, tmp_path: Path) -> None:
    """Before probe_missing_after_minutes an unseen probe is not judged; after, it is missing."""
    metrics = PlacementMetrics()
    reader = Reader(_reader_config(seeded_plan, store, tmp_path), metrics, started=SLOT)
    reader.poll(now=SLOT + 60)
    assert all(s.value == 0 for m in metrics.registry.collect() if m.name == "mailinfra_placement"
               for s in m.samples if s.name.endswith("_total"))
    reader.poll(now=SLOT + seeded_plan.placement.missing_after_seconds)
    missing = [s for m in metrics.registry.collect() if m.name == "mailinfra_placement" for s in m.samples
               if s.name.endswith("_total") and s.labels["folder"] == "missing"]
    assert sum(s.value for s in missing) == len(plan_probes(seeded_plan))


def test_a_wrong_password_is_one_line_and_other_seeds_still_count(store: ImapStore, seeded_plan: Plan,
                                                                  tmp_path: Path) -> None:
    config = _reader_config(seeded_plan, store, tmp_path)
    Path(config.seeds[0].password_file).write_text("wrong\n")
    metrics = PlacementMetrics()
    problems = Reader(config, metrics, started=SLOT).poll(now=SLOT + 7200)
    assert len(problems) == 1 and problems[0].startswith(f"seed {config.seeds[0].name} (127.0.0.1:")
    counted = {s.labels["provider"] for m in metrics.registry.collect() if m.name == "mailinfra_placement"
               for s in m.samples if s.name.endswith("_total") and s.value}
    assert counted == {config.seeds[1].provider}


@pytest.mark.skipif(shutil.which("promtool") is None, reason="Debian prometheus (promtool) not installed")
def test_the_reader_service_serves_metrics_promtool_accepts(store: ImapStore, seeded_plan: Plan,
                                                            tmp_path: Path) -> None:
    """`python -m mailinfra.placement read` as the host runs it: /metrics on its listen address carries every
    pool x provider x folder series (at 0 before any probe) and passes `promtool check metrics`."""
    import json
    import subprocess
    import sys
    import time
    import urllib.request

    config = _reader_config(seeded_plan, store, tmp_path)
    body = json.loads((tmp_path / "reader.json").read_text())
    port = _free_port()
    # No probe is sent here: a missing deadline past the test keeps every series at 0 whatever the clock says.
    body.update(listen=f"127.0.0.1:{port}", poll_seconds=3600, missing_after_seconds=86400)
    (tmp_path / "reader.json").write_text(json.dumps(body))
    process = subprocess.Popen([sys.executable, "-m", "mailinfra.placement", "read", "--config",
                                str(tmp_path / "reader.json")], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1) as response:
                    text = response.read().decode()
                break
            except OSError:
                assert time.monotonic() < deadline and process.poll() is None, "reader never served /metrics"
                time.sleep(0.2)
    finally:
        process.terminate()
        process.wait(timeout=10)
    lint = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, check=False)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    series = [line for line in text.splitlines() if line.startswith("mailinfra_placement_total{")]
    pools = {p.pool for p in plan_probes(seeded_plan)}
    providers = {s.provider for s in config.seeds}
    assert len(series) == len(pools) * len(providers) * 3
    assert all(line.endswith(" 0.0") for line in series)
