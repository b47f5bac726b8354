"""The local validating resolver a `tls: dane` host needs, so Postfix's DANE is DANE and not opportunistic TLS.

Postfix looks up TLSA records with `smtp_dns_support_level = dnssec` and uses them only when the answer
is DNSSEC-validated, i.e. carries the AD bit (postconf(5), TLS_README "DANE"); without a validating
resolver every delivery silently falls back to unauthenticated opportunistic TLS. Which resolver:

- Route 53 Resolver DNSSEC validation for the VPC (`aws.route53.ResolverDnsSecConfig`) does NOT do it:
  the Resolver "ignores the DO bit and the CD bit ... does not return DNSSEC records or set the AD bit in
  the response" (Route 53 Developer Guide, "Enabling DNSSEC validation in Amazon Route 53").
- A validating resolver on the host does: Debian's unbound validates with the root trust anchor out of the
  box, and Postfix trusts the AD bit (it sets RES_TRUSTAD itself), which is only safe from 127.0.0.1.

So a dane host gets the `unbound` package, a drop-in that listens on loopback only, /etc/resolv.conf on
127.0.0.1, and a dhclient hook that keeps DHCP from restoring the VPC resolver. unbound recurses itself
(forwarding to the VPC resolver would strip the signatures it needs), so the host needs DNS egress
(udp and tcp 53) — `RESOLVER_EGRESS`, for the host's security group.
"""

from __future__ import annotations

from mailinfra.mta.files import RenderedFile, render_template, rendered
from mailinfra.plan.model import HostPlan

RESOLVER_PACKAGES = ("unbound",)
# (protocol, port) a recursing resolver sends to the internet's name servers (RFC 1035 §4.2; TCP: RFC 7766).
RESOLVER_EGRESS = (("udp", 53), ("tcp", 53))
UNBOUND_DROP_IN = "etc/unbound/unbound.conf.d/mailinfra-dane.conf"
DHCLIENT_HOOK = "etc/dhcp/dhclient-enter-hooks.d/mailinfra-keep-resolver"


def needs_local_resolver(host: HostPlan) -> bool:
    return host.mta == "postfix" and host.tls == "dane"


def resolver_packages(host: HostPlan) -> tuple[str, ...]:
    """Debian packages the host installs at first boot for its resolver (none unless tls: dane)."""
    return RESOLVER_PACKAGES if needs_local_resolver(host) else ()


def resolver_egress(host: HostPlan) -> tuple[tuple[str, int], ...]:
    return RESOLVER_EGRESS if needs_local_resolver(host) else ()


def render_resolver(host: HostPlan) -> tuple[RenderedFile, ...]:
    """The resolver's files for a dane host; nothing for the others (they keep the VPC resolver)."""
    if not needs_local_resolver(host):
        return ()
    return (
        rendered(UNBOUND_DROP_IN, render_template("unbound/mailinfra-dane.conf.j2", host=host)),
        rendered("etc/resolv.conf", render_template("unbound/resolv.conf.j2", host=host)),
        rendered(DHCLIENT_HOOK, render_template("unbound/dhclient-keep-resolver.j2", host=host)),
    )
