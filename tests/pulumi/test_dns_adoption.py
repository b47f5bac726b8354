"""Adopting a live zone: dns.zones.<zone>.adopt makes the record resources overwrite or import live records.

terraform-provider-aws record.go resourceRecordCreate: "Use UPSERT only if the overwrite flag is true
... Else CREATE is used and fail if the same record exists" — without adoption, a live `_dmarc`, SPF or
DKIM record makes `pulumi up` fail. Import ids: Route53 `ZONEID_RECORDNAME_TYPE` (record.go
recordImportID.Parse), Cloudflare `<zone_id>/<dns_record_id>` (pulumi-cloudflare DnsRecord, Import).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mailinfra.review.diff import PlanDiff
from mailinfra.review.render import _render_resources
from mailinfra.review.resources import diff_resources
from tests.pulumi.conftest import preview_config, resources_of, run_mock

R53 = "aws:route53/record:Record"
DMARC_ID = "Z0ABCDEF12345__dmarc.example.com_TXT"


def _run(tmp_path: Path, zone: dict[str, Any]) -> dict[str, Any]:
    config, secret_keys = preview_config("dev")
    dns = json.loads(config["mailinfra:dns"])
    dns["zones"]["example.com"] = zone
    config["mailinfra:dns"] = json.dumps(dns)
    return run_mock("dev", tmp_path, config, secret_keys)


def test_without_adoption_every_record_is_a_plain_create(mock_runs: Any) -> None:
    """The default: CREATE, which fails on a live record (the issue's adoption defect, made explicit)."""
    records = resources_of(mock_runs("dev"), R53)
    assert records and not any(r["inputs"].get("allowOverwrite") or r["import_id"] for r in records)


def test_adopt_overwrite_sets_allow_overwrite_on_every_record_of_the_zone(tmp_path: Path) -> None:
    """Every Route53 record of the zone, the pools' HELO A records included (an adopted domain may already
    publish them), is an UPSERT."""
    run = _run(tmp_path, {"adopt": "overwrite"})
    records = resources_of(run, R53)
    assert {r["parent"] for r in records} >= {"dns", "pool-tx"}
    assert all(r["inputs"].get("allowOverwrite") is True for r in records)


def test_adopt_import_imports_exactly_the_listed_records(tmp_path: Path) -> None:
    run = _run(tmp_path, {"zone_id": "Z0ABCDEF12345", "adopt": "import",
                          "import_ids": {"TXT:_dmarc.example.com": DMARC_ID}})
    imported = {r["inputs"]["name"]: r["import_id"] for r in resources_of(run, R53) if r["import_id"]}
    assert imported == {"_dmarc.example.com": DMARC_ID}


def test_an_import_id_for_a_record_the_plan_does_not_create_is_one_clear_error(tmp_path: Path) -> None:
    run = _run(tmp_path, {"adopt": "import", "import_ids": {"TXT:_dmarc.other.example.com": "Z_x_TXT"}})
    assert "dns.zones.example.com.import_ids" in run["error"] and "TXT:_dmarc.other.example.com" in run["error"]


@pytest.mark.parametrize(("dns", "expected"), [
    ({"zones": {"example.com": {"import_ids": {"TXT:_dmarc.example.com": "x"}}}},
     "adopt: import when import_ids are given"),
    ({"provider": "cloudflare", "zones": {"example.com": {"adopt": "overwrite"}}}, "overwrite needs Route53"),
])
def test_adoption_settings_that_cannot_work_are_refused_at_load(dns: dict[str, Any], expected: str) -> None:
    from mailinfra.model.schema import Dns

    with pytest.raises(ValueError, match=expected):
        Dns.model_validate(dns)


def test_the_review_flags_a_record_that_will_overwrite_or_import_a_live_one() -> None:
    """A reviewer sees, on the new record's row, that `up` takes over what the live zone holds."""
    head = [
        {"type": R53, "name": "dns-txt-_dmarc.example.com", "urn": "u1", "inputs": {"allowOverwrite": True}},
        {"type": R53, "name": "dns-txt-example.com", "urn": "u2", "inputs": {}, "import_id": "Z1_example.com_TXT"},
        {"type": R53, "name": "dns-mx-example.com", "urn": "u3", "inputs": {}},
    ]
    changes = {c.name: c.adopts for c in diff_resources([], head)}
    assert "overwrites the live record set" in changes["dns-txt-_dmarc.example.com"]
    assert "imports the live record `Z1_example.com_TXT`" in changes["dns-txt-example.com"]
    assert changes["dns-mx-example.com"] == ""
    table = "\n".join(_render_resources(PlanDiff(resources=diff_resources([], head), resources_compared=True)))
    assert "**overwrites the live record set if one exists (allow_overwrite: UPSERT)**" in table
