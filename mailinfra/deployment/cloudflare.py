"""Cloudflare DnsRecord resources -> the RRsets Cloudflare would publish (and what it would refuse).

Sources:
- Cloudflare API, DNS records schema, TXT `content` (as the generated SDKs carry it, e.g.
  cloudflare/cloudflare-typescript PR #1777, src/resources/dns/records.ts): "The content must consist of
  quoted 'character strings' (RFC 1035), each with a length of up to 255 bytes. Strings exceeding this
  allowed maximum length are automatically split." So `content` is master-file form, and a longer
  quoted string is split, not refused. Content without quotes is read as one string (split likewise).
- pulumi-cloudflare 6.x `DnsRecord`: `ttl` "Setting to 1 means 'automatic'" (Cloudflare's automatic TTL
  is 300 s); MX carries `priority` beside `content` (the exchange host). There is no RRset: one resource
  per value; DNS answers the values under one name and type as one RRset (RFC 2181 §5).
- `proxied: true` A records answer with Cloudflare's own anycast addresses, which the lab cannot know:
  refused here (the program never proxies mail hosts: SMTP cannot go through Cloudflare's proxy).
"""

from __future__ import annotations

from mailinfra.deployment.program import Deployment, Resource
from mailinfra.deployment.published import (
    MAX_STRING_BYTES,
    PublishedRRset,
    PublishError,
    absolute_name,
    check_ipv4,
    merge_rrsets,
    txt_presentation,
)

RECORD = "cloudflare:index/dnsRecord:DnsRecord"
PROVIDER = "cloudflare"
AUTOMATIC_TTL_SECONDS = 300


def parse_txt_content(content: str) -> tuple[bytes, ...]:
    """The character-strings Cloudflare publishes for TXT `content`, or ValueError.

    Quoted strings per RFC 1035 §5.1 (`\\"`, `\\\\`, decimal `\\DDD`); each longer than 255 bytes is
    split into 255-byte pieces (Cloudflare's documented automatic split). Text that does not start with
    a quote is one string.
    """
    text = content.strip()
    if not text.startswith('"'):
        return _split(text.encode())
    strings: list[bytes] = []
    index = 0
    while index < len(text):
        if text[index] in " \t":
            index += 1
            continue
        if text[index] != '"':
            raise ValueError(f"text outside the quoted character-strings at offset {index}")
        index += 1
        out = bytearray()
        while True:
            if index >= len(text):
                raise ValueError("a quoted character-string is not closed")
            char = text[index]
            if char == '"':
                index += 1
                break
            if char == "\\" and text[index + 1:index + 4].isdigit():
                out.append(int(text[index + 1:index + 4]))
                index += 4
            elif char == "\\" and index + 1 < len(text):
                out += text[index + 1].encode()
                index += 2
            else:
                out += char.encode()
                index += 1
        strings += _split(bytes(out))
    return tuple(strings)


def published_rrset(resource: Resource) -> PublishedRRset:
    inputs = resource.inputs
    rtype = str(inputs["type"]).upper()
    name = str(inputs["name"]).rstrip(".").lower()
    content = str(inputs.get("content") or "")
    ttl = int(inputs.get("ttl") or 1)
    if inputs.get("proxied"):
        raise PublishError(RECORD, resource.name, "proxied records answer with Cloudflare's addresses (not emulated)")
    try:
        if rtype == "TXT":
            rdata = txt_presentation(parse_txt_content(content))
        elif rtype == "A":
            rdata = check_ipv4(content)
        elif rtype == "MX":
            if inputs.get("priority") is None:
                raise ValueError("an MX record needs priority")
            rdata = f"{int(inputs['priority'])} {absolute_name(content)}"
        elif rtype in ("CNAME", "NS", "PTR"):
            rdata = absolute_name(content)
        else:
            rdata = content
    except ValueError as error:
        raise PublishError(RECORD, resource.name, f"Cloudflare would refuse content {content!r}: {error}") from None
    return PublishedRRset(name, rtype, AUTOMATIC_TTL_SECONDS if ttl == 1 else ttl, (rdata,), (resource.name,),
                          PROVIDER)


def published_rrsets(deployment: Deployment) -> list[PublishedRRset]:
    """Every Cloudflare record resource, merged into RRsets by (name, type)."""
    return merge_rrsets(published_rrset(r) for r in deployment.of_type(RECORD))


def _split(data: bytes) -> tuple[bytes, ...]:
    if not data:
        return (b"",)
    return tuple(data[i:i + MAX_STRING_BYTES] for i in range(0, len(data), MAX_STRING_BYTES))
