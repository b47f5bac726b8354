"""Fallback moves the right mail: which replies reroute, where overflow lands, what SPF authorizes.

Receiver facts behind the samples: Gmail's SMTP error reference (https://support.google.com/a/answer/3726730:
421 4.7.0 "Try again later, closing connection" is load shedding; 421 4.7.28 "unusual rate of unsolicited
mail ... temporarily rate limited" is a judgement on the sending IP), Yahoo Sender Hub ([TSS04] deferred
"due to unexpected volume or user complaints"), Microsoft 365 (451 4.7.500 "Server busy"; 451 4.7.650
"rate limited due to IP reputation"; RP-001 "related to IP/domain reputation").
"""

from __future__ import annotations

import datetime as dt
import re
import subprocess
from pathlib import Path

import pytest

from mailinfra.dns.spf import parse_spf
from mailinfra.errors import ConfigErrors
from mailinfra.model.load import load_stack
from mailinfra.mta.postfix import ROUTE_TRANSPORT
from mailinfra.mta.powermta import THROTTLE_REPLIES, render_powermta
from mailinfra.mta.replies import render_reply_filter, render_status_filter
from mailinfra.plan.build import build_plan
from mailinfra.plan.model import Plan
from tests.mta.conftest import AS_OF, STACKS_DIR

REPUTATION = [
    "421 4.7.28 [203.0.113.10] Our system has detected an unusual rate of unsolicited mail originating "
    "from your IP address. To protect our users from spam, mail sent from your IP address has been "
    "temporarily rate limited.",
    "421 4.7.0 [TSS04] Messages from 203.0.113.10 temporarily deferred due to unexpected volume or user "
    "complaints - 4.16.55.1",
    "451 4.7.650 The mail server [203.0.113.10] has been temporarily rate limited due to IP reputation.",
    "421 RP-001 (BAY004-MC1F12) Unfortunately, some messages from 203.0.113.10 weren't sent. Please try "
    "again later. The mail server IP connecting to Outlook.com server has exceeded the rate limit allowed. "
    "Reason for rate limitation is related to IP/domain reputation.",
    "421 4.7.26 This mail has been rate limited because it is unauthenticated.",
    "451 4.7.1 Greylisted, please try again later",
    # Unmarked before (no reputation word): a full mailbox, a recipient receiving too fast, postgrey's
    # default answer and Exchange-style greylisting reach the same mailbox on every route.
    "452 4.2.2 The email account that you tried to reach is over quota.",
    "450 4.2.1 The user you are trying to contact is receiving mail at a rate that prevents additional "
    "messages from being delivered.",
    "450 4.2.0 <user@example.org>: Recipient address rejected: Try again later",
    "451 4.7.1 Please try again later",
]
THROTTLE = [
    "421 4.7.0 Try again later, closing connection.",
    "451 4.7.500 Server busy. Please try again later from [203.0.113.10].",
]


def _pmta_regex(pattern: str) -> re.Pattern[str]:
    body, _, flags = pattern[1:].rpartition("/")
    return re.compile(body, re.IGNORECASE if "i" in flags else 0)


@pytest.mark.parametrize("reply", REPUTATION)
def test_powermta_reputation_reply_never_starts_backoff(reply: str) -> None:
    """A reputation or policy deferral matches no throttle pattern: no backoff mode, so no
    backoff-reroute to the secondary route; the queue retries from the same IP after retry-after."""
    assert not [p for p in THROTTLE_REPLIES if _pmta_regex(p).search(reply)]


@pytest.mark.parametrize("reply", THROTTLE)
def test_powermta_throttle_reply_starts_backoff(reply: str) -> None:
    """A capacity reply (the receiver is busy) puts the queue into backoff, which reroutes."""
    assert [p for p in THROTTLE_REPLIES if _pmta_regex(p).search(reply)]


def _postmap(tmp_path: Path, table: str, key: str) -> str:
    (tmp_path / "main.cf").write_text("")
    (tmp_path / "table").write_text(table)
    result = subprocess.run(["postmap", "-c", str(tmp_path), "-q", key, f"regexp:{tmp_path / 'table'}"],
                            capture_output=True, text=True, check=False)
    assert result.stderr == ""
    return result.stdout.strip()


@pytest.fixture
def postmap(tmp_path: Path) -> object:
    if subprocess.run(["which", "postmap"], capture_output=True, check=False).returncode != 0:
        pytest.skip("postmap (Debian postfix) is not installed")
    return lambda table, key: _postmap(tmp_path, table, key)


