"""What Route53 publishes (or refuses) for an aws.route53.Record, as terraform-provider-aws sends it.

Provider source: hashicorp/terraform-provider-aws internal/service/route53/record.go —
`expandResourceRecords` passes every TXT/SPF entry through `flattenTxtEntry`, `fmt.Sprintf(`"%s"`, s)`;
`resourceRecordCreate` uses UPSERT only with `allow_overwrite`, else CREATE. Route53's reading of the
value: Developer Guide "Supported DNS record types" (TXT): quoted strings of <= 255 characters, `\\"`
escapes a quote. Its refusal of an already-quoted entry is the error in hashicorp/terraform#10048:
`InvalidCharacterString (Value should be enclosed in quotation marks) encountered with '""aaa" "bbb""'`.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailinfra.deployment import route53
from mailinfra.deployment.program import Resource
from mailinfra.deployment.published import PublishError, txt_strings
from mailinfra.dns.txt import join_txt, quote_txt, route53_txt_value


def record(records: list[str], rtype: str = "TXT", **extra: Any) -> Resource:
    inputs = {"zoneId": "Z1", "name": "_dmarc.example.com", "type": rtype, "ttl": 300.0, "records": records, **extra}
    return Resource(type=route53.RECORD, name="dns-txt-_dmarc.example.com", urn="urn:x", parent=None, inputs=inputs)


def published_strings(entry: str) -> tuple[bytes, ...]:
    (rdata,) = route53.published_rrset(record([entry])).rdatas
    return txt_strings(rdata)


@pytest.mark.parametrize(("entry", "strings"), [
    # flattenTxtEntry("abc") == `"abc"`: one string, the text itself.
    ("abc", (b"abc",)),
    # `a""b` -> `"a""b"`: the inner `""` closes one string and opens the next (the SDK docstring's
    # `first255characters""morecharacters`).
    ('a""b', (b"a", b"b")),
    # `a" "b` -> `"a" "b"`: two strings too (record.go's own comment: `records = ["x=\" \"foo"]`).
    ('a" "b', (b"a", b"b")),
    # An escaped quote stays a character of the string (Route53: `\"` is a quotation mark).
    ('say \\"hi\\"', (b'say "hi"',)),
])
def test_route53_publishes_the_entry_wrapped_in_one_pair_of_quotes(entry: str, strings: tuple[bytes, ...]) -> None:
    assert published_strings(entry) == strings


def test_an_already_quoted_entry_is_refused_as_route53_refuses_it() -> None:
    """The old components/dns_records.py sent quote_txt(value): Route53 gets `""v=DMARC1; p=none""`."""
    with pytest.raises(PublishError) as caught:
        route53.published_rrset(record([quote_txt("v=DMARC1; p=none")]))
    message = str(caught.value)
    assert "dns-txt-_dmarc.example.com" in message
    assert "InvalidCharacterString (Value should be enclosed in quotation marks)" in message
    assert "'\"\"v=DMARC1; p=none\"\"'" in message


def test_an_already_quoted_long_value_is_refused_too() -> None:
    """quote_txt of a 400-byte DKIM key is `"<255>" "<145>"`: Route53 gets `""<255>" "<145>""`."""
    with pytest.raises(PublishError, match="InvalidCharacterString"):
        route53.published_rrset(record([quote_txt("v=DKIM1; k=rsa; p=" + "A" * 400)]))


def test_a_string_over_255_bytes_is_refused() -> None:
    """Route53: each string up to 255 characters, else `CharacterStringTooLong (Value is too long)`
    (the InvalidChangeBatch message in boto/boto3#1462)."""
    with pytest.raises(PublishError, match="CharacterStringTooLong"):
        route53.published_rrset(record(["v=DKIM1; p=" + "A" * 300]))


@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=1200))
def test_route53_txt_value_publishes_the_text_in_255_byte_strings(text: str) -> None:
    """What our formatter gives the provider reaches receivers as the text itself (joined, RFC 7208 §3.3)."""
    strings = published_strings(route53_txt_value(text))
    assert join_txt(strings) == text
    assert all(len(s) <= 255 for s in strings)


def test_allow_overwrite_makes_the_change_an_upsert() -> None:
    """record.go resourceRecordCreate: UPSERT if allow_overwrite, else CREATE (fails on a live record)."""
    assert route53.published_rrset(record(["abc"])).action == "CREATE"
    assert route53.published_rrset(record(["abc"], allowOverwrite=True)).action == "UPSERT"


def test_names_and_targets_are_fully_qualified_and_lower_case() -> None:
    """Route53 treats names in values as fully qualified, the trailing dot optional; record.go's
    StateFunc lower-cases the name and trims its dot; expandRecordName appends the zone to a bare name."""
    mx = route53.published_rrset(record(["10 MTA1.example.com"], "MX", name="Bounce.Example.com."))
    assert (mx.name, mx.rdatas) == ("bounce.example.com", ("10 mta1.example.com.",))
    bare = route53.published_rrset(record(["192.0.2.1"], "A", name="www"), {"Z1": "example.com"})
    assert bare.name == "www.example.com"


def test_duplicate_entries_collapse_as_the_provider_set_does() -> None:
    """`records` is a schema.TypeSet in record.go: the same entry twice is one value."""
    assert route53.published_rrset(record(["abc", "abc"])).rdatas == ('"abc"',)


def test_an_invalid_address_is_refused() -> None:
    with pytest.raises(PublishError, match="IPv4"):
        route53.published_rrset(record(["203.0.113.300"], "A"))
