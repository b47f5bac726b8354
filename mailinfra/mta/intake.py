"""Bounce and complaint intake on a bounce host: what Postfix accepts, and the processor it hands it to.

Postfix's primary instance on a bounce host (`bounces.hosts`) accepts, at RCPT time:
- for every return-path domain, only well-formed VERP return paths (the shape mailinfra.suppression.verp
  builds; the token's MAC is verified by the processor, the regexp keeps dictionary attacks and
  `bounces+anything` out of the queue); a plain `bounces@<rp>` names no message and is refused too;
- the FBL addresses (`bounces.fbl_addresses`) exactly, where ARF reports (RFC 5965) arrive;
- `postmaster@` each of those domains (RFC 5321 §4.5.1 requires it).
Everything else at those domains is "550 5.1.1 unknown" (virtual_mailbox_maps, postconf(5)).

Accepted mail goes by `virtual_transport = lmtp:unix:<socket>` to the processor (mailinfra.bounceproc), an
LMTP server (RFC 2033) on a Unix socket. Postfix's lmtp(8) defers a message whose LMTP server refuses the
connection or answers 4xx, so a processor that is down or fails keeps the report queued (nothing is lost);
the processor answers 250 for a recipient only once its decision is committed to the store.
"""

from __future__ import annotations

import hashlib
import json
import re

from mailinfra.mta.files import RenderedFile, render_template, rendered
from mailinfra.plan.model import HostPlan, Plan
from mailinfra.suppression import paths, verp

# The processor's LMTP socket; lmtp(8) runs as Postfix's mail_owner, the processor creates it 0660 with
# that group. A Unix socket: nothing on the network can reach it, and no port to clash with injection ports.
LMTP_SOCKET = "/run/mailinfra-bounceproc/lmtp.sock"
PROCESSOR_UNIT = "mailinfra-bounceproc"
PROCESSOR_CONFIG = "etc/mailinfra/bounceproc.json"
# The store and the processor's ledger live on the spool volume (components/mta_host.py spool_directories):
# like the queues, they must outlive the instance.
STORE_PATH = paths.HOST_DB_PATH
STATE_DIRECTORY = STORE_PATH.rpartition("/")[0]
# The stack secret (HMAC key of the VERP tokens), fetched from the host's own SSM parameter at boot.
VERP_SECRET_FILE = "/etc/mailinfra/verp.key"  # noqa: S105 - a path, not a secret
# The change feed the hosts' lookup services poll (mailinfra.suppression_service): HTTP on the bounce host,
# authenticated with a key derived from the stack secret.
FEED_PORT = 8425
# The VERP local part the core builds (mailinfra.suppression.verp: `b-<mac,day,stream>-<local>=<domain>`
# or `h-<mac,day,stream>`), without its anchors: embedded in each domain's line. POSIX ERE (regexp(5)):
# groups, alternation and bounds only.
VERP_LOCAL_PATTERN = verp.LOCAL_PART_PATTERN.removeprefix("^").removesuffix("$")


def bounce_domains(plan: Plan, host: HostPlan) -> tuple[str, ...]:
    """Return-path domains this host receives bounces for (every stream's, when it is a bounce host)."""
    if not host.accepts_bounces:
        return ()
    return tuple(dict.fromkeys(stream.return_path for stream in plan.streams))


def fbl_addresses(plan: Plan, host: HostPlan) -> tuple[str, ...]:
    return plan.intake.fbl_addresses if host.accepts_bounces else ()


def intake_domains(plan: Plan, host: HostPlan) -> tuple[str, ...]:
    """Every domain the primary instance accepts mail for: return paths, then the FBL addresses' domains."""
    fbl = tuple(a.rpartition("@")[2] for a in fbl_addresses(plan, host))
    return tuple(dict.fromkeys((*bounce_domains(plan, host), *fbl)))


def recipient_patterns(plan: Plan, host: HostPlan) -> tuple[str, ...]:
    """The regexp(5) lines of the accepted recipients (each maps to a non-empty result: accepted)."""
    lines = []
    for domain in bounce_domains(plan, host):
        escaped = re.escape(domain)
        lines.append(f"/^{VERP_LOCAL_PATTERN}@{escaped}$/ verp")
    lines += [f"/^{re.escape(address)}$/ fbl" for address in fbl_addresses(plan, host)]
    # RFC 5321 §4.5.1: every domain the server delivers for MUST accept "postmaster" (case-insensitive:
    # regexp(5) tables are). What arrives there is mostly receivers' reports, so it goes to the processor,
    # which parses a DSN or ARF report and answers 250 "no report" for anything else.
    domains = "|".join(re.escape(domain) for domain in intake_domains(plan, host))
    if domains:
        lines.append(f"/^postmaster@({domains})$/ postmaster")
    return tuple(lines)


def render_intake(plan: Plan, host: HostPlan) -> tuple[RenderedFile, ...]:
    """The bounce host's recipient map, the processor's configuration and its systemd unit."""
    if not host.accepts_bounces:
        return ()
    return (
        rendered("etc/postfix/bounce_recipients", render_template(
            "postfix/bounce_recipients.j2", plan=plan, lines=recipient_patterns(plan, host))),
        rendered(PROCESSOR_CONFIG, json.dumps(processor_config(plan, host), indent=2, sort_keys=True) + "\n"),
        rendered(f"etc/systemd/system/{PROCESSOR_UNIT}.service", render_template(
            "mailinfra/bounceproc.service.j2", plan=plan, host=host, config=f"/{PROCESSOR_CONFIG}",
            state_directory=STATE_DIRECTORY)),
    )


def processor_config(plan: Plan, host: HostPlan) -> dict[str, object]:
    """What the processor reads at start (no secret: the VERP key is a file of its own)."""
    return {
        "stack": plan.stack,
        "host": host.name,
        "lmtp_socket": LMTP_SOCKET,
        "socket_group": "postfix",
        "feed_listen": f"0.0.0.0:{FEED_PORT}",
        "store": {"kind": plan.intake.store, "path": STORE_PATH, "table": suppression_table_name(plan.stack)},
        "verp_secret_file": VERP_SECRET_FILE,
        "return_path_domains": list(bounce_domains(plan, host)),
        "fbl_addresses": list(fbl_addresses(plan, host)),
        "streams": {s.name: s.kind for s in plan.streams},
        # The pool a stream's reports are counted for (a marketing stream: its active tier's).
        "stream_pools": {s.name: s.pools[0][1] if s.pools else None for s in plan.streams},
        "policy": dict(plan.intake.policy),
        # The SES routes' event queues, by name (their URL is known once created; the processor asks
        # GetQueueUrl) and region.
        "ses_queues": [{"name": ses_event_queue_name(plan.stack, r.name), "region": r.region}
                       for r in plan.routes if r.kind == "ses"] if host.accepts_bounces else [],
    }


def ses_event_queue_name(stack: str, route: str) -> str:
    """The SES route's events queue (components/secondary_route.py: its configuration set's name + `-events`;
    the same rule, kept pure here: tests/bounceproc/test_intake.py keeps the two equal)."""
    name = f"mailinfra-{stack}-{route}"
    if len(name) > SES_NAME_MAX:
        digest = hashlib.sha256(name.encode()).hexdigest()[:8]
        name = f"{name[:SES_NAME_MAX - len(digest) - 1]}-{digest}"
    return f"{name}-events"


SES_NAME_MAX = 64


def suppression_table_name(stack: str) -> str:
    """DynamoDB table names are per account and region: the stack keeps two stacks apart."""
    return f"mailinfra-{stack}-suppression"
