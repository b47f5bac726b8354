"""DMARC: building in RFC 7489 tag order, tolerant parsing, external report authorization."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailinfra.dns.dmarc import build_dmarc, parse_dmarc, report_authorization_name


def test_build_full_record_in_rfc_order() -> None:
    """Every tag appears in the RFC 7489 order with v first and p second."""
    record = build_dmarc(
        "reject",
        "quarantine",
        adkim="s",
        aspf="r",
        rua=["dmarc@example.com", "mailto:agg@reports.example.net"],
        ruf=["forensic@example.com"],
        fo="1:d",
        pct=50,
    )
    assert record == (
        "v=DMARC1; p=reject; sp=quarantine; adkim=s; aspf=r; pct=50; "
        "rua=mailto:dmarc@example.com,mailto:agg@reports.example.net; ruf=mailto:forensic@example.com; fo=1:d"
    )


def test_build_minimal_record() -> None:
    """Optional tags are left out; alignment is always written."""
    assert build_dmarc("none") == "v=DMARC1; p=none; adkim=r; aspf=r"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"policy": "block"},
        {"policy": "none", "subdomain_policy": "all"},
        {"policy": "none", "adkim": "x"},
        {"policy": "none", "pct": 101},
        {"policy": "none", "fo": "2"},
    ],
)
def test_build_rejects_values_outside_the_rfc(kwargs: dict[str, object]) -> None:
    """A tag value RFC 7489 does not define is a caller bug."""
    with pytest.raises(ValueError):
        build_dmarc(**kwargs)  # type: ignore[arg-type]


def test_parse_tolerates_spacing_and_case() -> None:
    """Tag names are case-insensitive, whitespace and a trailing ';' are ignored."""
    parsed = parse_dmarc(" V = DMARC1 ;P=quarantine;  RUA = mailto:a@example.com ; ; junk ;")
    assert parsed == {"v": "DMARC1", "p": "quarantine", "rua": "mailto:a@example.com"}


@given(
    st.sampled_from(["none", "quarantine", "reject"]),
    st.sampled_from([None, "none", "quarantine", "reject"]),
    st.sampled_from(["r", "s"]),
    st.lists(st.emails(), max_size=3),
)
def test_parse_reads_back_what_build_wrote(
    policy: str, subdomain_policy: str | None, adkim: str, rua: list[str]
) -> None:
    """parse(build(...)) recovers every tag that was given."""
    parsed = parse_dmarc(build_dmarc(policy, subdomain_policy, adkim=adkim, rua=rua))
    assert parsed["v"] == "DMARC1"
    assert parsed["p"] == policy
    assert parsed.get("sp") == subdomain_policy
    assert parsed["adkim"] == adkim
    assert ("rua" in parsed) == bool(rua)


@pytest.mark.parametrize(
    ("domain", "uri", "org_domain", "expected"),
    [
        ("example.com", "mailto:dmarc@example.com", None, None),
        ("example.com", "mailto:dmarc@reports.example.com", None, None),
        ("mail.example.com", "mailto:dmarc@example.com", "example.com", None),
        (
            "example.com",
            "mailto:d@Reports.Vendor.NET.",
            None,
            "example.com._report._dmarc.reports.vendor.net",
        ),
        ("example.com", "mailto:d@vendor.net!10m", None, "example.com._report._dmarc.vendor.net"),
        ("example.com", "mailto:d@notexample.com", None, "example.com._report._dmarc.notexample.com"),
        ("example.com", "https://vendor.net/report", None, None),
    ],
)
def test_report_authorization_name(
    domain: str, uri: str, org_domain: str | None, expected: str | None
) -> None:
    """Only a mailto: address outside the organizational domain needs an authorization record."""
    assert report_authorization_name(domain, uri, org_domain) == expected
