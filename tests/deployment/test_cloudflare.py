"""What Cloudflare publishes for a cloudflare.DnsRecord's TXT `content`.

Cloudflare API, DNS records schema (TXT `content`, as carried by cloudflare/cloudflare-typescript
PR #1777 src/resources/dns/records.ts): "The content must consist of quoted 'character strings'
(RFC 1035), each with a length of up to 255 bytes. Strings exceeding this allowed maximum length are
automatically split." pulumi-cloudflare DnsRecord `ttl`: "Setting to 1 means 'automatic'".
"""

from __future__ import annotations

from typing import Any

import pytest

from mailinfra.deployment import cloudflare
from mailinfra.deployment.program import Deployment, Resource
from mailinfra.deployment.published import PublishError, txt_strings
from mailinfra.dns.txt import cloudflare_txt_content, join_txt


def record(content: str, rtype: str = "TXT", name: str = "r1", **extra: Any) -> Resource:
    inputs = {"zoneId": "z", "name": "_dmarc.example.com", "type": rtype, "ttl": 1.0, "content": content, **extra}
    return Resource(type=cloudflare.RECORD, name=name, urn=f"urn:{name}", parent=None, inputs=inputs)


def strings(content: str) -> tuple[bytes, ...]:
    (rdata,) = cloudflare.published_rrset(record(content)).rdatas
    return txt_strings(rdata)


def test_quoted_character_strings_are_published_as_given() -> None:
    assert strings('"v=DKIM1; k=rsa; " "p=abc"') == (b"v=DKIM1; k=rsa; ", b"p=abc")


def test_a_quoted_string_over_255_bytes_is_split_not_refused() -> None:
    """"Strings exceeding this allowed maximum length are automatically split"."""
    assert strings('"' + "a" * 300 + '"') == (b"a" * 255, b"a" * 45)


def test_our_content_publishes_the_logical_text() -> None:
    text = "v=DKIM1; k=rsa; p=" + "B" * 400
    published = strings(cloudflare_txt_content(text))
    assert join_txt(published) == text and all(len(s) <= 255 for s in published)


def test_text_outside_the_quotes_is_refused() -> None:
    with pytest.raises(PublishError, match="r1"):
        cloudflare.published_rrset(record('"a" b'))


def test_automatic_ttl_is_300_seconds_and_mx_takes_its_priority() -> None:
    mx = cloudflare.published_rrset(record("mta1.example.com", "MX", priority=10.0))
    assert (mx.ttl, mx.rdatas) == (300, ("10 mta1.example.com.",))


def test_one_record_per_value_is_one_rrset() -> None:
    """Cloudflare has no RRset; DNS answers every value of one name and type together (RFC 2181 §5)."""
    deployment = Deployment("dev", (record("mx1.example.com", "MX", "a", priority=10.0),
                                    record("mx2.example.com", "MX", "b", priority=20.0)))
    (rrset,) = cloudflare.published_rrsets(deployment)
    assert rrset.rdatas == ("10 mx1.example.com.", "20 mx2.example.com.") and rrset.sources == ("a", "b")