@pytest.mark.parametrize("reply", REPUTATION)
def test_postfix_reply_filter_makes_reputation_final_and_status_filter_defers_it(postmap, reply: str) -> None:
    """Postfix's own regexp engine: the reply filter turns each reputation 4xx into a marked 5xx (smtp(8)
    then tries no other server, smtp_trouble.c), and the status filter turns the marked status back into
    4.X.X (bounce.c then defers)."""
    rewritten = postmap(render_reply_filter(throttle_reroutes=True), reply)
    assert rewritten.startswith("550 5.") and "mailinfra-backoff:" in rewritten
    status = rewritten.split()[1]
    dsn = f"{status} host mx.example[192.0.2.10] said: {rewritten} (in reply to RCPT TO command)"
    assert postmap(render_status_filter(), dsn).startswith("4" + status[1:] + " ")


@pytest.mark.parametrize("reply", THROTTLE)
def test_postfix_reply_filter_leaves_throttle_replies_to_reroute(postmap, reply: str) -> None:
    """A throttle reply is left a 4xx, so smtp(8) moves on to smtp_fallback_relay in the same attempt;
    with `fallback_on: [outage]` it is held like a reputation reply."""
    assert postmap(render_reply_filter(throttle_reroutes=True), reply) == ""
    assert postmap(render_reply_filter(throttle_reroutes=False), reply).startswith("550 5.")


@pytest.fixture(scope="module")
def prod() -> Plan:
    return build_plan(load_stack("prod"), AS_OF)


def _configs(plan: Plan) -> dict[str, str]:
    return {h.name: render_powermta(plan, h)[0].content for h in plan.hosts if h.mta == "powermta"}


def test_host_group_overflow_lands_in_the_same_stream_and_tier(prod: Plan) -> None:
    """Every peer address a route host admits leaves from the pool of its own IP: a cold tier never
    lands in an active pool, one brand never in another's."""
    pools_by_address = {ip.address: ip.pool for ip in prod.ips}
    admitted = 0
    for text in _configs(prod).values():
        for address, pool in re.findall(r"<source (\S+)/32>\n(?:    .*\n)*?    default-virtual-mta (\S+)\n", text):
            if address.startswith("127.") or address not in pools_by_address:
                continue
            admitted += 1
            assert pool == f"pool-{pools_by_address[address]}", address
    assert admitted


def test_overflow_never_loops_back(prod: Plan) -> None:
    """A host that a stream's route names never reroutes that stream's queues (no A -> B -> A), and a
    host that reroutes sends only to the route's hosts."""
    configs = _configs(prod)
    hops = 0
    for stream in prod.streams:
        route = prod.route(stream.route) if stream.route else None
        if route is None or route.kind != "hosts":
            continue
        for host in route.hosts:
            assert not re.search(rf"backoff-reroute-to-virtual-mta fallback-({'|'.join(stream.pool_names())})\n",
                                 configs[host]), host
        targets = {f"[{prod.host(h).fqdn}]:25" for h in route.hosts}
        for name, text in configs.items():
            for pool in stream.pool_names():
                hop = re.search(rf"<virtual-mta fallback-{pool}>\n(?:    .*\n)*?        smtp-hosts (.+)\n", text)
                if hop:
                    hops += 1
                    assert set(hop.group(1).split()) == targets, name
                    assert f"[{prod.host(name).fqdn}]:25" not in targets, name
    assert hops


def _variant(tmp_path: Path, edits: list[tuple[str, str]]) -> Plan:
    text = (STACKS_DIR / "Pulumi.prod.yaml").read_text()
    for old, new in edits:
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / "Pulumi.prodvariant.yaml"
    path.write_text(text)
    return build_plan(load_stack(str(path)), AS_OF)


def test_spf_of_each_stream_lists_only_the_ips_that_send_for_it(tmp_path: Path) -> None:
    """GIVEN a route host that also carries another stream's IPs (com-bulk on pmta2) THEN the marketing
    SPF still authorizes only marketing's own IPs (RFC 7208 §2.4: SPF says who may send for the domain;
    overflow leaves from the stream's own pools)."""
    plan = _variant(tmp_path, [("    com-bulk:\n      injection_port: 10029\n      hosts: [bulk1]",
                                "    com-bulk:\n      injection_port: 10029\n      hosts: [pmta2]"),
                               ("    pmta2:\n      mta: powermta\n      instance_type: c6i.xlarge",
                                "    pmta2:\n      mta: powermta\n      instance_type: m6i.4xlarge")])
    assert any(ip.pool == "com-bulk" and ip.host == "pmta2" for ip in plan.ips)
    for stream in plan.streams:
        own = {ip.address for ip in plan.ips if ip.stream == stream.name}
        spf = next(r for r in plan.records if r.name == stream.return_path and r.type == "TXT"
                   and r.values[0].startswith("v=spf1"))
        listed = {t.value for t in parse_spf(spf.values[0]).terms if t.name == "ip4"}
        assert listed <= own, stream.name


