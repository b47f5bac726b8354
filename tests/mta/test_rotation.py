"""Postfix rotation and pacing follow each IP's warmup cap: weighted randmap, zero shares deferred."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from mailinfra.model.load import load_stack
from mailinfra.mta.postfix import ROTATION_SLOTS, Instance, plan_instances, plan_limit_parameters
from mailinfra.plan.build import build_plan
from mailinfra.plan.model import Plan
from tests.tooling import require_tool

# prod on 2026-10-25: com-tx on tx-a has the warmed com-tx1 and com-tx3/com-tx5 in their third week.
MIXED_DAY = dt.date(2026, 10, 25)
# prod on 2026-12-07: day 1 of com-bulk (bulk-gentle, 50/day), whose Yahoo/Apple/default shares round to 0.
ZERO_SHARE_DAY = dt.date(2026, 12, 7)


def _instance(plan: Plan, host: str, pool: str) -> Instance:
    (instance,) = [i for i in plan_instances(plan, plan.host(host)) if i.pool == pool]
    return instance


@pytest.fixture(scope="module")
def prod() -> object:
    return load_stack("prod")


def _gmail_randmap(instance: Instance) -> str:
    """The randmap table Postfix reads for gmail.com in the rendered transport_maps."""
    maps = plan_limit_parameters(instance)["transport_maps"]
    match = re.search(r"inline:\{ gmail\.com=gmail[^}]*\}, (randmap:\{[^}]*\})", maps)
    assert match, maps
    return match.group(1)


def test_rotation_entries_follow_the_caps(prod: object) -> None:
    """Each transport's share of the gmail randmap is its share of the pool's gmail rate (to 1/ROTATION_SLOTS):
    randmap picks each entry with equal probability (postconf(5)), so equal entries gave a day-N IP as much
    mail as a warmed one and its rate-delayed backlog stalled the instance."""
    plan = build_plan(prod, MIXED_DAY)  # type: ignore[arg-type]
    instance = _instance(plan, "tx-a", "com-tx")
    rates = {t.name: t.limit.msgs_per_hour for t in instance.transports if t.limit.provider == "gmail"}
    assert len(set(rates.values())) > 1, "the chosen day must mix caps"
    counts = Counter(instance.rotation["gmail"])
    total_rate = sum(rates[name] for name in counts)
    for name, count in counts.items():
        assert abs(count / sum(counts.values()) - rates[name] / total_rate) <= 1 / ROTATION_SLOTS


def test_real_postfix_randmap_splits_by_cap(prod: object, tmp_path: Path) -> None:
    """GIVEN the rendered gmail randmap of a pool mixing a warmed IP and warming IPs WHEN Postfix's own
    randmap (postmap -q) picks a transport 300 times THEN the warmed IP gets its cap's share of them."""
    postmap = require_tool("postmap")
    plan = build_plan(prod, MIXED_DAY)  # type: ignore[arg-type]
    instance = _instance(plan, "tx-a", "com-tx")
    table = _gmail_randmap(instance)
    (tmp_path / "main.cf").write_text("")
    picks = Counter(
        subprocess.run([postmap, "-c", str(tmp_path), "-q", "gmail.com", table],
                       capture_output=True, text=True, check=True).stdout.strip()
        for _ in range(300))
    rates = {t.name: t.limit.msgs_per_hour for t in instance.transports if t.limit.provider == "gmail"}
    warmed = max(rates, key=lambda name: rates[name])
    expected = rates[warmed] / sum(rates.values())
    assert expected > 0.6
    # 300 draws: the standard deviation of the observed share is below 0.03; 0.12 is 4 sigma.
    assert abs(picks[warmed] / 300 - expected) < 0.12, (picks, rates)


def test_zero_share_is_deferred_never_unpaced(prod: object) -> None:
    """A provider share that rounds to 0 msgs/h is in defer_transports and out of the rotation, and its
    rate delay is never 0 s (postconf(5): 0 disables pacing — unlimited)."""
    plan = build_plan(prod, ZERO_SHARE_DAY)  # type: ignore[arg-type]
    instance = _instance(plan, "bulk1", "com-bulk")
    parameters = plan_limit_parameters(instance)
    deferred = set(filter(None, (name.strip() for name in parameters["defer_transports"].split(","))))
    zero = [t for t in instance.transports if t.limit.msgs_per_hour == 0]
    paced = [t for t in instance.transports if t.limit.msgs_per_hour > 0]
    assert zero and paced, "the chosen day must mix zero and non-zero shares"
    for transport in zero:
        assert transport.name in deferred
        assert parameters[f"{transport.name}_destination_rate_delay"] != "0s"
    for transport in paced:
        assert transport.name not in deferred
    rotated = {name for names in instance.rotation.values() for name in names}
    # A provider with at least one paced transport never rotates onto a zero one.
    for provider, names in instance.rotation.items():
        if any(t.limit.provider == provider for t in paced):
            assert not {n for n in names if n in {t.name for t in zero}}, provider
    assert rotated
