"""DNS rules on the TXT records the program publishes (Route53 or Cloudflare)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .dns import SPF_MAX_LOOKUPS, count_spf_lookups, first_tag, parse_tags, public_key_bits, record_texts

DMARC_POLICIES = ("none", "quarantine", "reject")
STRONG_DMARC = ("quarantine", "reject")
MIN_DKIM_RSA_BITS = 2048


def _txt(resource_type: str, props: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for name, text in record_texts(resource_type, props, "TXT"):
        if text is not None:  # not known yet: judged at `pulumi up`
            yield name, text


def _dmarc(resource_type: str, props: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for name, text in _txt(resource_type, props):
        # Cloudflare names may be relative to the zone ("_dmarc"), Route53 ones are absolute.
        if name.split(".")[0] == "_dmarc":
            yield name, text


def check_dmarc_record(resource_type: str, props: dict[str, Any]) -> Iterator[str]:
    """A _dmarc record receivers can use. RFC 7489 §6.4: v=DMARC1 first, p= required and one of
    none/quarantine/reject; §6.6.3: a record that is not, is discarded, so the domain has no DMARC at
    all, which Google's and Yahoo's bulk-sender rules (2024) refuse."""
    for name, text in _dmarc(resource_type, props):
        tag, value = first_tag(text)
        if (tag, value.upper()) != ("v", "DMARC1"):
            yield f"{name}: the record must start with v=DMARC1 (RFC 7489 §6.4), got {text[:40]!r}"
            continue
        tags = parse_tags(text)
        if tags.get("p", "").lower() not in DMARC_POLICIES:
            yield f"{name}: DMARC p={tags.get('p') or '(missing)'}; p= is required, one of none, quarantine, reject"
        if "sp" in tags and tags["sp"].lower() not in DMARC_POLICIES:
            yield f"{name}: DMARC sp={tags['sp']}; expected none, quarantine or reject"


def check_dmarc_strength(resource_type: str, props: dict[str, Any]) -> Iterator[str]:
    """The project's audit asks for quarantine or reject with aggregate reports; p=none is the first step
    of a staged rollout (monitor with rua, then enforce) and is all Google/Yahoo require of bulk senders."""
    for name, text in _dmarc(resource_type, props):
        if first_tag(text)[1].upper() != "DMARC1":
            continue  # malformed: the dmarc-record rule reports it
        tags = {k: v.lower() for k, v in parse_tags(text).items()}
        policy = tags.get("p", "")
        if policy in DMARC_POLICIES and policy not in STRONG_DMARC:
            yield f"{name}: DMARC p={policy} (monitoring only); move to quarantine or reject once reports are clean"
        subdomains = tags.get("sp", policy)
        if "sp" in tags and subdomains in DMARC_POLICIES and subdomains not in STRONG_DMARC:
            yield f"{name}: DMARC sp={subdomains}: subdomains are not protected; use quarantine or reject"
        if not tags.get("rua"):
            yield f"{name}: DMARC has no rua, so nobody receives aggregate reports"


def check_spf_lookups(resource_type: str, props: dict[str, Any]) -> Iterator[str]:
    """SPF within the RFC 7208 §4.6.4 limit of 10 DNS-querying terms (the 11th is a permerror)."""
    for name, text in _txt(resource_type, props):
        if text.lower().split()[:1] == ["v=spf1"] and count_spf_lookups(text) > SPF_MAX_LOOKUPS:
            yield (f"{name}: SPF has {count_spf_lookups(text)} DNS-querying terms, over {SPF_MAX_LOOKUPS} "
                   "(receivers return permerror)")


def check_dkim_key_size(resource_type: str, props: dict[str, Any]) -> Iterator[str]:
    """RSA DKIM keys of at least 2048 bits (project rule; RFC 8301 §3.2 forbids < 1024)."""
    for name, text in _txt(resource_type, props):
        if first_tag(text) != ("v", "DKIM1") and "_domainkey" not in name.split("."):
            continue
        tags = parse_tags(text)
        key = "".join(tags.get("p", "").split())
        if tags.get("k", "rsa").lower() != "rsa" or not key:
            continue  # Ed25519 is fixed-size; an empty p= is a deliberate revocation (RFC 6376 §3.6.1)
        try:
            bits = public_key_bits(key)
        except ValueError as error:
            yield f"{name}: DKIM p= is not a public key ({error})"
            continue
        if bits < MIN_DKIM_RSA_BITS:
            yield f"{name}: DKIM RSA key is {bits} bits; publish at least {MIN_DKIM_RSA_BITS}"
