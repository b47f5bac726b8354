"""The data behind the places and names rules is the providers' own: SES regions as botocore lists them,
availability zone names as EC2 spells them, the Public Suffix List as the publicsuffixlist package ships it."""

from __future__ import annotations

import json
from pathlib import Path

import botocore
import pytest
from publicsuffixlist import PublicSuffixList

from mailinfra.model.limits import SES_REGIONS
from mailinfra.model.places import _public_suffix_list, _tld, availability_zone_in


def test_ses_regions_are_the_ones_botocore_knows_an_endpoint_for():
    """botocore's endpoint data (what the AWS SDKs, and the provider's region list, are built from)."""
    data = json.loads((Path(botocore.__file__).parent / "data" / "endpoints.json").read_text())
    regions = {region for partition in data["partitions"]
               for region, endpoint in partition["services"].get("email", {}).get("endpoints", {}).items()
               if "fips" not in region and not endpoint.get("deprecated")}
    assert regions == SES_REGIONS


@pytest.mark.parametrize(("zone", "region", "inside"), [
    ("us-east-1a", "us-east-1", True),
    ("us-east-1-bos-1a", "us-east-1", True),  # a Local Zone
    ("us-east-1-wl1-bos-wlz-1", "us-east-1", True),  # a Wavelength Zone
    ("us-east-2a", "us-east-1", False),
    ("us-east-11a", "us-east-1", False),
    ("eu-west-1a", "us-east-1", False),
])
def test_availability_zone_names_start_with_their_region(zone, region, inside):
    assert availability_zone_in(zone, region) is inside


@pytest.mark.parametrize("name", [
    "example.com", "mail.example.com", "co.uk", "example.co.uk", "a.b.example.co.uk", "github.io",
    "someone.github.io", "x.someone.github.io", "kawasaki.jp", "city.kawasaki.jp", "foo.bar.kawasaki.jp",
    "example.xn--p1ai", "example.test",
])
def test_the_list_cut_to_one_top_level_label_answers_like_the_whole_list(name):
    """The rules of one top-level label decide every name under it (wildcards and exceptions included)."""
    whole = PublicSuffixList()
    cut = _public_suffix_list(_tld(name))
    assert (cut.is_public(name), cut.privatesuffix(name)) == (whole.is_public(name), whole.privatesuffix(name))
