"""The one TXT formatter: 255-byte character-strings, master-file quoting, joining back."""

from __future__ import annotations

import dns.rdata
import dns.rdataclass
import dns.rdatatype
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailinfra.dns.txt import MAX_STRING_BYTES, join_txt, quote_txt, split_txt


def parse_txt(rdata_text: str) -> tuple[bytes, ...]:
    rdata = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.TXT, rdata_text)
    return tuple(rdata.strings)  # type: ignore[attr-defined]


@given(st.text())
def test_every_chunk_fits_in_255_bytes(text: str) -> None:
    """No character-string is longer than 255 UTF-8 bytes, and none but the only one is empty."""
    chunks = split_txt(text)
    assert all(len(chunk.encode()) <= MAX_STRING_BYTES for chunk in chunks)
    assert len(chunks) == 1 or all(chunks)


@given(st.text())
def test_join_inverts_split(text: str) -> None:
    """Joining the chunks gives back the text exactly."""
    assert join_txt(split_txt(text)) == text


@given(st.text())
def test_quote_round_trips_through_dnspython(text: str) -> None:
    """dnspython parses the quoted form into strings that join back to the text."""
    assert join_txt(parse_txt(quote_txt(text))) == text


@given(st.text(alphabet=st.characters(min_codepoint=0x80, codec="utf-8"), min_size=200))
def test_multibyte_text_is_never_split_inside_a_character(text: str) -> None:
    """Each chunk is valid UTF-8 by itself, so no character straddles two strings."""
    for chunk in split_txt(text):
        assert chunk.encode().decode() == chunk


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ("",)),
        ("a" * 255, ("a" * 255,)),
        ("a" * 256, ("a" * 255, "a")),
        ("a" * 254 + "é", ("a" * 254, "é")),  # é is 2 bytes: 256 would not fit
        ("a" * 253 + "é", ("a" * 253 + "é",)),
        ("a" * 253 + "€x", ("a" * 253, "€x")),  # € is 3 bytes: 256 would not fit
    ],
)
def test_split_table(text: str, expected: tuple[str, ...]) -> None:
    """Split points fall at the 255-byte boundary, moved back to the start of a character."""
    assert split_txt(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", '""'),
        ("v=spf1 -all", '"v=spf1 -all"'),
        ('say "hi"', r'"say \"hi\""'),
        ("back\\slash", r'"back\\slash"'),
        ("line\nbreak", r'"line\010break"'),
        ("a" * 300, f'"{"a" * 255}" "{"a" * 45}"'),
    ],
)
def test_quote_table(text: str, expected: str) -> None:
    """Quotes and backslashes are escaped, control characters become \\DDD, chunks are space-joined."""
    assert quote_txt(text) == expected


def test_join_accepts_bytes_split_inside_a_character() -> None:
    """Strings from another producer that split a character in two still join to the text."""
    encoded = "é".encode()
    assert join_txt([b"a" + encoded[:1], encoded[1:] + b"b"]) == "aéb"
