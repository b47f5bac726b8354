"""The probe plan: one probe per pool x seed, sent through the pool like real mail (pure).

A probe is an ordinary message of the pool's stream: From the stream's sending domain (DKIM-signed by the
pool's instance, aligned as its mail is), the envelope sender a VERP return path of the seed (so a bounce of
a probe is processed like any other), injected at the pool's own Postfix instance so it leaves from the
pool's IPs. Only the `X-Mailinfra-Probe` header marks it: a seed provider must judge it as it judges the
pool's mail (GlockApps and Everest send the campaign itself to their seeds for the same reason).

The probe id names its pool, seed and time slot: `<pool>.<seed>.<slot>` where slot is the start of the
probe interval it was sent in (Unix seconds). The reader, on another host, knows which probes to expect from
the plan and the clock alone, with no state shared with the senders; a slot whose probe never arrives is
"missing" after `monitoring.probe_missing_after_minutes`.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from mailinfra.plan.model import Plan, SeedPlan

PROBE_HEADER = "X-Mailinfra-Probe"
PROBE_LOCAL_PART = "placement-probe"  # the From address's local part (a role address of the stream)
_PROBE_ID = re.compile(r"^(?P<pool>[a-z][a-z0-9_-]*)\.(?P<seed>[a-z][a-z0-9_-]*)\.(?P<slot>[0-9]{1,12})$")


@dataclass(frozen=True, slots=True)
class Probe:
    """What one pool sends one seed at every interval."""

    pool: str
    stream: str
    kind: str  # the stream's kind: a bulk/marketing probe carries one-click unsubscribe like its mail
    host: str  # the host whose instance of the pool sends it (the pool's first host)
    injection_port: int
    seed: str
    provider: str
    recipient: str
    sending_domain: str
    return_path_domain: str
    one_click_unsubscribe: bool


@dataclass(frozen=True, slots=True)
class ProbeId:
    pool: str
    seed: str
    slot: int  # Unix seconds: the start of the interval the probe was sent in

    def __str__(self) -> str:
        return f"{self.pool}.{self.seed}.{self.slot}"


class ProbeIdError(ValueError):
    """A header value that is not a probe id of ours."""


def plan_probes(plan: Plan) -> tuple[Probe, ...]:
    """Every pool x seed (pools without a host send nothing and get no probe)."""
    probes = []
    for pool in plan.pools:
        if not pool.hosts:
            continue
        stream = plan.stream(pool.stream)
        probes += [_probe(plan, pool.name, stream.name, seed) for seed in plan.seeds]
    return tuple(probes)


def _probe(plan: Plan, pool_name: str, stream_name: str, seed: SeedPlan) -> Probe:
    pool, stream = plan.pool(pool_name), plan.stream(stream_name)
    return Probe(pool=pool.name, stream=stream.name, kind=stream.kind, host=pool.hosts[0],
                 injection_port=pool.injection_port, seed=seed.name, provider=seed.provider,
                 recipient=seed.address, sending_domain=stream.sending_domain,
                 return_path_domain=stream.return_path, one_click_unsubscribe=stream.one_click_unsubscribe)


def probes_of_host(plan: Plan, host: str) -> tuple[Probe, ...]:
    return tuple(p for p in plan_probes(plan) if p.host == host)


def slot_of(now: float, interval_seconds: int) -> int:
    """The start of the probe interval `now` falls in."""
    return int(now) // interval_seconds * interval_seconds


def parse_probe_id(value: str) -> ProbeId:
    match = _PROBE_ID.match(value.strip())
    if not match:
        raise ProbeIdError(f"{PROBE_HEADER}: received {value!r}, expected <pool>.<seed>.<unix-slot>")
    return ProbeId(match["pool"], match["seed"], int(match["slot"]))


def build_probe(probe: Probe, probe_id: ProbeId, *, sent_at: dt.datetime) -> EmailMessage:
    """The probe message (headers as the stream's own mail has them; the MTA signs it)."""
    message = EmailMessage()
    message["From"] = f"{probe.stream} <{PROBE_LOCAL_PART}@{probe.sending_domain}>"
    message["To"] = probe.recipient
    message["Subject"] = f"{probe.stream} update {sent_at:%Y-%m-%d %H:%M}"
    message["Date"] = format_datetime(sent_at)
    message["Message-ID"] = make_msgid(idstring=str(probe_id).replace(".", "-"), domain=probe.sending_domain)
    message[PROBE_HEADER] = str(probe_id)
    if probe.one_click_unsubscribe:
        # RFC 8058, as the stream's mail carries it: without it a bulk probe would be judged on a rule its
        # mail does not break (Gmail/Yahoo bulk-sender requirement).
        message["List-Unsubscribe"] = f"<https://{probe.sending_domain}/u/probe-{probe_id.seed}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(f"This is an inbox placement probe of {probe.stream} ({probe.pool}).\n"
                        f"Probe {probe_id}.\n")
    return message
