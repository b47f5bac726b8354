"""The pack's own record parsers read every record our planner publishes as mailinfra.dns does.

The pack cannot import the project (see test_pack_isolation), so it carries small parsers; this keeps
them honest against the planner's, on the real records of every stack.
"""

from __future__ import annotations

import pytest
from mailinfra_policy import dns

from mailinfra.dns.dkim import public_key_bits as project_key_bits
from mailinfra.dns.dmarc import parse_dmarc
from mailinfra.dns.records import RecordType
from mailinfra.dns.spf import count_lookup_terms
from mailinfra.dns.txt import quote_txt
from mailinfra.model.load import load_stack
from mailinfra.plan.build import build_plan
from tests.policy.conftest import STACKS


@pytest.mark.parametrize("stack", STACKS)
def test_pack_parsers_agree_with_the_planner(stack: str) -> None:
    plan = build_plan(load_stack(stack))
    texts = [v for r in plan.records if r.type is RecordType.TXT for v in r.values]
    assert texts
    for text in texts:
        assert dns.unquote_txt(quote_txt(text)) == text
        assert dns.parse_tags(text) == parse_dmarc(text)
        if text.startswith("v=spf1"):
            assert dns.count_spf_lookups(text) == count_lookup_terms(text), text
        key = "".join(parse_dmarc(text).get("p", "").split())
        if text.startswith("v=DKIM1") and key:
            assert dns.public_key_bits(key) == project_key_bits(key)


@pytest.mark.parametrize("text", [
    "v=spf1 -redirect=x.org include=x.org +a:b.org ~mx/24 ?exists:%{i}.x.org ptr all redirect=r.org",
    "v=spf1 IP4:192.0.2.1 INCLUDE:X.ORG exp=explain.example.org -all",
])
def test_spf_counting_agrees_on_odd_terms(text: str) -> None:
    assert dns.count_spf_lookups(text) == count_lookup_terms(text)


def test_route53_bare_values_and_splits_read_as_published() -> None:
    """Route53: the provider quotes the value itself and "" splits it (terraform-provider-aws flattenTxtEntry)."""
    props = {"name": "x.example.com.", "type": "TXT", "records": ["v=spf1 a""\"\"""-all"]}
    assert list(dns.record_texts(dns.ROUTE53_RECORD, props, "TXT")) == [("x.example.com", "v=spf1 a-all")]
