"""MtaHost user data and config manifest under the mock runtime: every rendered file at its path in the
manifest, secrets only as markers and parameter names, the user data a static bootstrap."""

from __future__ import annotations

import datetime as dt
import functools
import re
from typing import Any

import pytest
import yaml

from components.dkim_keys import delivered_keys, dkim_parameter_name
from mailinfra.model.load import load_stack
from mailinfra.mta import opendkim
from mailinfra.mta.host_code import render_host_code_object
from mailinfra.mta.limits_calendar import limits_anchor, plan_limits_calendar, render_limits_files
from mailinfra.mta.opendkim import plan_signing
from mailinfra.mta.render import render_host
from mailinfra.plan.build import build_plan
from tests.pulumi.conftest import manifest_of, preview_config, run_mock, user_data_of

INSTANCE = "aws:ec2/instance:Instance"
BUNDLE = "aws:s3/bucketObjectv2:BucketObjectv2"
AS_OF = dt.date(2026, 11, 29)  # within dev's warmup
RELAY_PASSWORD = "relay-Pa55/&\\|word-under-test"  # sed-hostile characters
APPLY = "/usr/local/sbin/mailinfra-apply-config"


def _user_data(instance: dict[str, Any]) -> str:
    """The user data of an Instance resource of a mock run (gzip-decoded when compressed)."""
    import base64
    import gzip

    inputs = instance["inputs"]
    if inputs.get("userDataBase64"):
        return gzip.decompress(base64.b64decode(inputs["userDataBase64"])).decode()
    return str(inputs["userData"])


def _unbound(content: str) -> str:
    return re.sub(r"(smtp_bind_address=|smtp-source-host |\"listen_private\": \")[0-9.]+", r"\1ADDRESS", content)


@pytest.fixture(scope="module")
def dev_mta1(plans, tmp_path_factory):
    plan = plans("dev")
    config, secret_keys = preview_config("dev")
    relays = [r for r in plan.routes if r.kind == "relay" and r.password_secret]
    for route in relays:
        config[f"mailinfra:{route.password_secret}"] = RELAY_PASSWORD
    run = run_mock("dev", tmp_path_factory.mktemp("user-data"), config, secret_keys)
    assert "error" not in run, run.get("error")
    text = user_data_of(run, "mta1")
    return plan, relays, yaml.safe_load(text), text, manifest_of(run, "mta1")


def test_manifest_carries_every_rendered_file_at_its_absolute_path_and_mode(dev_mta1):
    """The files as of the host's warmup day 0, and its limits calendar with what applies it."""
    plan, _, _, _, manifest = dev_mta1
    written = {f["path"]: f for f in manifest["files"]}
    plan_at = functools.cache(functools.partial(build_plan, load_stack("dev")))
    anchor = limits_anchor(plan, plan.host("mta1"))
    files = render_host(plan_at(anchor), "mta1") + render_limits_files(plan_limits_calendar(plan_at, "mta1"))
    assert f"warmup plan of {anchor}" in next(f.content for f in files if f.path == "etc/postfix-tx/main.cf")
    assert files
    assert set(written) == {f"/{f.path}" for f in files}
    for file in files:
        entry = written[f"/{file.path}"]
        # Bind addresses become the host's private ones (test_mta_host_addresses.py); the rest is as rendered.
        assert _unbound(entry["content"]) == _unbound(file.content), file.path
        assert int(entry["mode"], 8) == file.mode, file.path
    # The suppression services start before the MTA that asks them (mailinfra.mta.enforcement.host_services);
    # the metrics exporter after it (it reads the MTA's logs and queues); the automatic response last: it edits
    # and reloads the running instances (mailinfra.shaping). The placement probe timer and the seed reader
    # between them (mailinfra.placement.render.placement_units).
    # The timers are listed so that a refresh enables a new one on a running host (cloud-init ran once).
    assert manifest["services"] == ["mailinfra-suppression-lookup", "mailinfra-bounceproc", "opendkim", "postfix",
                                    "mailinfra-limits.timer", "mailinfra-caps.timer", "mailinfra-logrotate.timer",
                                    "mailinfra-metrics", "mailinfra-placement-probe.timer",
                                    "mailinfra-placement-reader.service", "mailinfra-shaping"]
    # The host services' code is one object of the bucket for every host, named by key and digest.
    key, digest, _ = render_host_code_object()
    assert manifest["code"] == {"key": key, "sha256": digest}


@pytest.mark.parametrize("days", [(AS_OF, AS_OF + dt.timedelta(days=9))])
def test_user_data_and_manifest_do_not_change_with_the_date_of_the_run(days, tmp_path):
    """GIVEN two runs of the program on different days of dev's warmup THEN mta1's user data and config
    manifest are identical (no update every day; the host applies each day's limits itself)."""
    runs = [run_mock("dev", tmp_path, as_of=day.isoformat()) for day in days]
    assert all("error" not in run for run in runs), runs
    assert user_data_of(runs[0], "mta1") == user_data_of(runs[1], "mta1")
    assert manifest_of(runs[0], "mta1") == manifest_of(runs[1], "mta1")
    plans = [build_plan(load_stack("dev"), day) for day in days]
    assert plans[0].warmup != plans[1].warmup, "the two days must have different limits"


def test_limits_timer_is_enabled_and_applied_after_the_services_start(dev_mta1):
    """The calendar applies at boot (before waiting for the timer) and daily, once Postfix runs."""
    _, _, cloud_config, _, _ = dev_mta1
    commands = [str(c) for c in cloud_config["runcmd"]]
    started = next(i for i, c in enumerate(commands) if c.startswith(APPLY) and c.endswith("--services start"))
    assert commands.index("systemctl enable --now mailinfra-limits.timer") > started
    assert commands.index("systemctl start mailinfra-limits.service") > started


