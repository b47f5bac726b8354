"""Enforcement at injection: every sending Postfix instance refuses a suppressed recipient at RCPT.

Each pool instance asks the host's lookup service (mailinfra.suppression_service) through Postfix's
socketmap protocol (socketmap_table(5)): `check_recipient_access socketmap:unix:<socket>:<stream kind>`.
The map name is the instance's stream kind, so an entry refuses only the streams it covers (a complaint
about marketing mail does not stop a password reset). The service answers an access(5) action,
`550 5.7.1 recipient suppressed (...)`, or NOTFOUND.

Why a local map service and not a postmap'd hash: a new entry must reach every host within seconds, and
a hash: file is rebuilt whole (10 M entries: minutes, and a copy per host). The service keeps a local
replica (SQLite, primary key lookups) it updates from the bounce hosts' change feeds every second.

Why it fails closed: a table lookup error makes smtpd answer 451 4.3.0 (postconf(5): lookup errors are
temporary), so with the service down injection is deferred and the app retries; nobody suppressed is mailed.
"""

from __future__ import annotations

import json

from mailinfra.mta.files import RenderedFile, render_template, rendered
from mailinfra.mta.intake import FEED_PORT, VERP_SECRET_FILE
from mailinfra.plan.model import HostPlan, Plan

LOOKUP_SOCKET = "/run/mailinfra-suppression/lookup.sock"
LOOKUP_UNIT = "mailinfra-suppression-lookup"
LOOKUP_CONFIG = "etc/mailinfra/suppression-lookup.json"
# A cache rebuilt from the feeds (the root disk is fine): one replica file per bounce host's feed.
REPLICA_DIRECTORY = "/var/cache/mailinfra-suppression"
POLL_SECONDS = 1.0


def recipient_check(stream_kind: str) -> str:
    """The smtpd_recipient_restrictions of a pool instance of a stream of `stream_kind`."""
    return f"check_recipient_access socketmap:unix:{LOOKUP_SOCKET}:{stream_kind}, permit"


def feed_urls(plan: Plan, host: HostPlan) -> list[str]:
    """Where the host polls changes: every bounce host's feed (its own over loopback)."""
    urls = []
    for bounce_host in (h for h in plan.hosts if h.accepts_bounces):
        address = "127.0.0.1" if bounce_host.name == host.name else bounce_host.fqdn
        urls.append(f"http://{address}:{FEED_PORT}/v1/changes")
    return urls


def render_enforcement(plan: Plan, host: HostPlan) -> tuple[RenderedFile, ...]:
    """The lookup service's configuration and systemd unit (every Postfix host)."""
    config = {
        "stack": plan.stack,
        "host": host.name,
        "socket": LOOKUP_SOCKET,
        "socket_group": "postfix",
        "replica": REPLICA_DIRECTORY,
        "feeds": feed_urls(plan, host),
        "poll_seconds": POLL_SECONDS,
        "verp_secret_file": VERP_SECRET_FILE,
        "store": {"kind": plan.intake.store},
    }
    return (
        rendered(LOOKUP_CONFIG, json.dumps(config, indent=2, sort_keys=True) + "\n"),
        rendered(f"etc/systemd/system/{LOOKUP_UNIT}.service", render_template(
            "mailinfra/suppression-lookup.service.j2", plan=plan, host=host, config=f"/{LOOKUP_CONFIG}",
            cache_directory=REPLICA_DIRECTORY)),
    )


def host_services(host: HostPlan) -> list[str]:
    """The units of the host's suppression services, started before the MTA (the manifest's services)."""
    if host.mta != "postfix":
        return []
    from mailinfra.mta.intake import PROCESSOR_UNIT

    return [LOOKUP_UNIT, *([PROCESSOR_UNIT] if host.accepts_bounces else [])]