def test_marketing_reroutes_only_when_it_declares_throttle(tmp_path: Path) -> None:
    """GIVEN com-marketing declares `fallback_on: [outage]` THEN none of its PowerMTA queues reroute on
    backoff (PowerMTA reroutes from backoff mode, which only throttle replies start)."""
    plan = _variant(tmp_path, [("      route: com-marketing-overflow\n      fallback_on: [outage, throttle]",
                                "      route: com-marketing-overflow\n      fallback_on: [outage]")])
    for name, text in _configs(plan).items():
        assert "backoff-reroute-to-virtual-mta fallback-com-mkt" not in text, name


def test_undeclared_marketing_route_is_refused_at_load(tmp_path: Path) -> None:
    """A marketing stream with a route and no fallback_on: one line naming the file and key."""
    with pytest.raises(ConfigErrors) as caught:
        _variant(tmp_path, [("      route: com-marketing-overflow\n      fallback_on: [outage, throttle]\n",
                             "      route: com-marketing-overflow\n")])
    message = str(caught.value)
    assert "Pulumi.prodvariant.yaml" in message and "streams.com-marketing.fallback_on" in message
    assert "[outage], [outage, throttle] or []" in message


def test_route_host_without_the_streams_pool_is_refused(tmp_path: Path) -> None:
    """The old prod topology (com marketing overflowing to net's pmta3) is refused at load: its overflow
    would leave from the other brand's pools."""
    with pytest.raises(ConfigErrors) as caught:
        _variant(tmp_path, [("      kind: hosts\n      hosts: [pmta2]", "      kind: hosts\n      hosts: [pmta3]")])
    assert "streams.com-marketing.route" in str(caught.value)


def test_transactional_default_is_outage_and_throttle() -> None:
    """Transactional mail takes its route on outages and throttling unless the operator says otherwise."""
    plan = build_plan(load_stack("dev"), dt.date(2026, 12, 20))
    assert plan.stream("transactional").fallback_on == ("outage", "throttle")


def _postconf(directory: Path, *args: str) -> str:
    result = subprocess.run(["postconf", "-c", str(directory), *args], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result
    return result.stdout


def test_dsns_never_ride_the_fallback_relay(rendered_stack: tuple[Plan, dict[str, Path]]) -> None:
    """Postfix's own reading of each pool instance with a secondary route: the services its DSNs (null
    sender, to the VERP address at the bounce MX: `smtp:[...]` on the bounce host, the IPs' `_dsn` services
    elsewhere) leave by have no smtp_fallback_relay (postconf -P: master.cf overrides), while the pool's
    transports keep the route.
    Before, `smtp` inherited main.cf's smtp_fallback_relay: with the bounce MX unreachable, bounces of
    our mail went out through SES or the relay (postconf(5): smtp_fallback_relay is used for destinations
    that cannot be found or reached)."""
    if subprocess.run(["which", "postconf"], capture_output=True, check=False).returncode != 0:
        pytest.skip("postconf (Debian postfix) is not installed")
    plan, dirs = rendered_stack
    checked = 0
    for root in dirs.values():
        for main in sorted(root.glob("etc/postfix-*/main.cf")):
            directory = main.parent
            if not _postconf(directory, "-h", "smtp_fallback_relay").strip():
                continue
            overrides = _postconf(directory, "-P").splitlines()
            # The route's own transport (isolations and mailinfra-shaping send there) is the alternative itself:
            # it has no fallback either, and carries no DSNs.
            unrouted = {line.split("/")[0] for line in overrides
                        if line.endswith("/smtp_fallback_relay =")} - {ROUTE_TRANSPORT}
            transport_maps = _postconf(directory, "-h", "transport_maps")
            if "smtp:[" in transport_maps:
                # The host is the bounce MX: DSNs go by `smtp:[127.0.0.1]:25` (and `relay`).
                assert unrouted == {"smtp", "relay"}, directory
            else:
                # The bounce MX is another host: the return path rotates across the IPs' DSN services.
                return_path = next(m for m in transport_maps.split("pipemap:")[1:] if "=default" in m)
                chosen = set(re.findall(r"\b(\w+_dsn)\b", return_path))
                assert chosen and chosen <= unrouted, (directory, return_path)
                assert not re.findall(r"\b\w+_default\b", return_path.split("randmap:")[1]), return_path
                for name in chosen:
                    service = _postconf(directory, "-M", f"{name}/unix").split()
                    # An smtp(8) service bound to the IP like its default transport (bind address enforced).
                    assert service[7] == "smtp" and any(o.startswith("smtp_bind_address=")
                                                        and o != "smtp_bind_address=" for o in service), service
            # The pool's provider transports keep main.cf's route.
            assert not any(name.endswith(("_gmail", "_default")) for name in unrouted), directory
            checked += 1
    assert checked, f"{plan.stack}: no instance with a secondary route was checked"
