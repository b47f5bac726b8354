"""PowerMTA hosts under the mock runtime: the config bundle is rendered as of warmup day 0 with the warmup
limits calendar, so it does not change with the date of the run; cloud-init enables the calendar's timer."""

from __future__ import annotations

import datetime as dt

import pytest
import yaml

from mailinfra.model.load import load_stack
from mailinfra.mta.powermta import LIMITS_FILE
from mailinfra.mta.powermta_calendar import APPLY_SCRIPT, UNIT
from mailinfra.mta.render import render_host
from mailinfra.plan.build import build_plan
from tests.pulumi.conftest import STACKS, manifest_files, run_mock, user_data_of

AS_OF = dt.date(2026, 11, 29)  # within staging's and prod's warmups
PMTA_STACKS = [s for s in STACKS if s in ("staging", "prod")]


def _pmta_hosts(stack: str) -> list[str]:
    return [h.name for h in build_plan(load_stack(stack), AS_OF).hosts if h.mta == "powermta"]


@pytest.mark.parametrize("stack", PMTA_STACKS)
def test_powermta_bundle_and_user_data_do_not_change_with_the_date_of_the_run(stack, tmp_path):
    """GIVEN two runs on different days of the stack's warmup THEN every PowerMTA host's bundle and user data
    are identical, and the bundle carries the calendar and what applies it."""
    days = (AS_OF, AS_OF + dt.timedelta(days=9))
    hosts = _pmta_hosts(stack)
    assert hosts
    changed = [h for h in hosts if _render_of(stack, h, days[0]) != _render_of(stack, h, days[1])]
    assert changed, "the two days must render different PowerMTA configs"
    runs = [run_mock(stack, tmp_path, as_of=day.isoformat()) for day in days]
    assert all("error" not in run for run in runs), [run.get("error") for run in runs]
    for host in hosts:
        bundles = [manifest_files(run, host) for run in runs]
        assert bundles[0] == bundles[1], host
        assert {f"/{LIMITS_FILE}", f"/{APPLY_SCRIPT}", f"/etc/systemd/system/{UNIT}.timer"} <= set(bundles[0]), host
        user_data = [user_data_of(run, host) for run in runs]
        assert user_data[0] == user_data[1], host
        commands = [str(c) for c in yaml.safe_load(user_data[0])["runcmd"]]
        started = next(i for i, c in enumerate(commands)
                       if c.startswith("/usr/local/sbin/mailinfra-apply-config") and c.endswith("--services start"))
        assert commands.index(f"systemctl enable --now {UNIT}.timer") > started
        assert commands.index(f"systemctl start {UNIT}.service") > started


def _render_of(stack: str, host: str, day: dt.date) -> list[str]:
    """The host's files as of `day` (what its bundle held before the calendar)."""
    return [f.content for f in render_host(build_plan(load_stack(stack), day), host)]
