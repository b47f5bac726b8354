"""The one TXT formatter: split into <= 255-byte character-strings, quote for zone files, join back.

Every consumer (zone files, Route53, Cloudflare, drift) goes through here, so a long DKIM key is split
the same way everywhere. The providers take TXT values in two different forms, one function each:

- `quote_txt` / `cloudflare_txt_content`: master-file form, `"chunk1" "chunk2"` (zone files, Knot, and
  Cloudflare's `content`, which "must consist of quoted character strings (RFC 1035), each with a length
  of up to 255 bytes": the Cloudflare API's DNS record schema, cloudflare-typescript PR #1777).
- `route53_txt_value`: the form the AWS provider's `records` takes, `chunk1""chunk2` WITHOUT the outer
  quotes, because terraform-provider-aws wraps every TXT/SPF value in them itself
  (internal/service/route53/record.go `expandResourceRecords` -> `flattenTxtEntry`: `"%s"`).
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


def cloudflare_txt_content(text: str) -> str:
    """`text` as a Cloudflare DnsRecord `content` for TXT: the quoted character-strings of `quote_txt`.

    Cloudflare's API (DNS record schema, TXT `content`) expects quoted RFC 1035 character-strings of at
    most 255 bytes each, so it is the master-file form; a value sent unquoted has no string boundaries
    of its own and relies on Cloudflare's automatic split.
    """
    return quote_txt(text)


def route53_txt_value(text: str) -> str:
    """`text` as one entry of an aws.route53.Record's `records` (TXT or SPF): `chunk1""chunk2`.

    The provider sends `"` + entry + `"` to Route53 (record.go `flattenTxtEntry`), so the entry must not
    carry the outer quotes; `""` between chunks closes one character-string and opens the next, which is
    how the SDK's `records` docstring says to write a value over 255 bytes (`first255characters""more`).
    Route53 reads the result in master-file form: `\\"` and `\\\\` escape a quote and a backslash, any
    other octet outside printable ASCII is written `\\ooo` in OCTAL (Route53 Developer Guide, "TXT record
    type" / "DNS domain name format"), unlike the decimal `\\DDD` of RFC 1035 zone files.
    """
    return '""'.join(_escape_route53(chunk) for chunk in split_txt(text))


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


def _escape_route53(chunk: str) -> str:
    out: list[str] = []
    for char in chunk:
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif 0x20 <= ord(char) < 0x7F:
            out.append(char)
        else:
            out.extend(f"\\{octet:03o}" for octet in char.encode())
    return "".join(out)
