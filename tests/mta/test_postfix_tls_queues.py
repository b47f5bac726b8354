"""Credentials, queues and injection checks of the rendered Postfix instances, read back by Postfix itself.

Each value is what the real `postconf -c DIR -h` reports for the instance (the effective value, defaults
included) or what the real `postmap -q` finds in a rendered table, never our template text.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from mailinfra.mta.postfix import Instance, plan_instances
from mailinfra.plan.model import Plan
from tests.tooling import require_tool


def _postconf(directory: Path, parameter: str) -> str:
    done = subprocess.run([require_tool("postconf"), "-c", str(directory.resolve()), "-h", parameter],
                          capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _postmap(directory: Path, key: str, table: str) -> str:
    done = subprocess.run([require_tool("postmap"), "-c", str(directory.resolve()), "-q", key, table],
                          capture_output=True, text=True, check=False)
    return done.stdout.strip()


def _seconds(value: str) -> int:
    # postconf(5) time units; a bare number is the parameter's default unit (days for queue lifetimes).
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    return int(value[:-1]) * units[value[-1]] if value[-1] in units else int(value) * 86400


def _instances(plan: Plan, dirs: dict[str, Path]) -> list[tuple[Instance, Path]]:
    return [(i, dirs[h.name] / i.config_dir.lstrip("/")) for h in plan.hosts if h.mta == "postfix"
            for i in plan_instances(plan, h)]


def test_route_credentials_go_only_to_a_verified_relay(rendered_stack: tuple[Plan, dict[str, Path]]) -> None:
    """Every destination with SASL credentials has TLS policy `secure` with its own name to match (postconf(5)
    smtp_tls_policy_maps, looked up by the `[host]:port` smtp(8) connects to; `may`, the old level, hands
    the password to any certificate), a trust store is configured, and sasl_passwd holds no other key
    (smtp(8) also looks up the bare server name, reachable without that policy)."""
    plan, dirs = rendered_stack
    checked = 0
    for _instance, directory in _instances(plan, dirs):
        sasl = directory / "sasl_passwd"
        if not sasl.exists():
            continue
        policy_maps = _postconf(directory, "smtp_tls_policy_maps")
        assert _postconf(directory, "smtp_tls_CAfile") == "/etc/ssl/certs/ca-certificates.crt"
        keys = [line.split()[0] for line in sasl.read_text().splitlines() if line and not line.startswith("#")]
        assert keys
        for key in keys:
            host = key.split("]")[0].lstrip("[")
            assert key.startswith("[") and _postmap(directory, key, policy_maps) == f"secure match={host}", key
            checked += 1
    assert checked or not any(r.kind in ("relay", "ses") for r in plan.routes)


def test_every_relay_and_ses_route_is_verified_even_without_credentials(
        rendered_stack: tuple[Plan, dict[str, Path]]) -> None:
    """A stream's relay/SES next hop is looked up as `secure` in its instance's policy table."""
    plan, dirs = rendered_stack
    for instance, directory in _instances(plan, dirs):
        route = plan.route(instance.stream.route) if instance.stream.route else None
        if route is None or route.kind not in ("relay", "ses"):
            continue
        destination = f"[{route.smtp_host}]:{route.port}"
        assert _postmap(directory, destination, _postconf(directory, "smtp_tls_policy_maps")).startswith("secure")


def test_queue_lifetime_follows_the_stream(rendered_stack: tuple[Plan, dict[str, Path]]) -> None:
    """maximal_queue_lifetime and bounce_queue_lifetime of each instance are its stream's lifetime: 1 h for a
    transactional stream by default (Postfix's own default, 5 d, would deliver a one-time password days late)."""
    plan, dirs = rendered_stack
    for instance, directory in _instances(plan, dirs):
        stream = instance.stream
        for parameter in ("maximal_queue_lifetime", "bounce_queue_lifetime"):
            lifetime = _seconds(_postconf(directory, parameter))
            if stream.kind == "transactional":
                assert lifetime <= 3600, (instance.name, parameter)
            assert lifetime == stream.queue_lifetime_seconds, (instance.name, parameter)


def test_connections_outlive_the_rate_delay_of_a_warmed_ip(rendered_stack: tuple[Plan, dict[str, Path]]) -> None:
    """postconf(5): an idle connection is kept smtp_connection_cache_time_limit, and scache(8) caps it at
    connection_cache_ttl_limit (both 2 s by default): each must exceed every paced delay of a warmed IP, or
    each of its messages opens a new TCP + TLS session. TLS sessions are cached too (tlsmgr)."""
    plan, dirs = rendered_stack
    warmed = {limit.ip for limit in plan.warmup if limit.status == "warmed"}
    checked = 0
    for instance, directory in _instances(plan, dirs):
        cache = min(_seconds(_postconf(directory, "smtp_connection_cache_time_limit")),
                    _seconds(_postconf(directory, "connection_cache_ttl_limit")))
        assert _postconf(directory, "smtp_tls_session_cache_database").startswith("btree:")
        for transport in instance.transports:
            delay = _seconds(_postconf(directory, f"{transport.name}_destination_rate_delay"))
            if transport.ip in warmed and 0 < delay <= 10:
                assert delay < cache, transport.name
                checked += 1
    assert checked or not warmed


def test_tls_connections_are_reused(rendered_stack: tuple[Plan, dict[str, Path]]) -> None:
    """postconf(5) smtp_tls_connection_reuse (Postfix >= 3.4, default no): the connection cache keeps TLS
    sessions only through tlsproxy(8), which master.cf must run; without both every paced message to a
    STARTTLS receiver is a new TCP and TLS handshake."""
    plan, dirs = rendered_stack
    for _instance, directory in _instances(plan, dirs):
        assert _postconf(directory, "smtp_tls_connection_reuse") == "yes"
        done = subprocess.run([require_tool("postconf"), "-c", str(directory.resolve()), "-M", "tlsproxy/unix"],
                              capture_output=True, text=True, check=True)
        assert done.stdout.split()[-1] == "tlsproxy", done.stdout


def test_injected_mail_gets_a_message_id(rendered_stack: tuple[Plan, dict[str, Path]]) -> None:
    """Postfix adds Message-ID/Date to mail from the app (a remote client) only with always_add_missing_headers
    (default no: local_header_rewrite_clients); Gmail's sender guidelines refuse mail without Message-ID."""
    plan, dirs = rendered_stack
    for _instance, directory in _instances(plan, dirs):
        assert _postconf(directory, "always_add_missing_headers") == "yes"


@pytest.mark.parametrize(("header", "refused"), [
    ("From: Shop <hello@{d}>", False),
    ("From: hello@{d}", False),
    ("From: <HELLO@{u}>", False),
    ("From: hello@other.example", True),
    ("From: hello@x{d}", True),  # a look-alike domain
    ("From: hello@sub.{d}", True),  # another (sub)domain: another stream's reputation
    ('From: "hello@{d}" <evil@other.example>', True),  # the domain only in the display name
    ("Subject: hello@other.example", False),  # only From is judged
    # Two mailboxes (RFC 5322 §3.6.2 allows a list): receivers may judge either (RFC 7489 §6.6.1), so
    # the aligned one last must not carry an unaligned one through.
    ("From: evil@other.example, hello@{d}", True),
    ("From: <evil@other.example>,<hello@{d}>", True),
    ('From: "Doe, Jane" <hello@{d}>', False),  # a comma inside a quoted display name is one mailbox
])
def test_from_header_must_be_the_streams_sending_domain(rendered_stack: tuple[Plan, dict[str, Path]],
                                                        header: str, refused: bool) -> None:
    """The instance's header_checks, looked up by real postmap: a From of any domain but the stream's sending
    domain is REJECTed with 5.7.1 (DMARC alignment, RFC 7489 §3.1), an aligned one passes."""
    plan, dirs = rendered_stack
    for instance, directory in _instances(plan, dirs):
        domain = instance.stream.sending_domain
        table = _postconf(directory, "header_checks").replace(
            instance.config_dir, str(directory.resolve()))
        got = _postmap(directory, header.format(d=domain, u=domain.upper()), table)
        assert got.startswith("REJECT 5.7.1") == refused, (instance.name, header, got)


def test_the_bounce_mx_is_hardened(rendered_stack: tuple[Plan, dict[str, Path]]) -> None:
    """The bounce host's primary: no VRFY, HELO required, anvil limits set (postconf(5) defaults: no rate
    limit at all), one-recipient-sized limits, and STARTTLS from the certificate the host generates."""
    plan, dirs = rendered_stack
    for host in (h for h in plan.hosts if h.mta == "postfix" and h.accepts_bounces):
        directory = dirs[host.name] / "etc/postfix"
        assert _postconf(directory, "disable_vrfy_command") == "yes"
        assert _postconf(directory, "smtpd_helo_required") == "yes"
        assert int(_postconf(directory, "smtpd_client_connection_rate_limit")) > 0
        assert int(_postconf(directory, "smtpd_client_message_rate_limit")) > 0
        assert int(_postconf(directory, "smtpd_recipient_limit")) <= 10
        assert int(_postconf(directory, "message_size_limit")) <= 10 * 1024 * 1024
        assert _postconf(directory, "smtpd_tls_security_level") == "may"
        assert _postconf(directory, "smtpd_tls_chain_files") == "/etc/mailinfra/tls/inbound.pem"


def test_declared_injectors_narrow_who_may_inject_a_stream(tmp_path: Path) -> None:
    """GIVEN dev with streams.transactional.injectors [10.20.4.0/24] (inside mta1's 10.20.0.0/16) THEN the tx
    instance's mynetworks, as postconf reads it, is loopback and that /24 only, and the security group
    opens the tx port to that /24 only; other streams keep the host's networks."""
    from mailinfra.model.load import load_stack
    from mailinfra.mta.network import host_injection_ports, plan_host_network
    from mailinfra.mta.render import render_host
    from mailinfra.plan.build import build_plan
    from tests.mta.conftest import AS_OF, STACKS_DIR, write_host

    text = (STACKS_DIR / "Pulumi.dev.yaml").read_text().replace(
        "      pool: tx\n      route: ses\n", "      pool: tx\n      route: ses\n      injectors: [10.20.4.0/24]\n", 1)
    stack_file = tmp_path / "Pulumi.dev.yaml"
    stack_file.write_text(text)
    plan = build_plan(load_stack(str(stack_file)), AS_OF)
    host = plan.host("mta1")
    root = write_host(tmp_path / "mta1", render_host(plan, "mta1"))
    assert _postconf(root / "etc/postfix-tx", "mynetworks") == "127.0.0.0/8, 10.20.4.0/24"
    assert _postconf(root / "etc/postfix-bulk", "mynetworks") == "127.0.0.0/8, 10.20.0.0/16"
    port = host_injection_ports(plan, host)["tx"]
    opened = {r.cidr for r in plan_host_network(plan, host).rules if r.direction == "ingress" and r.port == port}
    assert opened == {"10.20.4.0/24"}
