"""The byte-level reader gives what dnspython gives for the values drift compares, and refuses what it refuses."""

from __future__ import annotations

import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rrset
import pytest

from mailinfra.drift import wire
from mailinfra.drift.resolve import rdata_text

ZONE = """\
$ORIGIN Example.COM.
@ 300 IN SOA ns1 hostmaster 7 3600 600 86400 300
@ 300 IN NS ns1
@ 300 IN MX 10 MX1.example.com.
@ 300 IN MX 20 mx2.example.net.
@ 300 IN TXT "v=spf1 ip4:192.0.2.0/24 " "include:_spf.example.net -all"
@ 300 IN TXT "v=spf1 ip4:192.0.2.0/24 include:_spf.example.net -all"
@ 300 IN TXT "caf\\195\\169 \\"quoted\\" back\\\\slash"
null 300 IN MX 0 .
tx1 300 IN A 192.0.2.10
tx1 300 IN A 192.0.2.11
tx1 300 IN A 192.0.2.10
Upper.Case 300 IN CNAME Target.Example.NET.
we\\.ird\\@name 300 IN A 192.0.2.12
\\195\\169t\\195\\169 300 IN TXT "non-ascii owner"
_dmarc 300 IN TXT "v=DMARC1; p=quarantine; rua=mailto:d@example.com"
1.2.0.192.in-addr.arpa. 300 IN PTR tx1.example.com.
@ 300 IN AAAA 2001:db8::1
"""


def zone_message() -> dns.message.Message:
    """A response carrying ZONE's records, compressed by dnspython (names in upper and mixed case)."""
    response = dns.message.make_response(dns.message.make_query("example.com", "AXFR"))
    origin = dns.name.from_text("Example.COM.")
    for line in ZONE.splitlines()[1:]:
        owner, ttl, rdclass, rdtype, text = line.split(None, 4)
        name = dns.name.from_text(owner, origin=origin)
        rdata = dns.rdata.from_text(rdclass, rdtype, text, origin=origin, relativize=False)
        response.answer.append(dns.rrset.from_rdata(name, int(ttl), rdata))
    return response


def test_values_match_dnspython_for_every_rrset() -> None:
    """GIVEN a message dnspython wrote WHEN read byte by byte THEN each RRset has dnspython's values in order."""
    message = zone_message()
    data = message.to_wire()
    read = wire.parse_message(data)
    expected = dns.message.from_wire(data)
    assert read.id == expected.id and read.rcode == expected.rcode()
    compared = 0
    for rrset in expected.answer:
        if rrset.rdtype not in (1, 2, 5, 12, 15, 16):
            continue
        name = wire.name_key(rrset.name.to_text())
        values = wire.rrset_values(read.answer, name, rrset.rdtype)
        assert values == tuple(rdata_text(rrset.rdtype, r) for r in rrset), rrset.to_text()
        compared += 1
    assert compared == 10


def test_names_render_as_dnspython_renders_them() -> None:
    """Owner names lower-cased with dnspython's escapes, root targets as '.', planned names keyed alike."""
    read = wire.parse_message(zone_message().to_wire())
    owners = {r.name for r in read.answer}
    assert {"example.com", "upper.case.example.com", "we\\.ird\\@name.example.com",
            "\\195\\169t\\195\\169.example.com", "1.2.0.192.in-addr.arpa"} <= owners
    assert wire.rrset_values(read.answer, "null.example.com", wire.MX) == ("0 .",)
    assert wire.name_key("Upper.Case.Example.com") == "upper.case.example.com"
    assert wire.name_key("we\\.ird\\@name.example.com") == "we\\.ird\\@name.example.com"


@pytest.mark.parametrize("name", ["tx1.example.com", "_dmarc.Example.com", "we\\.ird.example.com", "*.x.test"])
def test_query_wire_is_dnspython_query(name: str) -> None:
    query = dns.message.make_query(name, "TXT", flags=0)
    assert wire.with_id(wire.query_wire(name, wire.TXT), query.id) == query.to_wire()


def _refused_by_dnspython(data: bytes) -> bool:
    try:
        dns.message.from_wire(data)
    except (dns.exception.DNSException, ValueError):
        return True
    return False


def _mutations(data: bytes) -> list[tuple[str, bytes]]:
    # The first answer's owner, right after the question (example.com, AXFR, IN): a pointer to offset 12.
    first_pointer = 12 + len(b"\x07example\x03com\x00") + 4
    assert data[first_pointer:first_pointer + 2] == b"\xc0\x0c"
    forward = data[:first_pointer] + bytes((0xC0 | (len(data) >> 8) & 0x3F, len(data) & 0xFF)) + data[
        first_pointer + 2:]
    self_pointer = data[:first_pointer] + bytes((0xC0 | first_pointer >> 8, first_pointer & 0xFF)) + data[
        first_pointer + 2:]
    return [
        ("trailing junk", data + b"\0"),
        ("truncated", data[:-3]),
        ("short header", data[:11]),
        ("forward pointer", forward),
        ("pointer to itself", self_pointer),
        ("bad label type", data[:12] + b"\x40" + data[13:]),
    ]


@pytest.mark.parametrize("case", range(6))
def test_refuses_what_dnspython_refuses(case: int) -> None:
    label, data = _mutations(zone_message().to_wire())[case]
    assert _refused_by_dnspython(data), label
    with pytest.raises(wire.WireError):
        wire.parse_message(data)


def test_empty_txt_and_short_a_are_refused() -> None:
    """RDATA dnspython cannot build (a TXT without strings, an A of 3 octets) refuses the message."""
    for rdtype, rdata in ((wire.TXT, b""), (wire.A, b"\xc0\x00\x02")):
        data = (b"\x12\x34\x84\x00\x00\x00\x00\x01\x00\x00\x00\x00" + b"\x01a\x00"
                + rdtype.to_bytes(2, "big") + b"\x00\x01\x00\x00\x01\x2c" + len(rdata).to_bytes(2, "big") + rdata)
        assert _refused_by_dnspython(data)
        with pytest.raises(wire.WireError):
            wire.parse_message(data)


def test_extended_rcode_from_edns() -> None:
    """BADVERS (16) lives half in the header, half in the OPT TTL (RFC 6891 §6.1.3)."""
    response = dns.message.make_response(dns.message.make_query("example.com", "A", use_edns=0))
    response.set_rcode(dns.rcode.BADVERS)
    data = response.to_wire()
    assert wire.parse_message(data).rcode == dns.message.from_wire(data).rcode() == 16
