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
    """Where the host polls changes: every bounce host's feed (its own over loopback).

    Another bounce host's feed is reached at its private address, inside the VPC: the security groups admit
    the feed port only from the sending hosts' groups (mailinfra.mta.network.plan_feed_access), a rule that
    matches private traffic only (VPC User Guide, "Security group rules": a referenced group admits "the
    private IP addresses of the network interfaces" in it), and the plain-HTTP feed never crosses the
    Internet gateway. The URL names the bounce host's first IP by its planned address; the host's manifest
    binds it to that IP's private address (components/mta_host.py, FEED_POSITION)."""
    urls = []
    for bounce_host in (h for h in plan.hosts if h.accepts_bounces):
        address = "127.0.0.1" if bounce_host.name == host.name else feed_address(plan, bounce_host)
        urls.append(f"http://{address}:{FEED_PORT}/v1/changes")
    return urls


def feed_address(plan: Plan, bounce_host: HostPlan) -> str:
    """The planned address of the IP whose private address a bounce host's feed is polled at."""
    return plan.ip(bounce_host.ips[0]).address


def feed_clients(plan: Plan, bounce_host: HostPlan) -> list[HostPlan]:
    """The other hosts that poll `bounce_host`'s feed (each runs the lookup service)."""
    return [h for h in plan.hosts if h.name != bounce_host.name and host_services(h)] \
        if bounce_host.accepts_bounces else []


def render_enforcement(plan: Plan, host: HostPlan) -> tuple[RenderedFile, ...]:
    """The lookup service's configuration and systemd unit (every Postfix host)."""
    feeds = feed_urls(plan, host)
    config: dict[str, object] = {
        "stack": plan.stack,
        "host": host.name,
        "socket": LOOKUP_SOCKET,
        "socket_group": "postfix",
        "replica": REPLICA_DIRECTORY,
        "feeds": feeds,
        "poll_seconds": POLL_SECONDS,
        "verp_secret_file": VERP_SECRET_FILE,
        "store": {"kind": plan.intake.store},
    }
    if any(not url.startswith("http://127.0.0.1:") for url in feeds):
        # The polls leave from the host's first IP's private address (bound by the manifest like the MTA's
        # bind addresses): the address the bounce host's group admits, whichever the kernel would pick.
        config["source_address"] = plan.ip(host.ips[0]).address
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
