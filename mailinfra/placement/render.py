"""The placement files of a host, from the plan: probe sender (every Postfix host carrying a pool) and the
reader (the stack's first bounce host, the one place the seed passwords are delivered to)."""

from __future__ import annotations

import json
from collections.abc import Iterable

from mailinfra.mta.files import RenderedFile, render_template, rendered
from mailinfra.mta.intake import VERP_SECRET_FILE
from mailinfra.placement.probes import plan_probes, probes_of_host
from mailinfra.placement.sender import SenderConfig, sender_config_json
from mailinfra.plan.model import HostPlan, Plan

PROBE_UNIT = "mailinfra-placement-probe"
PROBE_CONFIG = "etc/mailinfra/placement-probes.json"
READER_UNIT = "mailinfra-placement-reader"
READER_CONFIG = "etc/mailinfra/placement-reader.json"
# The boot script writes each seed's password here from the host's own SSM parameter (root:root 0600).
SEED_PASSWORD_DIR = "/etc/mailinfra/seeds"  # noqa: S105 - a directory, not a secret
READER_STATE = "/var/lib/mailinfra-placement/state.json"
# /metrics of the reader: scraped by the monitoring host over the private network only (the security
# group opens it to that host alone; it is never reachable from the Internet).
READER_METRICS_PORT = 9471
READER_POLL_SECONDS = 60


def reader_host(plan: Plan) -> str | None:
    """The host that reads the seeds: the first bounce host (None: no seeds, or no bounce host)."""
    if not plan.seeds:
        return None
    return next((h.name for h in plan.hosts if h.accepts_bounces and h.mta == "postfix"), None)


def render_placement(plan: Plan, host: HostPlan) -> tuple[RenderedFile, ...]:
    return render_probe_sender(plan, host) + render_reader(plan, host)


def render_probe_sender(plan: Plan, host: HostPlan) -> tuple[RenderedFile, ...]:
    probes = probes_of_host(plan, host.name)
    if not probes or host.mta != "postfix":
        return ()
    config = SenderConfig(stack=plan.stack, host=host.name, interval_seconds=plan.placement.interval_seconds,
                          verp_secret_file=VERP_SECRET_FILE, smtp_host="127.0.0.1", probes=probes)
    hours = plan.placement.interval_seconds // 3600
    return (
        rendered(PROBE_CONFIG, sender_config_json(config)),
        rendered(f"etc/systemd/system/{PROBE_UNIT}.service", render_template(
            "mailinfra/placement-probe.service.j2", plan=plan, host=host, unit=PROBE_UNIT,
            config=f"/{PROBE_CONFIG}")),
        rendered(f"etc/systemd/system/{PROBE_UNIT}.timer", render_template(
            "mailinfra/placement-probe.timer.j2", plan=plan, host=host, interval_hours=hours)),
    )


def reader_config(plan: Plan) -> dict[str, object]:
    """What the reader reads at start (no password: each is a credential file of its own)."""
    return {
        "stack": plan.stack,
        "interval_seconds": plan.placement.interval_seconds,
        "missing_after_seconds": plan.placement.missing_after_seconds,
        "poll_seconds": READER_POLL_SECONDS,
        "listen": f"0.0.0.0:{READER_METRICS_PORT}",
        "state_file": READER_STATE,
        "seeds": [{"name": s.name, "provider": s.provider, "imap_host": s.imap_host, "imap_port": s.imap_port,
                   "username": s.username, "password_file": f"${{CREDENTIALS_DIRECTORY}}/seed-{s.name}",
                   "junk_folder": s.junk_folder,
                   # RFC 8314 §3: implicit TLS on 993; anything else upgrades with STARTTLS, never plain text.
                   "tls": "implicit" if s.imap_port == 993 else "starttls"}
                  for s in plan.seeds],
        "probes": [{"pool": p.pool, "stream": p.stream, "seed": p.seed, "provider": p.provider}
                   for p in plan_probes(plan) if plan.host(p.host).mta == "postfix"],
    }


def render_reader(plan: Plan, host: HostPlan) -> tuple[RenderedFile, ...]:
    if reader_host(plan) != host.name:
        return ()
    return (
        rendered(READER_CONFIG, json.dumps(reader_config(plan), indent=2, sort_keys=True) + "\n"),
        rendered(f"etc/systemd/system/{READER_UNIT}.service", render_template(
            "mailinfra/placement-reader.service.j2", plan=plan, host=host, config=f"/{READER_CONFIG}",
            port=READER_METRICS_PORT, seeds=[s.name for s in plan.seeds], password_dir=SEED_PASSWORD_DIR)),
    )


def seed_password_files(plan: Plan, host: HostPlan) -> tuple[tuple[str, str], ...]:
    """(seed, file) the boot script writes for this host: the reader host's only."""
    if reader_host(plan) != host.name:
        return ()
    return tuple((s.name, f"{SEED_PASSWORD_DIR}/{s.name}") for s in plan.seeds)




def placement_units(paths: Iterable[str]) -> list[str]:
    """The placement units among a host's files (absolute or relative paths), to enable after the MTA: the
    probe timer (not its service: the timer starts it) and the reader."""
    names = {p.lstrip("/") for p in paths}
    units = [f"{PROBE_UNIT}.timer", f"{READER_UNIT}.service"]
    return [u for u in units if f"etc/systemd/system/{u}" in names]
