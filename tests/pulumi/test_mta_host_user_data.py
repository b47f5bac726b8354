"""MtaHost user data and config bundle under the mock runtime: every rendered file at its path in the
bundle, secrets only as markers."""

from __future__ import annotations

import base64
import datetime as dt
import functools
import gzip
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.dkim_keys import delivered_keys, dkim_parameter_name
from mailinfra.model.load import load_stack
from mailinfra.mta import opendkim
from mailinfra.mta.limits_calendar import limits_anchor, plan_limits_calendar, render_limits_files
from mailinfra.mta.opendkim import plan_signing
from mailinfra.mta.render import render_host
from mailinfra.plan.build import build_plan
from tests.pulumi.conftest import preview_config, resources_of, run_mock

INSTANCE = "aws:ec2/instance:Instance"
BUNDLE = "aws:s3/bucketObjectv2:BucketObjectv2"
AS_OF = dt.date(2026, 11, 29)  # within dev's warmup
RELAY_PASSWORD = "relay-Pa55/&\\|word-under-test"  # sed-hostile characters


def _user_data(instance: dict[str, Any]) -> str:
    inputs = instance["inputs"]
    if inputs.get("userDataBase64"):
        return gzip.decompress(base64.b64decode(inputs["userDataBase64"])).decode()
    return str(inputs["userData"])


def _bundle(run: dict[str, Any], host: str) -> dict[str, dict[str, str]]:
    """Path -> {path, mode, content} of the host's config bundle object."""
    content = next(o for o in resources_of(run, BUNDLE) if o["name"] == f"host-{host}-bundle")["inputs"]["content"]
    return {f["path"]: f for f in json.loads(content)}


def _unbound(content: str) -> str:
    return re.sub(r"(smtp_bind_address=|smtp-source-host )[0-9.]+", r"\1ADDRESS", content)


@pytest.fixture(scope="module")
def dev_mta1(plans, tmp_path_factory):
    plan = plans("dev")
    config, secret_keys = preview_config("dev")
    relays = [r for r in plan.routes if r.kind == "relay" and r.password_secret]
    for route in relays:
        config[f"mailinfra:{route.password_secret}"] = RELAY_PASSWORD
    run = run_mock("dev", tmp_path_factory.mktemp("user-data"), config, secret_keys)
    assert "error" not in run, run.get("error")
    instance = next(i for i in resources_of(run, INSTANCE) if i["name"] == "host-mta1-instance")
    return plan, relays, yaml.safe_load(_user_data(instance)), _user_data(instance), _bundle(run, "mta1")


def test_bundle_carries_every_rendered_file_at_its_absolute_path_and_mode(dev_mta1):
    """The files as of the host's warmup day 0, and its limits calendar with what applies it."""
    plan, _, _, _, written = dev_mta1
    plan_at = functools.cache(functools.partial(build_plan, load_stack("dev")))
    anchor = limits_anchor(plan, plan.host("mta1"))
    files = render_host(plan_at(anchor), "mta1") + render_limits_files(plan_limits_calendar(plan_at, "mta1"))
    assert f"warmup plan of {anchor}" in next(f.content for f in files if f.path == "etc/postfix-tx/main.cf")
    assert files
    for file in files:
        entry = written[f"/{file.path}"]
        # Bind addresses become the host's private ones (test_mta_host_addresses.py); the rest is as rendered.
        assert _unbound(entry["content"]) == _unbound(file.content), file.path
        assert int(entry["mode"], 8) == file.mode, file.path


@pytest.mark.parametrize("days", [(AS_OF, AS_OF + dt.timedelta(days=9))])
def test_user_data_and_bundle_do_not_change_with_the_date_of_the_run(days, tmp_path):
    """GIVEN two runs of the program on different days of dev's warmup THEN mta1's user data and config
    bundle are identical (no update every day; the host applies each day's limits itself)."""
    runs = [run_mock("dev", tmp_path, as_of=day.isoformat()) for day in days]
    assert all("error" not in run for run in runs), runs
    user_data = [_user_data(next(i for i in resources_of(run, INSTANCE) if i["name"] == "host-mta1-instance"))
                 for run in runs]
    assert user_data[0] == user_data[1]
    assert _bundle(runs[0], "mta1") == _bundle(runs[1], "mta1")
    plans = [build_plan(load_stack("dev"), day) for day in days]
    assert plans[0].warmup != plans[1].warmup, "the two days must have different limits"


def test_limits_timer_is_enabled_and_applied_after_postfix_starts(dev_mta1):
    """The calendar applies at boot (before waiting for the timer) and daily, once Postfix runs."""
    _, _, cloud_config, _, _ = dev_mta1
    commands = [str(c) for c in cloud_config["runcmd"]]
    started = commands.index("systemctl enable --now postfix")
    assert commands.index("systemctl enable --now mailinfra-limits.timer") > started
    assert commands.index("systemctl start mailinfra-limits.service") > started


