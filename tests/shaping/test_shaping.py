"""The automatic response (mailinfra.shaping): which published replies mean what, what the state machine does
with them, and that its actions change what the real Postfix tools read (postconf, postmap -q)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path

import pytest

from mailinfra.model.load import load_stack
from mailinfra.mta.render import render_host
from mailinfra.plan.build import build_plan
from mailinfra.shaping.engine import NORMAL, REROUTED, SLOWED, SUSPENDED, Action, Shaper
from mailinfra.shaping.logline import parse_delivery
from mailinfra.shaping.plan import SHAPING_CONFIG, plan_shaping
from mailinfra.shaping.postfix import InstanceControl
from mailinfra.shaping.rules import BLOCK, REPUTATION, THROTTLE, classify
from mailinfra.shaping.service import action_line
from tests.mta.conftest import write_host
from tests.tooling import require_tool

AS_OF = dt.date(2026, 12, 20)


@pytest.mark.parametrize(("provider", "reply", "kind"), [
    # Microsoft's published block list reply (S3150).
    ("microsoft", "550 5.7.1 Unfortunately, messages from [203.0.113.5] weren't sent. Please contact your "
                  "Internet service provider since part of their network is on our block list (S3150).", BLOCK),
    ("yahoo", "553 5.7.1 [BL21] Connections will not be accepted from 203.0.113.5, because the ip is in "
              "Spamhaus's list; see https://postmaster.yahooinc.com/error-codes", BLOCK),
    ("gmail", "550 5.7.1 Service unavailable, Client host [203.0.113.5] blocked using Spamhaus", BLOCK),
    ("gmail", "550-5.7.1 [203.0.113.5] Our system has detected that this message is likely unsolicited mail. "
              "To reduce the amount of spam sent to Gmail, this message has been blocked.", BLOCK),
    ("gmail", "421-4.7.28 [203.0.113.5] Our system has detected an unusual rate of unsolicited mail originating "
              "from your IP address.", REPUTATION),
    ("yahoo", "421 4.7.0 [TSS04] Messages from 203.0.113.5 temporarily deferred due to unexpected volume or user "
              "complaints", REPUTATION),
    ("microsoft", "451 4.7.650 The mail server [203.0.113.5] has been temporarily rate limited due to IP "
                  "reputation.", REPUTATION),
    ("gmail", "421-4.7.0 Try again later, closing connection.", THROTTLE),
])
def test_published_replies_are_classified(provider: str, reply: str, kind: str) -> None:
    rule = classify(provider, reply)
    assert rule is not None and rule.kind == kind, rule


@pytest.mark.parametrize("reply", [
    "550 5.1.1 The email account that you tried to reach does not exist.",  # a recipient, not the pool
    "452 4.2.2 The email account that you tried to reach is over quota.",
    "250 2.0.0 OK",
])
def test_replies_about_recipients_mean_nothing_about_the_pool(reply: str) -> None:
    assert classify("gmail", reply) is None


BLOCKED = "550 5.7.1 [203.0.113.5] Our system has detected that this message is likely unsolicited mail; blocked"


def test_a_block_moves_the_pool_to_its_route_and_returns_after_the_cooldown() -> None:
    """GIVEN a pool whose stream declares a route WHEN gmail blocks it twice in a minute THEN its gmail mail
    is rerouted (only gmail); WHEN the cool-down passes without a block THEN it returns to normal."""
    shaper = Shaper({"mkt-cold": True}, cooldown_seconds=60)
    assert shaper.observe("mkt-cold", "gmail", BLOCKED, 0.0) == []
    (action,) = shaper.observe("mkt-cold", "gmail", BLOCKED, 1.0)
    assert (action.action, action.before, action.after) == ("reroute", NORMAL, REROUTED)
    assert shaper.state("mkt-cold", "yahoo") == NORMAL
    assert shaper.tick(60.0) == []
    (back,) = shaper.tick(61.0)
    assert (back.action, back.after) == ("return", NORMAL)


def test_a_block_without_a_declared_route_suspends() -> None:
    shaper = Shaper({"tx": False}, cooldown_seconds=60)
    shaper.observe("tx", "gmail", BLOCKED, 0.0)
    (action,) = shaper.observe("tx", "gmail", BLOCKED, 0.5)
    assert (action.action, action.after) == ("suspend", SUSPENDED)


def test_a_reputation_deferral_slows_then_suspends_and_is_never_rerouted() -> None:
    """Reputation deferrals (Gmail 4.7.28) slow the pool, then suspend it if they go on: never reroute, even
    with a route declared (sending them through other addresses to the same provider is evasion)."""
    shaper = Shaper({"mkt-cold": True}, cooldown_seconds=600)
    reply = "421-4.7.28 [203.0.113.5] unusual rate of unsolicited mail originating from your IP address."
    actions: list[Action] = []
    for second in range(20):
        actions += shaper.observe("mkt-cold", "gmail", reply, float(second))
    assert [(a.action, a.after) for a in actions] == [("slow", SLOWED), ("suspend", SUSPENDED)]
    assert shaper.state("mkt-cold", "gmail") != REROUTED


def test_a_real_postfix_delivery_line_is_read() -> None:
    line = ("Dec  2 15:00:00 mta1 postfix-mkt-cold/mc1_gmail/smtp[4242]: 4Q1xYz1abc: to=<u@gmail.com>, "
            "relay=mx.gmail.com[192.0.2.10]:25, delay=0.12, delays=0.01/0/0.05/0.06, dsn=5.7.1, status=bounced "
            f"(host mx.gmail.com[192.0.2.10] said: {BLOCKED} (in reply to RCPT TO command))")
    delivery = parse_delivery(line)
    assert delivery is not None
    assert (delivery.instance, delivery.transport, delivery.status, delivery.reply) == (
        "postfix-mkt-cold", "mc1_gmail", "bounced", BLOCKED)
    assert parse_delivery("Dec  2 15:00:00 mta1 postfix-mkt-cold/qmgr[1]: 4Q1xYz1abc: removed") is None


def test_a_deferral_marked_by_the_reply_filter_is_read_as_the_receivers_4xx() -> None:
    """The pool instance's smtp_reply_filter turns a reputation 4xx into a marked 550 (mailinfra.mta.replies)
    so it never takes smtp_fallback_relay: the service reads the receiver's own 4xx, a reputation deferral,
    never a block (a block would move the mail to the route)."""
    line = ("Dec  2 15:00:00 mta1 postfix-mkt-cold/mc1_gmail/smtp[4242]: 4Q1xYz1abc: to=<u@gmail.com>, "
            "relay=mx.gmail.com[192.0.2.10]:25, delay=0.1, delays=0/0/0/0.1, dsn=4.7.1, status=deferred "
            "(host mx.gmail.com[192.0.2.10] said: 550 5.7.1 mailinfra-backoff: Service unavailable, client "
            "[203.0.113.5] listed at zen.spamhaus.org (in reply to RCPT TO command))")
    delivery = parse_delivery(line)
    assert delivery is not None and delivery.reply.startswith("450 4.7.1 Service unavailable")
    rule = classify("gmail", delivery.reply)
    assert rule is not None and rule.kind == REPUTATION


def _control(tmp_path: Path) -> tuple[InstanceControl, Path, dict[str, object]]:
    plan = build_plan(load_stack("dev"), AS_OF)
    root = write_host(tmp_path, render_host(plan, "mta1"))
    config = json.loads((root / SHAPING_CONFIG).read_text())
    assert config == plan_shaping(plan, plan.host("mta1"))  # the rendered file is the plan's
    (cold,) = [i for i in config["instances"] if i["pool"] == "mkt-cold"]
    directory = (root / cold["config_dir"].lstrip("/")).resolve()
    # No running Postfix here: reload is the only command stood in for.
    control = InstanceControl(cold["pool"], str(directory), cold["transports"], cold["route_hops"],
                              postfix="true")
    return control, directory, cold


def _postmap_q(directory: Path, domain: str) -> set[str]:
    maps = subprocess.run([require_tool("postconf"), "-c", str(directory), "-h", "transport_maps"],
                          capture_output=True, text=True, check=True).stdout.strip()
    table = next(t for t in maps.split(", pipemap:") if f"{domain}=" in t)
    table = table if table.startswith("pipemap:") else f"pipemap:{table}"
    return {subprocess.run([require_tool("postmap"), "-c", str(directory), "-q", domain, table.rstrip(", ")],
                           capture_output=True, text=True, check=True).stdout.strip() for _ in range(30)}


def _settings(directory: Path) -> str:
    """Every explicit setting as Postfix reads it (postconf -n)."""
    return subprocess.run([require_tool("postconf"), "-c", str(directory), "-n"], capture_output=True, text=True,
                          check=True).stdout


def _action(kind: str, after: str) -> Action:
    return Action("mkt-cold", "gmail", kind, NORMAL, after, "test", "")


def test_reroute_and_return_change_what_postfix_looks_up(tmp_path: Path) -> None:
    """GIVEN the rendered dev instance of mkt-cold WHEN the service reroutes gmail THEN Postfix's own lookup
    (postmap -q on the edited transport_maps) gives only the route transport for gmail.com and still the
    pool's transports for yahoo.com; WHEN it returns THEN every setting is the rendered one again."""
    control, directory, cold = _control(tmp_path)
    rendered = _settings(directory)
    control.apply(_action("reroute", REROUTED), 4)
    assert _postmap_q(directory, "gmail.com") == set(cold["route_hops"])
    assert _postmap_q(directory, "yahoo.com") <= {"mc1_yahoo", "mc2_yahoo"}
    control.apply(_action("return", NORMAL), 4)
    assert _settings(directory) == rendered


