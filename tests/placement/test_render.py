"""The placement files a host gets from the plan: the probe timer where pools are, the reader on one host."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from mailinfra.mta.render import render_host
from mailinfra.placement.render import (
    PROBE_CONFIG,
    PROBE_UNIT,
    READER_CONFIG,
    READER_UNIT,
    placement_units,
    reader_host,
)
from mailinfra.placement.sender import read_sender_config
from mailinfra.plan.model import Plan


def test_probe_sender_and_reader_files(seeded_plan: Plan, tmp_path: Path) -> None:
    """Every Postfix host with pools gets the sender's config, service and timer; only the reader host gets the
    reader (seed passwords as systemd credentials, never in the config)."""
    reader = reader_host(seeded_plan)
    assert reader is not None and seeded_plan.host(reader).accepts_bounces
    for host in seeded_plan.hosts:
        files = {f.path: f for f in render_host(seeded_plan, host.name)}
        if any(host.name in p.hosts for p in seeded_plan.pools) and host.mta == "postfix":
            (tmp_path / "probes.json").write_text(files[PROBE_CONFIG].content)
            config = read_sender_config(tmp_path / "probes.json")
            assert {p.pool for p in config.probes} == {p.name for p in seeded_plan.pools if host.name in p.hosts[:1]}
            assert f"etc/systemd/system/{PROBE_UNIT}.timer" in files
        reader_files = {READER_CONFIG, f"etc/systemd/system/{READER_UNIT}.service"}
        assert (reader_files <= files.keys()) == (host.name == reader)
        if host.name == reader:
            body = json.loads(files[READER_CONFIG].content)
            assert [s["name"] for s in body["seeds"]] == [s.name for s in seeded_plan.seeds]
            assert all(s["tls"] == "implicit" and s["password_file"].startswith("${CREDENTIALS_DIRECTORY}/")
                       for s in body["seeds"])
            unit = files[f"etc/systemd/system/{READER_UNIT}.service"].content
            assert all(f"LoadCredential=seed-{s.name}:/etc/mailinfra/seeds/{s.name}" in unit
                       for s in seeded_plan.seeds)
            assert "password" not in files[READER_CONFIG].content.replace("password_file", "")
        assert placement_units(files) == [u for u in (f"{PROBE_UNIT}.timer", f"{READER_UNIT}.service")
                                          if f"etc/systemd/system/{u}" in files]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_timer_calendar_is_valid_for_systemd(seeded_plan: Plan) -> None:
    """systemd-analyze calendar parses the OnCalendar line and fires on the hour (UTC)."""
    host = next(h for h in seeded_plan.hosts if h.mta == "postfix")
    timer = next(f for f in render_host(seeded_plan, host.name) if f.path.endswith(".timer")).content
    spec = next(line.split("=", 1)[1] for line in timer.splitlines() if line.startswith("OnCalendar="))
    out = subprocess.run(["systemd-analyze", "calendar", spec], capture_output=True, text=True, check=True).stdout
    assert "Normalized form: *-*-* 00/1:00:00 UTC" in out


def test_stacks_without_seeds_render_no_placement_files() -> None:
    from mailinfra.plan.build import build_plan
    from tests.placement.conftest import stack_with_seeds

    plan = build_plan(stack_with_seeds({}))
    for host in plan.hosts:
        assert not any("placement" in f.path for f in render_host(plan, host.name))
