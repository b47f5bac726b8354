"""The probe plan: one probe per pool x seed, a message like the stream's own mail, its id read back."""

from __future__ import annotations

import datetime as dt
import email
import email.policy

import pytest

from mailinfra.placement.probes import (
    PROBE_HEADER,
    ProbeId,
    ProbeIdError,
    build_probe,
    parse_probe_id,
    plan_probes,
    slot_of,
)
from mailinfra.plan.model import Plan
from tests.placement.conftest import stack_with_seeds


def test_every_pool_probes_every_seed(seeded_plan: Plan) -> None:
    """pools x seeds, each from its stream's sending domain with its stream's return path, sent on the
    pool's own injection port (the pool's Postfix instance signs it and sends it from the pool's IPs)."""
    probes = plan_probes(seeded_plan)
    pools = [p for p in seeded_plan.pools if p.hosts]
    assert {(p.pool, p.seed) for p in probes} == {(p.name, s.name) for p in pools for s in seeded_plan.seeds}
    for probe in probes:
        pool, stream = seeded_plan.pool(probe.pool), seeded_plan.stream(probe.stream)
        assert pool.stream == stream.name
        assert probe.injection_port == pool.injection_port and probe.host in pool.hosts
        assert (probe.sending_domain, probe.return_path_domain) == (stream.sending_domain, stream.return_path)
        assert probe.provider == next(s.provider for s in seeded_plan.seeds if s.name == probe.seed)


def test_no_seeds_no_probes() -> None:
    from mailinfra.plan.build import build_plan

    assert plan_probes(build_plan(stack_with_seeds({}))) == ()


def test_a_bulk_probe_carries_one_click_unsubscribe_like_its_stream(seeded_plan: Plan) -> None:
    """RFC 8058 headers exactly when the stream's mail has them: a probe must be judged as its pool's mail is."""
    sent = dt.datetime(2026, 12, 20, 10, 0, 3, tzinfo=dt.UTC)
    for probe in plan_probes(seeded_plan):
        pid = ProbeId(probe.pool, probe.seed, slot_of(sent.timestamp(), 3600))
        raw = build_probe(probe, pid, sent_at=sent).as_bytes()
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert parsed[PROBE_HEADER] == f"{probe.pool}.{probe.seed}.{int(sent.timestamp()) // 3600 * 3600}"
        assert str(parsed["From"]).endswith(f"@{probe.sending_domain}>")
        assert parsed["To"] == probe.recipient
        assert (parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click") == probe.one_click_unsubscribe
        assert email.utils.parsedate_to_datetime(parsed["Date"]) == sent


def test_probe_id_round_trips_and_refuses_foreign_values() -> None:
    pid = ProbeId("mkt-active", "gmail-1", 1_797_760_800)
    assert parse_probe_id(str(pid)) == pid
    for bad in ("", "mkt.gmail", "mkt.gmail.x", "Mkt.gmail.1", "a.b.1.2", "a;b.c.1"):
        with pytest.raises(ProbeIdError):
            parse_probe_id(bad)


@pytest.mark.parametrize(("now", "interval", "slot"), [
    (7200.0, 3600, 7200), (7199.9, 3600, 3600), (86399, 86400, 0), (10 * 3600 + 5, 4 * 3600, 8 * 3600)])
def test_slot_is_the_start_of_the_interval(now: float, interval: int, slot: int) -> None:
    assert slot_of(now, interval) == slot


def test_interval_must_divide_the_day() -> None:
    """The timer fires at 00/N:00 UTC; an N not dividing 24 would drift from the reader's slots at midnight."""
    from mailinfra.errors import ConfigErrors

    with pytest.raises(ConfigErrors) as caught:
        stack_with_seeds(probe_interval_hours=5)
    assert "monitoring.probe_interval_hours" in str(caught.value)
