"""SPF: building, counting DNS-querying terms, parsing for comparison and checking."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailinfra.dns.spf import MAX_LOOKUPS, build_spf, check_spf, count_lookup_terms, parse_spf

ipv4s = st.ip_addresses(v=4).map(str)
domains = st.from_regex(r"[a-z][a-z0-9]{0,10}(\.[a-z][a-z0-9]{0,10}){1,3}", fullmatch=True)


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ("v=spf1 -all", 0),
        ("v=spf1 ip4:192.0.2.1 ip4:198.51.100.0/24 ip6:2001:db8::/32 -all", 0),
        ("v=spf1 include:_spf.example.com -all", 1),
        ("v=spf1 a mx ptr -all", 3),
        ("v=spf1 a:mail.example.com a/24 mx:example.com mx/24//64 -all", 4),
        ("v=spf1 ?ptr:example.com ~exists:%{i}.bl.example.com -all", 2),
        ("v=spf1 redirect=_spf.example.com", 1),
        ("v=spf1 ip4:192.0.2.1 exp=explain.example.com -all", 0),
        ("v=spf1 -include:a.example +include:b.example ~include:c.example ?include:d.example -all", 4),
        ("V=SPF1 INCLUDE:A.EXAMPLE MX -ALL", 2),
        ("v=spf1 unknown=whatever ip4:192.0.2.1 -all", 0),
        ("v=spf1 " + " ".join(f"include:i{n}.example" for n in range(11)) + " -all", 11),
    ],
)
def test_count_lookup_terms_table(record: str, expected: int) -> None:
    """Only include, a, mx, ptr, exists and redirect= cost a lookup (RFC 7208 §4.6.4)."""
    assert count_lookup_terms(record) == expected


def test_build_sorts_numerically_and_dedupes() -> None:
    """IPs are sorted by value, not text; duplicates and /32 collapse to one bare address."""
    record = build_spf(
        ["10.0.0.10", "10.0.0.9", "10.0.0.9/32", "192.0.2.0/24"],
        includes=["_spf.example.net", "_spf.example.net."],
        mechanisms=["mx"],
        all_qualifier="~",
    )
    assert record == "v=spf1 ip4:10.0.0.9 ip4:10.0.0.10 ip4:192.0.2.0/24 mx include:_spf.example.net ~all"
    assert check_spf(record) == []


@given(st.lists(ipv4s, max_size=20), st.lists(domains, max_size=MAX_LOOKUPS, unique=True))
def test_lookup_count_of_built_record_is_its_includes(ips: list[str], includes: list[str]) -> None:
    """ip4 terms cost nothing, so a built record costs exactly one lookup per include."""
    record = build_spf(ips, includes)
    assert count_lookup_terms(record) == len(includes)
    assert parse_spf(record).version == "v=spf1"


@given(st.lists(ipv4s, min_size=1, max_size=10), st.randoms())
def test_parse_is_order_and_spelling_independent(ips: list[str], rnd: object) -> None:
    """Shuffling terms, changing case and spacing, or writing /32 does not change the meaning."""
    record = build_spf(ips, ["_spf.example.com"])
    terms = record.split()[1:]
    rnd.shuffle(terms)  # type: ignore[attr-defined]
    respelled = "V=SPF1   " + "  ".join(t.upper() if t.startswith("include") else t for t in terms)
    respelled = respelled.replace(f"ip4:{ips[0]} ", f"ip4:{ips[0]}/32 ")
    assert parse_spf(respelled) == parse_spf(record)


def test_parse_tells_different_records_apart() -> None:
    """A changed qualifier or address is a different record."""
    base = parse_spf("v=spf1 ip4:192.0.2.1 -all")
    assert parse_spf("v=spf1 ip4:192.0.2.1 ~all") != base
    assert parse_spf("v=spf1 ip4:192.0.2.2 -all") != base
    assert parse_spf("v=spf1 +ip4:192.0.2.1 -all") == base


def test_parse_renders_canonically() -> None:
    """The canonical text puts mechanisms first, then all, then modifiers."""
    record = parse_spf("v=spf1 exp=x.example -all include:B.example ip4:192.0.2.1/32")
    assert record.render() == "v=spf1 include:b.example ip4:192.0.2.1 -all exp=x.example"


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        ("spf1 ip4:192.0.2.1 -all", "does not start with v=spf1"),
        ("v=spf1 ip4:192.0.2.1", "no terminal all or redirect="),
        ("v=spf1 " + " ".join(f"include:i{n}.example" for n in range(11)) + " -all", "over the limit of 10"),
        (
            "v=spf1 " + " ".join(f"ip4:10.0.{n // 256}.{n % 256}" for n in range(40)) + " -all",
            "bytes, over 450",
        ),
        ("v=spf1 -all ip4:192.0.2.1", "after all are never evaluated"),
        ("v=spf1 +all", "+all"),
        ("v=spf1 redirect=a.example redirect=b.example", "redirect= appears more than once"),
    ],
)
def test_check_finds_problem(record: str, problem: str) -> None:
    """Each broken record yields a finding naming its problem."""
    assert any(problem in finding for finding in check_spf(record)), check_spf(record)


@pytest.mark.parametrize(
    "record",
    [
        "v=spf1 -all",
        "v=spf1 redirect=_spf.example.com",
        "v=spf1 " + " ".join(f"include:i{n}.example" for n in range(10)) + " ~all",
        "v=spf1 ip6:2001:db8::/32 a mx -all",
    ],
)
def test_check_accepts_valid_records(record: str) -> None:
    """A well-formed record has no findings, and nothing raises."""
    assert check_spf(record) == []


def test_build_rejects_bad_input() -> None:
    """A malformed IP or qualifier is a caller bug."""
    with pytest.raises(ValueError, match=r"192\.0\.2\.300"):
        build_spf(["192.0.2.300"])
    with pytest.raises(ValueError, match="all_qualifier"):
        build_spf(["192.0.2.1"], all_qualifier="!")
