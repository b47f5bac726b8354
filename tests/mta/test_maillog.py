"""The Postfix log parser: delivery lines as smtp(8) writes them (src/global/log_adhoc.c field order:
to, orig_to, relay, conn_use, delay, delays, dsn, status (text)), and the follower across rotation."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailinfra.mta.maillog import LogFollower, parse_delivery

# postlogd (maillog_file) writes "Mon DD HH:MM:SS.uuuuuu host program[pid]: text"; syslog has no microseconds.
SENT = ("Dec  2 15:00:01.123456 mta1 postfix-tx/tx_ip10_gmail/smtp[4242]: 4Q2x0V1Hz3z9sC: "
        "to=<alice@gmail.com>, relay=gmail-smtp-in.l.google.com[192.0.2.25]:25, delay=1.5, "
        "delays=0.02/0.01/0.6/0.87, dsn=2.0.0, status=sent (250 2.0.0 OK  1701529201 x12si)")
DEFERRED = ("Dec  2 15:00:02 mta1 postfix-bulk/bk_ip11_microsoft/smtp[77]: 3A1B2C3D4E: to=<bob@outlook.com>, "
            "orig_to=<Bob@Outlook.com>, relay=outlook-com.olc.protection.outlook.com[198.51.100.7]:25, "
            "conn_use=2, delay=302, delays=0.1/300/1.2/0.7, dsn=4.7.650, status=deferred (host "
            "outlook-com.olc.protection.outlook.com[198.51.100.7] said: 451 4.7.650 The mail server "
            "[203.0.113.10] has been temporarily rate limited due to IP reputation. (in reply to MAIL FROM command))")
BOUNCED = ("Dec  2 15:00:03 mta1 postfix-tx/tx_ip10_yahoo/smtp[9]: 5F00AA: to=<nobody@yahoo.com>, "
           "relay=mta5.am0.yahoodns.net[192.0.2.9]:25, delay=0.9, delays=0/0/0.4/0.5, dsn=5.1.1, "
           "status=bounced (host mta5.am0.yahoodns.net[192.0.2.9] said: 554 5.1.1 <nobody@yahoo.com>: "
           "Recipient address rejected: User unknown (in reply to RCPT TO command))")


@pytest.mark.parametrize(("line", "expected"), [
    (SENT, ("postfix-tx", "tx_ip10_gmail", "smtp", "4Q2x0V1Hz3z9sC", "alice@gmail.com", 1.5, "2.0.0", "sent")),
    (DEFERRED, ("postfix-bulk", "bk_ip11_microsoft", "smtp", "3A1B2C3D4E", "bob@outlook.com", 302.0, "4.7.650",
                "deferred")),
    (BOUNCED, ("postfix-tx", "tx_ip10_yahoo", "smtp", "5F00AA", "nobody@yahoo.com", 0.9, "5.1.1", "bounced")),
])
def test_a_delivery_line_names_its_instance_transport_and_outcome(line: str, expected: tuple[object, ...]) -> None:
    """The pool instance and the transport come from the syslog name; delay=, dsn= and status= as logged."""
    record = parse_delivery(line)
    assert record is not None
    assert (record.instance, record.transport, record.agent, record.queue_id, record.recipient,
            record.delay_seconds, record.dsn, record.status) == expected


def test_the_reply_text_is_kept_for_the_classifier() -> None:
    record = parse_delivery(BOUNCED)
    assert record is not None
    assert record.reply.startswith("host mta5.am0.yahoodns.net[192.0.2.9] said: 554 5.1.1")
    assert record.relay == "mta5.am0.yahoodns.net[192.0.2.9]:25"
    assert record.recipient_domain == "yahoo.com"


@pytest.mark.parametrize("line", [
    # qmgr's queue entry, cleanup's message-id, smtpd's connect: not delivery attempts.
    "Dec  2 15:00:00 mta1 postfix-tx/qmgr[12]: 4Q2x0V1Hz3z9sC: from=<b-x@rp.example.com>, size=1234, "
    "nrcpt=1 (queue active)",
    "Dec  2 15:00:00 mta1 postfix-tx/cleanup[13]: 4Q2x0V1Hz3z9sC: message-id=<1@tx.example.com>",
    "Dec  2 15:00:00 mta1 postfix-tx/smtpd[14]: connect from unknown[10.0.0.5]",
    # A bounce notice (postfix/bounce) names the DSN's queue id, not a delivery.
    "Dec  2 15:00:03 mta1 postfix-tx/bounce[15]: 5F00AA: sender non-delivery notification: 6A00BB",
])
def test_other_lines_are_not_deliveries(line: str) -> None:
    assert parse_delivery(line) is None


def test_a_line_without_transport_syslog_name_has_none() -> None:
    """The primary instance's smtp (syslog_name postfix) names no transport."""
    record = parse_delivery(SENT.replace("postfix-tx/tx_ip10_gmail/smtp", "postfix/smtp"))
    assert record is not None
    assert (record.instance, record.transport) == ("postfix", None)


def test_the_follower_reads_only_new_complete_lines(tmp_path: Path) -> None:
    log = tmp_path / "postfix-tx.log"
    log.write_text("old line\n")
    follower = LogFollower(log)  # starts at the end: what was logged before is not counted again
    assert follower.read_lines() == []
    with log.open("a") as out:
        out.write("one\ntw")
    assert follower.read_lines() == ["one"]
    with log.open("a") as out:
        out.write("o\n")
    assert follower.read_lines() == ["two"]


def test_the_follower_survives_rename_rotation(tmp_path: Path) -> None:
    """GIVEN lines written after the last read WHEN the file is renamed and a new one opened THEN both the
    old file's tail and the new file's lines are read, in order."""
    log = tmp_path / "postfix-tx.log"
    log.write_text("")
    follower = LogFollower(log)
    with log.open("a") as out:
        out.write("before\n")
    log.rename(tmp_path / "postfix-tx.log.1")
    with (tmp_path / "postfix-tx.log.1").open("a") as out:
        out.write("late\n")  # a process still holding the old file
    log.write_text("after\n")
    assert follower.read_lines() == ["before", "late", "after"]
    with log.open("a") as out:
        out.write("next\n")
    assert follower.read_lines() == ["next"]


def test_the_follower_survives_copytruncate(tmp_path: Path) -> None:
    log = tmp_path / "postfix-tx.log"
    log.write_text("a long first line that is long\n")
    follower = LogFollower(log, from_start=True)
    assert follower.read_lines() == ["a long first line that is long"]
    log.write_text("new\n")  # truncated and rewritten, shorter than the offset
    assert follower.read_lines() == ["new"]


def test_a_missing_file_is_read_once_it_appears(tmp_path: Path) -> None:
    log = tmp_path / "later.log"
    follower = LogFollower(log)
    assert follower.read_lines() == []
    log.write_text("first\n")
    assert follower.read_lines() == ["first"]
