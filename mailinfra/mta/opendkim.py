"""OpenDKIM for one Postfix host: a KeyTable/SigningTable entry for every stream the host sends for.

Why two signers: OpenDKIM 2.11 signs every key of its KeyTable with its one global SignatureAlgorithm
(opendkim.conf(5)); an Ed25519 key under rsa-sha256 fails ("EVP_PKEY_get1_RSA() failed") and the
milter tempfails every message. So RSA selectors are signed by `opendkim` (the Debian service,
/etc/opendkim.conf) and Ed25519 selectors (RFC 8463) by a second process, `opendkim-ed25519`, with
`SignatureAlgorithm ed25519-sha256` and its own socket; Postfix chains both milters. Both read the
one KeyTable (a signer loads only the keys its SigningTable names), so every key path is
`dkim_key_file` and the host fetches each key once.

Why Unix-domain sockets (docs/architecture.md, "DKIM"): over inet:127.0.0.1 each milter round trip
stalled ~40 ms twice per message (Nagle on Postfix's small writes meeting Linux's 40 ms minimum
delayed ACK; strace showed OpenDKIM idle in poll() waiting for the next command), which held
injection to 55 msg/s in the lab against stock Postfix's 200. A Unix socket has no Nagle. Postfix
reaches the sockets through the `opendkim` group (SOCKET_GROUP), as Debian's packaging intends.

Why the RSA signer is required and the Ed25519 one best-effort: every receiver verifies RSA (RFC 8301),
few verify Ed25519 yet (RFC 8463 is an addition, not a replacement), so mail with the RSA signature alone
authenticates everywhere. A dead Ed25519 signer must therefore not defer all mail: Postfix's per-milter
`default_action` (postconf(5) "milter_default_action", MILTER_README "Different settings for different
Milter applications") is `accept` for it (skip that milter, keep the others), `tempfail` for the RSA
one (never unsigned); and the Ed25519 OpenDKIM answers `accept` to its own failures (On-Default,
opendkim.conf(5)) where the RSA one keeps OpenDKIM's tempfail.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailinfra.mta.files import RenderedFile, render_template, rendered
from mailinfra.mta.signing import CANONICALIZATION, OVERSIGNED_HEADERS, SIGNED_HEADERS
from mailinfra.plan.model import HostPlan, Plan

CONF_DIR = "/etc/opendkim"
# OpenDKIM refuses keys in group/world-writable directories: the host creates this 0700, keys 0600.
KEY_DIR = "/etc/opendkim/keys"
# Debian's tmpfiles.d creates it (0750 opendkim:opendkim) at boot; shared by both signers, so no unit
# owns it as a RuntimeDirectory (stopping that unit would delete the other signer's socket).
RUN_DIR = "/run/opendkim"
# Postfix's smtpd/cleanup join this group (initgroups when they drop privileges) to reach the sockets,
# which UMask 007 makes 0770 opendkim:opendkim.
SOCKET_GROUP = "opendkim"
RSA = "rsa-sha256"
ED25519 = "ed25519-sha256"


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
    algorithm: str  # the DKIM a= it signs with: rsa-sha256 | ed25519-sha256


@dataclass(frozen=True, slots=True)
class Signer:
    """One OpenDKIM process: one signature algorithm, its own socket, PID file and SigningTable."""

    service: str  # systemd unit (without .service)
    algorithm: str
    conf: str  # absolute path of its opendkim.conf
    signing_table: str
    socket_path: str  # its Unix-domain socket, absolute (no Postfix service is chrooted: master.cf)
    pid_file: str
    entries: tuple[SigningEntry, ...]
    # Required: mail waits (4xx) while this signer is down. Not required: mail goes on without its signature.
    required: bool = True

    @property
    def milter(self) -> str:
        """The signer's socket as Postfix names a milter."""
        return f"unix:{self.socket_path}"

    @property
    def default_action(self) -> str:
        """Postfix's per-milter default_action: what it does when this signer is unreachable or fails."""
        return "tempfail" if self.required else "accept"

    @property
    def milter_entry(self) -> str:
        """The smtpd_milters element: the socket with its own default_action (Postfix >= 3.0 syntax)."""
        return f"{{ {self.milter}, default_action={self.default_action} }}"

    @property
    def socket(self) -> str:
        """The same socket in OpenDKIM's notation."""
        return f"local:{self.socket_path}"


