"""Seed mailboxes in the lab: the stack's seeds at the simulated providers live in a real Dovecot inside the
namespace; the providers file each message to them into INBOX or Junk (mailinfra.lab.placement); the probe
sender and the reader run as on a host (mailinfra.placement), against the lab's instances and store.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

from mailinfra.errors import UsageError
from mailinfra.lab.imapstore import dovecot_available, prepare_store, wait_for_store
from mailinfra.lab.layout import Provider
from mailinfra.lab.namespace import LabError, in_namespace
from mailinfra.lab.procs import LabState, python_env, start_process
from mailinfra.lab.suppression import verp_secret_file
from mailinfra.placement.probes import plan_probes
from mailinfra.placement.render import reader_config
from mailinfra.placement.sender import SenderConfig, sender_config_json
from mailinfra.plan.model import SeedPlan
from mailinfra.warmup import PROVIDER_DOMAINS

STORE_ADDRESS = "127.0.0.1"  # the namespace's own loopback: nothing outside the lab reaches the store
STORE_PORT = 143
STORE_PROCESS = "imap-store"
UNSUBSCRIBE_KINDS = ("marketing", "bulk")


def lab_seeds(lab: Any) -> list[SeedPlan]:
    """The stack's seeds whose mailbox domain the lab simulates (others have no provider here)."""
    domains = {p.domain for p in lab.layout.providers}
    return [s for s in lab.plan.seeds if s.address.rpartition("@")[2] in domains]


def store_root(lab: Any) -> Path:
    return Path(lab.layout.runtime_dir) / "imap"


def placement_dir(lab: Any) -> Path:
    return Path(lab.layout.runtime_dir) / "placement"


def start_seed_store(lab: Any, state: LabState) -> bool:
    """Start Dovecot for the lab's seeds (recorded in the lab state, stopped by PID with the lab); False when
    the stack has no seed at a simulated provider."""
    seeds = lab_seeds(lab)
    if not seeds:
        return False
    if not dovecot_available():
        raise UsageError(f"lab: stack {lab.plan.stack} has seed mailboxes (monitoring.seeds): received no Dovecot, "
                         "expected the Debian packages dovecot-imapd dovecot-lmtpd dovecot-sieve")
    passwords = {s.address: secrets.token_hex(12) for s in seeds}
    root = store_root(lab)
    argv = prepare_store(root, STORE_ADDRESS, STORE_PORT, passwords)
    pid = start_process(state, STORE_PROCESS, in_namespace(lab.layout.namespace, argv),
                        Path(lab.layout.runtime_dir) / "log" / "imap-store.log")
    state.save(lab.layout.state_file)
    wait_for_store(root, lambda: Path(f"/proc/{pid}").exists())
    work = placement_dir(lab)
    work.mkdir(parents=True, exist_ok=True, mode=0o700)
    body: dict[str, Any] = reader_config(lab.plan)
    names = {s.name for s in seeds}
    body["seeds"] = [s for s in body["seeds"] if s["name"] in names]
    body["probes"] = [p for p in body["probes"] if p["seed"] in names]
    for seed in body["seeds"]:
        password = work / f"seed-{seed['name']}"
        password.write_text(passwords[seed["username"]] + "\n")
        password.chmod(0o600)
        seed.update(imap_host=STORE_ADDRESS, imap_port=STORE_PORT, tls="none", password_file=str(password))
    body["state_file"] = str(work / "reader-state.json")
    (work / "reader.json").write_text(json.dumps(body, indent=2))
    return True


def provider_args(lab: Any, provider: Provider) -> list[str]:
    """The placement arguments of one simulated provider: the store, its seeds, today's caps, bulk streams."""
    plan = lab.plan
    args = [f"--bulk-stream={s.name}" for s in plan.streams if s.kind in UNSUBSCRIBE_KINDS]
    plan_provider = next((name for name, domains in PROVIDER_DOMAINS.items() if provider.domain in domains),
                         "default")
    for limit in plan.warmup:
        cap = next((p.msgs_per_day for p in limit.providers if p.provider == plan_provider), 0)
        if cap:
            args.append(f"--ip-cap={plan.ip(limit.ip).address}={cap}")
    seeds = [s.address for s in lab_seeds(lab) if s.address.endswith("@" + provider.domain)]
    if seeds:
        args += [f"--imap-lmtp={store_root(lab) / 'run' / 'lmtp'}", *(f"--seed={a}" for a in seeds)]
    return args


def send_probes(lab: Any, state: LabState) -> list[str]:
    """This interval's probes from every Postfix host of the lab (as its timer would send them); returns the
    sender's output lines. LabError when a probe is not injected."""
    names = {s.name for s in lab_seeds(lab)}
    targets = {t["host"]: t["address"] for t in state.info["targets"]}
    work = placement_dir(lab)
    lines: list[str] = []
    for host, address in targets.items():
        probes = tuple(p for p in plan_probes(lab.plan) if p.host == host and p.seed in names)
        if not probes:
            continue
        config = SenderConfig(stack=lab.plan.stack, host=host, interval_seconds=lab.plan.placement.interval_seconds,
                              verp_secret_file=str(verp_secret_file(Path(lab.layout.runtime_dir))),
                              smtp_host=address, probes=probes, source_address=lab.layout.injector_address)
        path = work / f"probes-{host}.json"
        path.write_text(sender_config_json(config))
        result = _run(lab, ["send", "--config", str(path)])
        if result.returncode != 0:
            raise LabError(f"lab probes from {host}: {result.stderr.strip().splitlines()[-1:]}")
        lines += result.stdout.splitlines()
    return lines


def read_placement(lab: Any) -> list[dict[str, Any]]:
    """One pass of the reader over the lab's seeds: the probes judged in it (each once over the lab's life)."""
    work = placement_dir(lab)
    dump = work / "verdicts.json"
    result = _run(lab, ["read", "--config", str(work / "reader.json"), "--once", "--dump", str(dump)])
    if result.returncode != 0 or result.stderr.strip():
        raise LabError(f"lab placement reader: {result.stderr.strip().splitlines()[-1:]}")
    verdicts: list[dict[str, Any]] = json.loads(dump.read_text())
    return verdicts


def _run(lab: Any, argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(in_namespace(lab.layout.namespace, [sys.executable, "-m", "mailinfra.placement", *argv]),
                          capture_output=True, text=True, check=False, env=python_env(), timeout=120)


