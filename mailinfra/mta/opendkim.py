"""OpenDKIM for one Postfix host: a KeyTable/SigningTable entry for every stream the host sends for."""

from __future__ import annotations

from dataclasses import dataclass

from mailinfra.mta.files import RenderedFile, render_template, rendered
from mailinfra.plan.model import HostPlan, Plan

CONF_DIR = "/etc/opendkim"
# OpenDKIM refuses keys in group/world-writable directories: the host creates this 0700, keys 0600.
KEY_DIR = "/etc/opendkim/keys"


def dkim_key_file(org_domain: str, selector: str) -> str:
    """Where OpenDKIM reads the private key of `selector` (one key per org domain, shared by its sending domains)."""
    return f"{KEY_DIR}/{org_domain}/{selector}.private"


@dataclass(frozen=True, slots=True)
class SigningEntry:
    name: str  # KeyTable key: <selector>._domainkey.<d>
    domain: str  # d= : the stream's sending domain, aligned with its From (RFC 7489 §3.1.1)
    selector: str
    key_file: str
    stream: str


def plan_signing(plan: Plan, host: HostPlan) -> tuple[SigningEntry, ...]:
    """The active selectors (RSA, and Ed25519 when configured) of every stream on the host."""
    entries = []
    for stream in (plan.stream(name) for name in host.streams):
        selectors = [stream.dkim_selector, *([stream.ed25519_selector] if stream.ed25519_selector else [])]
        for selector in selectors:
            # One key per org domain and selector, published under every sending domain of that org domain.
            entries.append(SigningEntry(
                name=f"{selector}._domainkey.{stream.sending_domain}", domain=stream.sending_domain,
                selector=selector, key_file=dkim_key_file(stream.org_domain, selector),
                stream=stream.name))
    return tuple(entries)


def render_opendkim(plan: Plan, host: HostPlan) -> tuple[RenderedFile, ...]:
    """opendkim.conf, KeyTable, SigningTable and TrustedHosts of one host."""
    entries = plan_signing(plan, host)
    multiple = len({e.domain for e in entries}) < len(entries)
    conf_dir = CONF_DIR
    prefix = conf_dir.lstrip("/")
    return (
        rendered("etc/opendkim.conf", render_template(
            "opendkim/opendkim.conf.j2", plan=plan, host=host, conf_dir=conf_dir, multiple=multiple)),
        rendered(f"{prefix}/KeyTable", render_template(
            "opendkim/KeyTable.j2", plan=plan, entries=entries, key_dir=KEY_DIR)),
        rendered(f"{prefix}/SigningTable", render_template("opendkim/SigningTable.j2", plan=plan, entries=entries)),
        rendered(f"{prefix}/TrustedHosts", render_template("opendkim/TrustedHosts.j2", plan=plan, host=host)),
    )
