"""DMARC (RFC 7489): build the `_dmarc` record, parse one, name the external-report authorization."""

from __future__ import annotations

from collections.abc import Iterable

POLICIES = ("none", "quarantine", "reject")
ALIGNMENTS = ("r", "s")
# RFC 7489 §6.3: fo is a colon-separated list of these options.
FAILURE_OPTIONS = ("0", "1", "d", "s")


def build_dmarc(
    policy: str,
    subdomain_policy: str | None = None,
    *,
    adkim: str = "r",
    aspf: str = "r",
    rua: Iterable[str] = (),
    ruf: Iterable[str] = (),
    fo: str | None = None,
    pct: int | None = None,
) -> str:
    """Build `v=DMARC1; p=...; sp=...; adkim=...; aspf=...; pct=...; rua=...; ruf=...; fo=...`.

    RFC 7489 §6.4 requires `v` first and `p` right after it; the remaining tags follow the order of
    the §6.3 table. Optional tags are left out when not given; adkim/aspf are always written so the
    alignment mode is visible in review. Report addresses without a scheme get `mailto:`.
    """
    _require(policy, POLICIES, "policy")
    if subdomain_policy is not None:
        _require(subdomain_policy, POLICIES, "subdomain_policy")
    _require(adkim, ALIGNMENTS, "adkim")
    _require(aspf, ALIGNMENTS, "aspf")
    tags = [("v", "DMARC1"), ("p", policy)]
    if subdomain_policy is not None:
        tags.append(("sp", subdomain_policy))
    tags += [("adkim", adkim), ("aspf", aspf)]
    if pct is not None:
        if not 0 <= pct <= 100:
            raise ValueError(f"pct must be 0..100, got {pct}")
        tags.append(("pct", str(pct)))
    for tag, uris in (("rua", rua), ("ruf", ruf)):
        rendered = _render_uris(uris)
        if rendered:
            tags.append((tag, rendered))
    if fo is not None:
        options = fo.split(":")
        if not all(option in FAILURE_OPTIONS for option in options):
            raise ValueError(f"fo must be a ':'-separated list of 0, 1, d, s; got {fo!r}")
        tags.append(("fo", fo))
    return "; ".join(f"{tag}={value}" for tag, value in tags)


def parse_dmarc(record: str) -> dict[str, str]:
    """Parse `tag=value` pairs; tag names are lower-cased and whitespace around them ignored.

    RFC 7489 §6.4: tag-list = tag *( ";" tag ) with optional whitespace; parts with no `=` and empty
    parts (a trailing `;`) are skipped rather than raised, because drift reads records written by
    others. A repeated tag keeps its first value.
    """
    tags: dict[str, str] = {}
    for part in record.split(";"):
        name, equals, value = part.partition("=")
        name = name.strip().lower()
        if equals and name:
            tags.setdefault(name, value.strip())
    return tags


def report_authorization_name(domain: str, report_uri: str, org_domain: str | None = None) -> str | None:
    """Name the TXT record the report receiver must publish, or None when none is needed.

    RFC 7489 §7.1: when a `mailto:` rua/ruf address lies outside the organizational domain of the
    policy's domain, the receiver's domain must publish `<domain>._report._dmarc.<report-domain>`
    (TXT `v=DMARC1`). `org_domain` defaults to `domain`; the caller knows its organizational domain,
    so no public suffix list is consulted here. Non-mailto URIs are not defined by RFC 7489 → None.
    """
    domain = _normalize(domain)
    org = _normalize(org_domain) if org_domain is not None else domain
    scheme, colon, address = report_uri.strip().partition(":")
    if not colon or scheme.lower() != "mailto":
        return None
    # RFC 7489 §6.2: a URI may end in `!<size>` (a report size limit), which is not part of the address.
    address = address.split("!", 1)[0]
    _, at, report_domain = address.rpartition("@")
    report_domain = _normalize(report_domain)
    if not at or not report_domain:
        return None
    if report_domain == org or report_domain.endswith("." + org):
        return None
    return f"{domain}._report._dmarc.{report_domain}"


def _render_uris(uris: Iterable[str]) -> str:
    rendered: list[str] = []
    for uri in uris:
        text = uri.strip()
        if ":" not in text.split("@", 1)[0]:
            text = f"mailto:{text}"
        # RFC 7489 §6.4: `,` and `;` separate URIs and tags, so inside a URI they must be %-encoded.
        text = text.replace(",", "%2C").replace(";", "%3B")
        if text not in rendered:
            rendered.append(text)
    return ",".join(rendered)


def _require(value: str, allowed: tuple[str, ...], name: str) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")


def _normalize(name: str) -> str:
    return name.strip().lower().rstrip(".")