def test_user_data_holds_no_secret_and_the_manifest_fills_every_marker_from_the_host_s_parameters(dev_mta1):
    plan, relays, _, text, manifest = dev_mta1
    assert relays, "dev has a relay route with a password"
    decoded = text + "".join(f["content"] for f in manifest["files"])
    assert RELAY_PASSWORD not in decoded and "PRIVATE KEY" not in decoded
    files = {f["path"]: f for f in manifest["files"]}
    own = {s["parameter"] for s in manifest["secrets"]}
    filled = 0
    for file in render_host(plan, "mta1"):
        fills = dict(files[f"/{file.path}"]["fills"])
        for name in file.secret_placeholders:
            # GIVEN a marker in a file WHEN the manifest is applied THEN one of the host's own parameters fills it.
            marker = f"@@SECRET:{name}@@"
            assert marker in files[f"/{file.path}"]["content"], (file.path, name)
            assert fills[marker].startswith("/mailinfra/dev/mta1/route/"), fills[marker]
            assert fills[marker] in own, fills[marker]
            filled += 1
    assert filled >= len(relays)


def test_dkim_key_the_host_fetches_is_the_file_opendkim_reads(dev_mta1):
    plan, _, _, _, manifest = dev_mta1
    fetched = {s["parameter"]: s for s in manifest["secrets"]}
    host = plan.host("mta1")
    keytable = next(f.content for f in render_host(plan, "mta1") if f.path == "etc/opendkim/KeyTable")
    read = {line.split(":")[-1] for line in keytable.splitlines() if line and not line.startswith("#")}
    assert read == {e.key_file for e in plan_signing(plan, host)}
    delivered = [fetched[dkim_parameter_name("dev", "mta1", k)] for k in delivered_keys(plan, host) if k.signing]
    assert read and read <= {s["path"] for s in delivered}
    for secret in delivered:
        # OpenDKIM refuses keys in group/world-accessible directories (notes/mta.md): its own 0700 ones.
        assert (secret["owner"], secret["mode"]) == ("opendkim:opendkim", "0600")
        assert secret["directories"][-1] == secret["path"].rsplit("/", 1)[0]


def test_postfix_joins_the_opendkim_socket_group_before_the_services_start(dev_mta1):
    """A Postfix host adds postfix to the group of the OpenDKIM Unix sockets (0770) before the apply
    program starts opendkim and postfix, so smtpd/cleanup can reach the milters."""
    _, _, cloud_config, _, _ = dev_mta1
    commands = [str(c) for c in cloud_config["runcmd"]]
    joined = commands.index(f"usermod -aG {opendkim.SOCKET_GROUP} postfix")
    started = [i for i, c in enumerate(commands) if c.startswith(APPLY) or c.startswith("systemctl enable --now")]
    assert started and joined < min(started)


def test_user_data_writes_the_static_apply_program_and_refresh_runs_it(dev_mta1):
    """The program the user data writes is the repository's, byte for byte; refresh and boot run it against
    the host's own object, then the warmup limits service."""
    from components.mta_host import apply_program

    _, _, cloud_config, _, _ = dev_mta1
    written = {f["path"]: f for f in cloud_config["write_files"]}
    assert written[APPLY]["content"] == apply_program()
    assert written[APPLY]["permissions"] == "0700"
    refresh = written["/usr/local/sbin/mailinfra-refresh-config"]["content"]
    run = re.search(rf"^{APPLY} (.*) --services reload$", refresh, re.MULTILINE)
    assert run and re.fullmatch(r"--region \S+ --bucket \S+ --key hosts/mta1/bundle\.json", run[1])
    assert refresh.index(run[0]) < refresh.index("systemctl start mailinfra-limits.service")
    boot = [str(c) for c in cloud_config["runcmd"]]
    assert f"{APPLY} {run[1]} --services start" in boot


def test_nothing_the_plan_lists_reaches_the_user_data(dev_mta1):
    """No manifest file path, secret parameter or secret path is in the user data: they change with the plan."""
    _, _, cloud_config, text, manifest = dev_mta1
    assert {f["path"] for f in cloud_config["write_files"]}.isdisjoint(f["path"] for f in manifest["files"])
    for secret in manifest["secrets"]:
        assert secret["parameter"] not in text and secret["path"] not in text


def test_the_mta_unit_requires_the_spool_mounted_at_every_boot(dev_mta1):
    """systemd starts a unit's Requires= with it and, with After=, only once that one finished; if the
    requirement fails the unit does not start (systemd.unit(5)). The Postfix units (postfix@<instance>;
    Debian's postfix.service only groups them) so never run before mailinfra-spool.service mounted the
    volume, at every boot; the drop-in is written before the packages install (write_files, init stage:
    tests/pulumi/test_user_data_spool_order.py), while policy-rc.d keeps their postinsts from starting it."""
    _, _, cloud_config, _, _ = dev_mta1
    files = {f["path"]: f["content"] for f in cloud_config["write_files"]}
    unit = files["/etc/systemd/system/mailinfra-spool.service"]
    assert f"ExecStart={APPLY} --spool-only" in unit and "RemainAfterExit=yes" in unit
    dropin = files["/etc/systemd/system/postfix@.service.d/mailinfra-spool.conf"]
    assert "Requires=mailinfra-spool.service" in dropin and "After=mailinfra-spool.service" in dropin
    commands = [str(c) for c in cloud_config["runcmd"]]
    applied = next(i for i, c in enumerate(commands) if c.startswith(APPLY) and "--services start" in c)
    assert any(c.startswith("systemctl enable") and "mailinfra-spool.service" in c for c in commands[applied:])
