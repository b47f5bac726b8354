"""Incident isolation end to end, with real Postfix (issue 14): the dev stack with `pool:mkt-cold@gmail`
isolated, built as `pulumi up` would deploy it; the cold tier's Gmail mail reaches Gmail through the
marketing stream's route relay, never from the pool's own IPs, and lifting the isolation restores it."""

from __future__ import annotations

import datetime as dt
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.lab.conftest import require_lab

pytestmark = [pytest.mark.lab, pytest.mark.slow]

TARGET = "pool:mkt-cold@gmail"
# The route transport delivers in the same second on loopback; 20 s also covers the relay's onward hop.
ARRIVAL_SECONDS = 20


ISOLATION_LINE = (f"  mailinfra:isolations:\n    {TARGET}: "
                  '{reason: "Gmail 550 5.7.1 on the cold pool (lab)", since: 2026-11-29}\n')


@pytest.fixture(scope="module")
def isolated_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """GIVEN the dev stack file with the one line `mailinfra isolate dev mkt-cold --provider gmail` writes,
    deployed as `pulumi up` would (the program renders the hosts' files from that stack file), on the first
    day all its IPs are warmed, in a namespace of its own (the lab lock is held by whoever runs the lab tests)."""
    require_lab()
    from mailinfra.lab import lab as lab_module
    from mailinfra.lab.layout import plan_layout
    from mailinfra.model.load import STACKS_DIR, load_stack
    from mailinfra.plan.build import build_plan

    stacks = tmp_path_factory.mktemp("stacks")
    (stacks / "Pulumi.dev.yaml").write_text((STACKS_DIR / "Pulumi.dev.yaml").read_text() + ISOLATION_LINE)
    as_of = lab_module.first_day("dev", "warmed", start=dt.date(2026, 11, 29))
    plan = build_plan(load_stack("dev", stacks), as_of)
    assert [i.target for i in plan.isolations] == [TARGET]
    layout = plan_layout(plan, tmp_path_factory.mktemp("lab-iso"), Path("/run/mailinfra-lab-iso"),
                         namespace="mi-test-iso")
    running = lab_module.Lab(plan, layout)
    lab_module.up(running, stacks_dir=stacks)
    try:
        yield running
    finally:
        lab_module.down(running)


def _send_and_wait(lab: Any, provider: str) -> list[dict[str, Any]]:
    from mailinfra.lab import lab as lab_module
    from mailinfra.lab.report import read_arrivals

    sent = lab_module.send(lab, pool="mkt-cold", provider=provider, count=3)
    ids = {e["lab_id"] for e in sent}
    assert sent and all(e["accepted"] for e in sent)
    lab_module.wait_for_arrivals(lab, sorted(ids), timeout=ARRIVAL_SECONDS)
    return [a for a in read_arrivals(lab.layout.mail_dir) if a.get("lab_id") in ids]


def _apply(lab: Any, plan: Any) -> None:
    """What the host does when the stack changes: the pool instance's main.cf parameters of `plan` (the ones
    rendered and applied by the limits calendar, mailinfra.mta.postfix.plan_limit_parameters), then reload."""
    from mailinfra.lab import lab as lab_module
    from mailinfra.lab import mta
    from mailinfra.lab.namespace import in_namespace
    from mailinfra.mta.postfix import plan_instances, plan_limit_parameters

    (instance,) = [i for i in plan_instances(plan, plan.host("mta1")) if i.pool == "mkt-cold"]
    (staged,) = [s for _, s in lab_module.staged_instances(lab) if s.pool == "mkt-cold"]
    mta.postconf_set(staged.config_dir, plan_limit_parameters(instance))
    subprocess.run(in_namespace(lab.layout.namespace, ["postfix", "-c", str(staged.config_dir), "reload"]),
                   capture_output=True, check=True)


def test_isolated_pool_reaches_gmail_through_the_route_and_lifting_restores(isolated_lab: Any) -> None:
    """GIVEN `pool:mkt-cold@gmail` isolated WHEN the cold tier sends to Gmail and to Yahoo THEN Gmail receives
    every message from the route relay (`via` is decided by the connecting address: the pool's IPs never
    connect to Gmail), Yahoo from the pool itself; WHEN the line is deleted (lifted) THEN Gmail receives
    the cold tier's mail from the pool again."""
    from mailinfra.model.load import load_stack
    from mailinfra.plan.build import build_plan

    lab = isolated_lab
    route = lab.plan.stream("marketing").route
    gmail = _send_and_wait(lab, "gmail")
    assert {a["via"] for a in gmail} == {f"secondary:{route}"}, gmail
    yahoo = _send_and_wait(lab, "yahoo")
    assert {a["via"] for a in yahoo} == {"primary"}

    _apply(lab, build_plan(load_stack("dev"), lab.plan.as_of))
    lifted = _send_and_wait(lab, "gmail")
    assert {a["via"] for a in lifted} == {"primary"}