def plan_signing(plan: Plan, host: HostPlan) -> tuple[SigningEntry, ...]:
    """The active selectors (RSA, and Ed25519 when configured) of every stream on the host."""
    entries = []
    for stream in (plan.stream(name) for name in host.streams):
        selectors = [(stream.dkim_selector, RSA),
                     *([(stream.ed25519_selector, ED25519)] if stream.ed25519_selector else [])]
        for selector, algorithm in selectors:
            # One key per org domain and selector, published under every sending domain of that org domain.
            entries.append(SigningEntry(
                name=f"{selector}._domainkey.{stream.sending_domain}", domain=stream.sending_domain,
                selector=selector, key_file=dkim_key_file(stream.org_domain, selector),
                stream=stream.name, algorithm=algorithm))
    return tuple(entries)


def plan_signers(plan: Plan, host: HostPlan) -> tuple[Signer, ...]:
    """The RSA signer (always: the Debian `opendkim` service) and, when a stream has an Ed25519
    selector, the Ed25519 signer; Postfix calls them in this order."""
    entries = plan_signing(plan, host)
    # The RSA signer's socket and PID file are where Debian's packaging puts them (/etc/default/opendkim).
    signers = [Signer("opendkim", RSA, "/etc/opendkim.conf", f"{CONF_DIR}/SigningTable",
                      f"{RUN_DIR}/opendkim.sock", f"{RUN_DIR}/opendkim.pid",
                      tuple(e for e in entries if e.algorithm == RSA))]
    ed25519 = tuple(e for e in entries if e.algorithm == ED25519)
    if ed25519:
        signers.append(Signer("opendkim-ed25519", ED25519, "/etc/opendkim-ed25519.conf",
                              f"{CONF_DIR}/SigningTable.ed25519",
                              f"{RUN_DIR}/opendkim-ed25519.sock", f"{RUN_DIR}/opendkim-ed25519.pid",
                              ed25519, required=False))
    return tuple(signers)


def plan_milters(plan: Plan, host: HostPlan) -> tuple[str, ...]:
    """smtpd_milters of every Postfix instance of the host: each signer with its default_action, RSA first."""
    return tuple(signer.milter_entry for signer in plan_signers(plan, host))


def render_opendkim(plan: Plan, host: HostPlan) -> tuple[RenderedFile, ...]:
    """Per signer its opendkim.conf and SigningTable; the shared KeyTable and TrustedHosts; the
    systemd unit of the Ed25519 signer and the drop-in that starts it with Debian's opendkim."""
    entries = plan_signing(plan, host)
    signers = plan_signers(plan, host)
    prefix = CONF_DIR.lstrip("/")
    files = [
        rendered(f"{prefix}/KeyTable", render_template(
            "opendkim/KeyTable.j2", plan=plan, entries=entries, key_dir=KEY_DIR)),
        rendered(f"{prefix}/TrustedHosts", render_template("opendkim/TrustedHosts.j2", plan=plan, host=host)),
    ]
    for signer in signers:
        # More than one selector for a From domain in one signer: sign with each (MultipleSignatures).
        multiple = len({e.domain for e in signer.entries}) < len(signer.entries)
        files.append(rendered(signer.conf.lstrip("/"), render_template(
            "opendkim/opendkim.conf.j2", plan=plan, host=host, conf_dir=CONF_DIR, signer=signer,
            multiple=multiple, canonicalization=CANONICALIZATION, signed_headers=SIGNED_HEADERS,
            oversigned_headers=OVERSIGNED_HEADERS)))
        files.append(rendered(signer.signing_table.lstrip("/"), render_template(
            "opendkim/SigningTable.j2", plan=plan, entries=signer.entries, signer=signer)))
    for signer in signers[1:]:
        files.append(rendered(f"etc/systemd/system/{signer.service}.service", render_template(
            "opendkim/opendkim-extra.service.j2", plan=plan, host=host, signer=signer)))
        # Wants= in a drop-in of Debian's unit: starting opendkim (cloud-init enables it) starts this
        # signer too, and only on hosts that render it.
        files.append(rendered(f"etc/systemd/system/opendkim.service.d/{signer.service}.conf", render_template(
            "opendkim/opendkim-wants.conf.j2", plan=plan, signer=signer)))
    return tuple(files)