def test_user_data_holds_no_secret_and_the_boot_script_fills_every_marker(dev_mta1):
    plan, relays, cloud_config, text, bundle = dev_mta1
    assert relays, "dev has a relay route with a password"
    decoded = text + "".join(f["content"] for f in bundle.values())
    assert RELAY_PASSWORD not in decoded and "PRIVATE KEY" not in decoded
    script = next(f["content"] for f in cloud_config["write_files"]
                  if f["path"] == "/usr/local/sbin/mailinfra-fetch-secrets")
    filled = 0
    for file in render_host(plan, "mta1"):
        for name in file.secret_placeholders:
            # GIVEN a marker in a file WHEN the host boots THEN a fetch of one of its own parameters fills it.
            marker = re.escape(f"@@SECRET:{name}@@")
            fill = re.search(rf"fetch (\S+) \"\$value\"\n\s*/usr/local/sbin/mailinfra-fill-secret "
                             rf"/{re.escape(file.path)} {marker} ", script)
            assert fill, (file.path, name)
            assert fill[1].startswith("/mailinfra/dev/mta1/route/"), fill[1]
            filled += 1
    assert filled >= len(relays)


def test_fill_script_replaces_markers_literally(dev_mta1, tmp_path):
    """The boot helper replaces the marker by the value byte for byte and keeps the file's mode."""
    import subprocess
    import sys

    _, _, cloud_config, _, _ = dev_mta1
    helper = next(f["content"] for f in cloud_config["write_files"]
                  if f["path"] == "/usr/local/sbin/mailinfra-fill-secret")
    script = tmp_path / "fill"
    script.write_text(helper)
    target, value = tmp_path / "sasl_passwd", tmp_path / "value"
    target.write_text("[relay.example]:587 user:@@SECRET:mailinfra:relay_password@@\n")
    target.chmod(0o600)
    value.write_text(RELAY_PASSWORD + "\n")  # as `aws ssm get-parameter --output text` writes it
    subprocess.run([sys.executable, str(script), str(target), "@@SECRET:mailinfra:relay_password@@", str(value)],
                   check=True)
    assert target.read_text() == f"[relay.example]:587 user:{RELAY_PASSWORD}\n"
    assert target.stat().st_mode & 0o777 == 0o600


def test_dkim_key_the_host_fetches_is_the_file_opendkim_reads(dev_mta1):
    plan, _, cloud_config, _, _ = dev_mta1
    script = next(f["content"] for f in cloud_config["write_files"]
                  if f["path"] == "/usr/local/sbin/mailinfra-fetch-secrets")
    fetched = dict(re.findall(r"fetch (\S+) (\S+)\.new\n", script))
    host = plan.host("mta1")
    keytable = next(f.content for f in render_host(plan, "mta1") if f.path == "etc/opendkim/KeyTable")
    read = {line.split(":")[-1] for line in keytable.splitlines() if line and not line.startswith("#")}
    assert read == {e.key_file for e in plan_signing(plan, host)}
    paths = {fetched[dkim_parameter_name("dev", "mta1", k)] for k in delivered_keys(plan, host) if k.signing}
    assert read and read <= paths


def test_postfix_joins_the_opendkim_socket_group_before_the_services_start(dev_mta1):
    """A Postfix host adds postfix to the group of the OpenDKIM Unix sockets (0770) before starting
    opendkim and postfix, so smtpd/cleanup can reach the milters."""
    _, _, cloud_config, _, _ = dev_mta1
    commands = [str(c) for c in cloud_config["runcmd"]]
    joined = commands.index(f"usermod -aG {opendkim.SOCKET_GROUP} postfix")
    started = [i for i, c in enumerate(commands) if c.startswith("systemctl enable --now")]
    assert started and joined < min(started)


def test_fetch_config_writes_each_bundle_file_with_its_mode(dev_mta1, tmp_path):
    """GIVEN the S3 object (served by a stand-in `aws` on PATH) WHEN the boot script runs THEN each file is
    at its path with its content and mode, a previous file replaced, and no temporary file is left."""
    import os
    import stat
    import subprocess

    _, _, cloud_config, _, bundle = dev_mta1
    script = next(f["content"] for f in cloud_config["write_files"]
                  if f["path"] == "/usr/local/sbin/mailinfra-fetch-config")
    assert re.search(r"aws s3 cp .* s3://\S+/hosts/mta1/bundle\.json - ", script)
    root = tmp_path / "root"
    files = [{**f, "path": f"{root}{f['path']}"} for f in bundle.values()]
    served = tmp_path / "bundle.json"
    served.write_text(json.dumps(files))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "aws").write_text(f"#!/bin/sh\ncat {served}\n")
    (bin_dir / "aws").chmod(0o755)
    stale = root / "etc/postfix/main.cf"
    stale.parent.mkdir(parents=True)
    stale.write_text("stale\n")
    subprocess.run(["sh", "-c", script], check=True, env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"})
    for file in files:
        written = Path(file["path"])
        assert written.read_text() == file["content"], file["path"]
        assert stat.S_IMODE(written.stat().st_mode) == int(file["mode"], 8), file["path"]
    assert not list(root.rglob("*.new"))
