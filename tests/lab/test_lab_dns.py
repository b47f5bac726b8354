"""The lab's DNS is what the deployment's record resources publish: drift finds the plan there, and a
deployment with the old, pre-quoted TXT values fails the lab as Route53 would fail `pulumi up`."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.dkim_keys import public_half
from mailinfra.deployment import route53
from mailinfra.deployment.program import Deployment
from mailinfra.deployment.published import PublishError, txt_strings
from mailinfra.dns.txt import join_txt, quote_txt
from mailinfra.lab import lab as lab_module
from mailinfra.lab.deployment import deploy_lab
from mailinfra.lab.keys import generate_lab_keys
from mailinfra.lab.layout import DNS_ADDRESS, plan_layout
from mailinfra.lab.namespace import in_namespace, namespace_exists
from mailinfra.model.load import load_stack, resolve_stack_file
from mailinfra.plan.build import build_plan
from tests.lab.conftest import require_lab

pytestmark = [pytest.mark.lab, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]

_DRIFT = """
import asyncio, datetime as dt, json, sys
from mailinfra.drift.dns_check import DnsOptions, check_dns
from mailinfra.drift.resolve import parse_server
from mailinfra.model.load import load_stack
from mailinfra.plan.build import build_plan
plan = build_plan(load_stack(sys.argv[1]), dt.date.fromisoformat(sys.argv[2]))
results, failures = asyncio.run(check_dns(plan, DnsOptions(parse_server(sys.argv[3]))))
print(json.dumps({"failures": failures, "results": [r.as_dict() for r in results]}))
"""


def _stack_with_lab_keys(lab: Any, directory: Path) -> Path:
    """The dev stack file with the lab's public keys in place, as `mailinfra dkim keygen` would leave it:
    the plan the lab's deployment was made from (deploy_lab puts the same keys in its config)."""
    data = yaml.safe_load(resolve_stack_file("dev").read_text(encoding="utf-8"))
    domains = data["config"]["mailinfra:domains"]
    for key in lab.plan.dkim_keys:
        path = lab.layout.keys_dir / key.domain / f"{key.selector}.private"
        if key.published and path.exists():
            public = public_half(path.read_text(encoding="ascii"), key.algorithm)
            domains[key.domain]["dkim"]["selectors"][key.selector]["public_key"] = public
    path = directory / "Pulumi.dev.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def test_drift_against_the_labs_knot_finds_no_drift_for_dev(lab: Any, tmp_path: Path) -> None:
    """GIVEN the dev lab, whose Knot serves what the Route53 records and EIP PTRs publish
    WHEN drift compares the plan (with the lab's keys) against that server
    THEN every planned RRset is there unchanged."""
    stack_file = _stack_with_lab_keys(lab, tmp_path)
    done = subprocess.run(
        in_namespace(lab.layout.namespace, [sys.executable, "-c", _DRIFT, str(stack_file),
                                            lab.plan.as_of.isoformat(), DNS_ADDRESS]),
        capture_output=True, text=True, cwd=ROOT, check=False, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["failures"] == []
    drifted = [r for r in report["results"] if r["status"] != "ok"]
    assert drifted == [], drifted
    assert len(report["results"]) == len(lab.plan.records)


def _quoted_as_the_old_program_sent(deployment: Deployment) -> Deployment:
    """Every Route53 TXT entry in master-file form (`quote_txt`), as components/dns_records.py sent it
    before the fix: the provider then wraps it in a second pair of quotes (record.go flattenTxtEntry)."""
    resources = []
    for resource in deployment.resources:
        if resource.type == route53.RECORD and resource.inputs.get("type") == "TXT":
            rrset = route53.published_rrset(resource)
            old = [quote_txt(join_txt(txt_strings(rdata))) for rdata in rrset.rdatas]
            resources.append(dataclasses.replace(resource, inputs={**resource.inputs, "records": old}))
        else:
            resources.append(resource)
    return dataclasses.replace(deployment, resources=tuple(resources))


def test_txt_values_quoted_as_before_make_the_lab_fail_as_route53_would(tmp_path: Path) -> None:
    """GIVEN the dev deployment with its TXT values pre-quoted (the blocker of issue 10)
    WHEN the lab is built from it
    THEN it fails on the first TXT record, with Route53's InvalidChangeBatch reason, and leaves nothing up."""
    require_lab()
    as_of = lab_module.first_day("dev", "warmed", start=dt.date(2026, 11, 29))
    plan = build_plan(load_stack("dev"), as_of)
    keys = generate_lab_keys(plan, tmp_path / "keys")
    deployment = deploy_lab(plan, keys, lab_module.route_credentials(plan)[0])
    broken = _quoted_as_the_old_program_sent(deployment)
    layout = plan_layout(plan, tmp_path / "build", Path("/run/mailinfra-lab-test-dns"), namespace="mi-test-txtq")
    lab = lab_module.Lab(plan, layout)
    try:
        with pytest.raises(PublishError) as caught:
            lab_module.up(lab, deployment=broken)
    finally:
        lab_module.down(lab)
    assert caught.value.resource_type == route53.RECORD
    assert "InvalidCharacterString (Value should be enclosed in quotation marks)" in caught.value.reason
    assert not namespace_exists("mi-test-txtq")
