"""The one TXT formatter: split into <= 255-byte character-strings, quote for zone files, join back.

Every consumer (zone files, Route53, Cloudflare, drift) goes through here, so a long DKIM key is split
the same way everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable

# RFC 1035 §3.3.14: TXT-DATA is one or more <character-string>s; RFC 1035 §3.3 caps each at 255 octets
# (a one-octet length prefix).
MAX_STRING_BYTES = 255


def split_txt(text: str) -> tuple[str, ...]:
    """Split `text` into character-strings of at most 255 UTF-8 bytes, never inside a character.

    The empty text is one empty character-string: a TXT RR always carries at least one (RFC 1035 §3.3.14).
    """
    if not text:
        return ("",)
    if text.isascii():  # one byte per character: fixed-size chunks, no per-character walk
        return tuple(text[start:start + MAX_STRING_BYTES] for start in range(0, len(text), MAX_STRING_BYTES))
    chunks: list[str] = []
    start = 0
    size = 0
    for index, char in enumerate(text):
        width = len(char.encode())
        if size + width > MAX_STRING_BYTES:
            chunks.append(text[start:index])
            start, size = index, 0
        size += width
    chunks.append(text[start:])
    return tuple(chunks)


def quote_txt(text: str) -> str:
    """Render `text` as TXT rdata in master-file form: `"chunk1" "chunk2"`.

    RFC 1035 §5.1: inside a quoted string `"` and `\\` are escaped with a backslash and any other octet
    may be written `\\DDD` (decimal). Control characters are written `\\DDD` so a newline can never end
    the record early; other characters (including non-ASCII UTF-8) are written as they are. Route53 takes
    the same form for printable ASCII, which is all that SPF, DKIM and DMARC records contain.
    """
    return " ".join(f'"{_escape(chunk)}"' for chunk in split_txt(text))


def join_txt(strings: Iterable[str | bytes]) -> str:
    """Join the character-strings of one TXT RR back into its logical text (the inverse of `split_txt`).

    RFC 7208 §3.3 and RFC 6376 §3.6.2.2: receivers concatenate the strings with nothing in between.
    Bytes (as dnspython returns them) are joined before decoding, because another producer may have
    split inside a multi-byte character; undecodable octets become U+FFFD rather than raising, since
    drift reads records this project did not write.
    """
    parts = [s if isinstance(s, bytes) else s.encode() for s in strings]
    return b"".join(parts).decode("utf-8", "replace")


def _escape(chunk: str) -> str:
    out: list[str] = []
    for char in chunk:
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\{ord(char):03d}")
        else:
            out.append(char)
    return "".join(out)