def test_slow_and_suspend_and_return(tmp_path: Path) -> None:
    control, directory, _ = _control(tmp_path)
    rendered = _settings(directory)
    postconf = require_tool("postconf")

    def value(name: str) -> str:
        return subprocess.run([postconf, "-c", str(directory), "-h", name], capture_output=True, text=True,
                              check=True).stdout.strip()

    before, before_yahoo = value("mc1_gmail_destination_rate_delay"), value("mc1_yahoo_destination_rate_delay")
    control.apply(_action("slow", SLOWED), 4)
    assert value("mc1_gmail_destination_rate_delay") == f"{max(1, int(before.rstrip('s'))) * 4}s"
    assert value("mc1_yahoo_destination_rate_delay") == before_yahoo
    control.apply(_action("suspend", SUSPENDED), 4)
    assert {"mc1_gmail", "mc2_gmail"} <= set(value("defer_transports").replace(",", " ").split())
    assert "mc1_yahoo" not in value("defer_transports")
    control.apply(_action("return", NORMAL), 4)
    assert _settings(directory) == rendered


def test_every_action_is_one_line() -> None:
    line = action_line(_action("reroute", REROUTED), 0.0)
    assert "\n" not in line and "action=reroute pool=mkt-cold provider=gmail state=normal->rerouted" in line


def test_the_long_tail_is_never_shaped_as_one_provider() -> None:
    """`default` (every domain of no listed provider) is no provider a reply can speak for: one small
    receiver's blocklist reply must not slow, suspend or reroute mail to all the others, and the only
    `=default` entry of transport_maps is the return path's DSN rotation (postfix.dsn_rotation)."""
    plan = build_plan(load_stack("prod"), AS_OF)
    for host in plan.hosts:
        if host.mta != "postfix":
            continue
        for instance in plan_shaping(plan, host)["instances"]:
            assert instance["transports"], instance["pool"]
            assert "default" not in set(instance["transports"].values()), instance["pool"]
