"""The lab providers' placement model (mailinfra.lab.placement): each documented rule sends mail to Junk on its
own, and nothing else does."""

from __future__ import annotations

import pytest

from mailinfra.lab.placement import INBOX, JUNK, PlacementModel

IP = "203.0.113.10"
ONE_CLICK = "List-Unsubscribe=One-Click"


def fresh(**kwargs: object) -> PlacementModel:
    return PlacementModel(bulk_streams=frozenset({"bulk", "marketing"}), **kwargs)  # type: ignore[arg-type]


def test_authenticated_transactional_mail_from_a_clean_ip_is_inboxed() -> None:
    assert fresh().decide(IP, dmarc="pass", stream="transactional", one_click="") == (INBOX, [])


@pytest.mark.parametrize(("dmarc", "stream", "one_click", "reason"), [
    ("fail", "transactional", "", "dmarc fail"),
    ("none", "bulk", ONE_CLICK, "dmarc none"),
    ("pass", "bulk", "", "bulk without one-click unsubscribe"),
    ("pass", "marketing", "List-Unsubscribe=Maybe", "bulk without one-click unsubscribe"),
])
def test_each_message_rule_junks(dmarc: str, stream: str, one_click: str, reason: str) -> None:
    assert fresh().decide(IP, dmarc=dmarc, stream=stream, one_click=one_click) == (JUNK, [reason])


def test_complaints_at_googles_line_junk_the_ip_not_its_neighbours() -> None:
    """0.3 % of accepted: 1 complaint in 334 messages is below, 1 in 300 is above the line."""
    model = fresh()
    for _ in range(334):
        model.decide(IP, dmarc="pass", stream="transactional", one_click="")
    model.note_complaint(IP)
    assert model.decide(IP, dmarc="pass", stream="transactional", one_click="")[0] == INBOX
    model = fresh()
    for _ in range(300):
        model.decide(IP, dmarc="pass", stream="transactional", one_click="")
    model.note_complaint(IP)
    assert model.decide(IP, dmarc="pass", stream="transactional", one_click="") == (JUNK, ["complaints 1/300"])
    assert model.decide("203.0.113.11", dmarc="pass", stream="transactional", one_click="")[0] == INBOX


def test_unknown_recipients_count_once_the_sample_is_large_enough() -> None:
    model = fresh()
    for i in range(19):
        model.note_rcpt(IP, unknown=i < 5)
    assert model.decide(IP, dmarc="pass", stream="transactional", one_click="")[0] == INBOX  # 19 RCPTs: no verdict
    model.note_rcpt(IP, unknown=False)
    assert model.decide(IP, dmarc="pass", stream="transactional", one_click="") == (
        JUNK, ["unknown recipients 5/20"])


def test_volume_over_the_daily_cap_is_junked() -> None:
    model = fresh(daily_caps={IP: 2})
    folders = [model.decide(IP, dmarc="pass", stream="transactional", one_click="")[0] for _ in range(3)]
    assert folders == [INBOX, INBOX, JUNK]


def test_a_routes_shared_fleet_is_judged_on_authentication_only() -> None:
    model = fresh(daily_caps={IP: 0})
    model.note_complaint(IP)
    assert model.decide(IP, dmarc="pass", stream="transactional", one_click="", own_ip=False) == (INBOX, [])
