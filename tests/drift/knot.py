"""A real knotd on 127.0.0.1:<free port> serving zones rendered from (possibly edited) plan records."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import dns.message
import dns.query
import dns.rcode

from mailinfra.dns.records import DnsRecord
from mailinfra.dns.zonefile import render_zone
from mailinfra.lab.dns import render_knot_conf
from mailinfra.plan.model import Plan
from tests.tooling import require_tool, stop_by_pid

NAMESERVER = "ns1.drift.test"


def free_port() -> int:
    """A port free for both UDP and TCP on loopback (Knot listens on both)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port


def render_zones(plan: Plan, records: Sequence[DnsRecord]) -> dict[str, str]:
    return {
        zone.name: render_zone(
            zone.name,
            [r for r in records if r.zone == zone.name],
            serial=1,
            ttl=300,
            primary_ns=NAMESERVER,
            hostmaster=f"hostmaster@{NAMESERVER}",
            nameservers=[NAMESERVER],
        )
        for zone in plan.zones
    }


@contextlib.contextmanager
def knot_serving(workdir: Path, zones: dict[str, str], *, allow_transfer: bool = False) -> Iterator[int]:
    """Start knotd with `zones`, yield its port, stop it by PID (nothing left behind).

    Knot refuses AXFR unless an ACL allows it; `allow_transfer` allows it from 127.0.0.1.
    """
    knotd = require_tool("knotd")
    port = free_port()
    zones_dir, run_dir = workdir / "zones", workdir / "run"
    zones_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "db").mkdir(parents=True, exist_ok=True)
    for name, text in zones.items():
        (zones_dir / f"{name}.zone").write_text(text)
    conf = workdir / "knot.conf"
    conf.write_text(render_knot_conf(zones, zones_dir, run_dir, listen=f"127.0.0.1@{port}",
                                     transfer_from="127.0.0.1" if allow_transfer else None))
    log = (workdir / "knotd.log").open("w")
    process = subprocess.Popen([knotd, "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_ready(port, sorted(zones), process, workdir)
        yield port
    finally:
        stop_by_pid(process)
        log.close()


def _wait_ready(port: int, zones: list[str], process: subprocess.Popen[bytes], workdir: Path) -> None:
    deadline = time.monotonic() + 10
    pending = list(zones)
    while pending:
        if process.poll() is not None:
            raise RuntimeError(f"knotd exited: {(workdir / 'knotd.log').read_text()}")
        try:
            response = dns.query.udp(dns.message.make_query(pending[0], "SOA"), "127.0.0.1", timeout=0.5, port=port)
            if response.rcode() == dns.rcode.NOERROR and response.answer:
                pending.pop(0)
                continue
        except (TimeoutError, OSError, dns.exception.DNSException):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"knotd on port {port} did not serve {pending} within 10 s")
        time.sleep(0.05)
