"""The probe sender on an MTA host: one probe per pool x seed of this host, for the current interval.

    python -m mailinfra.placement send --config /etc/mailinfra/placement-probes.json

Run by a systemd timer (mailinfra-placement-probe.timer, every `monitoring.probe_interval_hours`). Each probe is
injected at the pool's own Postfix instance on loopback (127.0.0.0/8 is in every instance's mynetworks), so it
is signed, VERP-addressed and sent from the pool's IPs exactly as the application's mail is.
"""

from __future__ import annotations

import datetime as dt
import json
import smtplib
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mailinfra.placement.probes import Probe, ProbeId, build_probe, slot_of
from mailinfra.suppression import verp


@dataclass(frozen=True, slots=True)
class SenderConfig:
    stack: str
    host: str
    interval_seconds: int
    verp_secret_file: str
    smtp_host: str
    probes: tuple[Probe, ...]
    source_address: str | None = None  # bind here first (the lab's injector address, inside mynetworks)


@dataclass(frozen=True, slots=True)
class SentProbe:
    probe_id: str
    pool: str
    seed: str
    mail_from: str
    error: str | None = None


def sender_config_json(config: SenderConfig) -> str:
    body = asdict(config)
    return json.dumps(body, indent=2, sort_keys=True) + "\n"


def read_sender_config(path: Path) -> SenderConfig:
    data: dict[str, Any] = json.loads(path.read_text())
    probes = tuple(Probe(**p) for p in data.pop("probes"))
    return SenderConfig(probes=probes, **data)


def send_probes(config: SenderConfig, *, secret: bytes, now: float | None = None) -> list[SentProbe]:
    """Send this interval's probes; a probe that fails is reported, the others still go out."""
    moment = time.time() if now is None else now
    slot = slot_of(moment, config.interval_seconds)
    sent_at = dt.datetime.fromtimestamp(moment, dt.UTC)
    results = []
    for probe in config.probes:
        probe_id = ProbeId(probe.pool, probe.seed, slot)
        mail_from = verp.build_return_path(probe.recipient, probe.stream, probe.return_path_domain, secret,
                                           day=sent_at.date())
        message = build_probe(probe, probe_id, sent_at=sent_at)
        try:
            source = (config.source_address, 0) if config.source_address else None
            with smtplib.SMTP(config.smtp_host, probe.injection_port, timeout=30, source_address=source) as smtp:
                smtp.send_message(message, from_addr=mail_from, to_addrs=[probe.recipient])
            results.append(SentProbe(str(probe_id), probe.pool, probe.seed, mail_from))
        except (OSError, smtplib.SMTPException) as error:
            results.append(SentProbe(str(probe_id), probe.pool, probe.seed, mail_from, error=str(error)))
    return results


def main_send(argv: Sequence[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="mailinfra.placement send")
    parser.add_argument("--config", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        config = read_sender_config(args.config)
        secret = Path(config.verp_secret_file).read_bytes().strip()
    except (OSError, ValueError, TypeError, KeyError) as error:
        print(f"mailinfra.placement send: --config {args.config}: {error}", file=sys.stderr)
        return 2
    failed = 0
    for result in send_probes(config, secret=secret):
        if result.error:
            failed += 1
            print(f"probe {result.probe_id}: not injected: {result.error}", file=sys.stderr)
        else:
            print(f"probe {result.probe_id}: injected (return path {result.mail_from})")
    return 1 if failed else 0
