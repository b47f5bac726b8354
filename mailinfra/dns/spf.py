"""SPF (RFC 7208): build the record, count its DNS-querying terms, parse it for comparison, check it."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

# RFC 7208 §4.6.4: at most 10 terms that cause DNS queries; the 11th is a permerror at the receiver.
MAX_LOOKUPS = 10
# RFC 7208 §3.4: keep the whole answer within a 512-byte UDP reply; 450 bytes of record leaves room
# for the rest of the message.
MAX_RECORD_BYTES = 450
VERSION = "v=spf1"

# RFC 7208 §4.6.4: the mechanisms that query DNS, plus the `redirect` modifier. ip4, ip6 and all do
# not, and neither does `exp` (it is only fetched after a fail, outside the limit).
_LOOKUP_MECHANISMS = frozenset({"include", "a", "mx", "ptr", "exists"})
_LOOKUP_MODIFIERS = frozenset({"redirect"})
_MECHANISMS = frozenset({"all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists"})
_QUALIFIERS = frozenset({"+", "-", "~", "?"})


@dataclass(frozen=True, slots=True, order=True)
class SpfTerm:
    """One term, normalized so two spellings of the same term compare equal.

    `kind` is `mechanism` or `modifier` (RFC 7208 §4.6.1); `qualifier` is always explicit (`+` when
    omitted, §4.6.2); `name` is lower-case (names are case-insensitive); `value` is what follows `:`,
    `/` or `=` (IP networks normalized, domains lower-cased unless they hold macros).
    """

    kind: str
    name: str
    value: str = ""
    qualifier: str = "+"

    def render(self) -> str:
        if self.kind == "modifier":
            return f"{self.name}={self.value}"
        qualifier = "" if self.qualifier == "+" else self.qualifier
        if not self.value:
            return f"{qualifier}{self.name}"
        separator = "" if self.value.startswith("/") else ":"
        return f"{qualifier}{self.name}{separator}{self.value}"


@dataclass(frozen=True, slots=True)
class SpfRecord:
    """A parsed SPF record whose equality is its meaning.

    `terms` is held in a canonical order (mechanisms, then `all`, then modifiers; each group sorted),
    so two records that differ only in term order, case or whitespace compare equal. `text` is the
    record as received and takes no part in comparison.
    """

    version: str
    terms: tuple[SpfTerm, ...]
    text: str = field(default="", compare=False)

    def render(self) -> str:
        """The canonical text of the record."""
        return " ".join([self.version, *(t.render() for t in self.terms)])


def build_spf(
    ipv4: Iterable[str],
    includes: Iterable[str] = (),
    mechanisms: Iterable[str] = (),
    all_qualifier: str = "-",
) -> str:
    """Build `v=spf1 ip4:... <mechanisms> include:... <q>all`.

    IPs are sorted numerically and deduplicated; a /32 is written as the bare address. ip4 terms come
    first because they cost no lookup (RFC 7208 §4.6.4) and match the project's own pools fastest.
    """
    if all_qualifier not in _QUALIFIERS:
        raise ValueError(f"all_qualifier must be one of + - ~ ?, got {all_qualifier!r}")
    networks = sorted({ipaddress.IPv4Network(ip.strip(), strict=False) for ip in ipv4})
    terms = [VERSION]
    terms += [f"ip4:{_render_network(net)}" for net in networks]
    terms += _unique(m.strip() for m in mechanisms)
    terms += [f"include:{domain}" for domain in _unique(i.strip().rstrip(".") for i in includes)]
    terms.append(f"{all_qualifier}all")
    return " ".join(terms)


def count_lookup_terms(record: str) -> int:
    """Count the terms that make a receiver query DNS (RFC 7208 §4.6.4).

    Only this record's own terms are counted; the terms inside an `include`d record also count at
    the receiver, but resolving them needs the network and is drift's job.
    """
    count = 0
    for term in parse_spf(record).terms:
        lookup_names = _LOOKUP_MECHANISMS if term.kind == "mechanism" else _LOOKUP_MODIFIERS
        if term.kind != "unknown" and term.name in lookup_names:
            count += 1
    return count


def parse_spf(record: str) -> SpfRecord:
    """Parse an SPF record into normalized terms without raising, whatever the input.

    `version` is `v=spf1` when the record starts with it (case-insensitive, RFC 7208 §4.5), else "".
    Tokens that are neither a known mechanism nor a `name=value` modifier are kept as kind `unknown`.
    """
    tokens = record.split()
    version = ""
    if tokens and tokens[0].lower() == VERSION:
        version = VERSION
        tokens = tokens[1:]
    terms = [_parse_term(token) for token in tokens]
    return SpfRecord(version=version, terms=tuple(sorted(terms, key=_canonical_key)), text=record)


def check_spf(record: str) -> list[str]:
    """Return the problems a receiver would have with `record` (empty when it is fine)."""
    problems: list[str] = []
    tokens = record.split()
    if not tokens or tokens[0].lower() != VERSION:
        # RFC 7208 §4.5: a record that does not begin with the version section is not SPF at all.
        problems.append("does not start with v=spf1")
    else:
        tokens = tokens[1:]
    lookups = count_lookup_terms(record)
    if lookups > MAX_LOOKUPS:
        problems.append(f"{lookups} DNS-querying terms, over the limit of {MAX_LOOKUPS} (RFC 7208 §4.6.4)")
    terms = [_parse_term(token) for token in tokens]
    names = [t.name for t in terms if t.kind == "mechanism"]
    has_redirect = any(t.kind == "modifier" and t.name == "redirect" for t in terms)
    if "all" not in names and not has_redirect:
        problems.append("no terminal all or redirect= (RFC 7208 §4.7: the result would be neutral)")
    if "all" in names and names[-1] != "all":
        problems.append("mechanisms after all are never evaluated (RFC 7208 §5.1)")
    if any(t.kind == "mechanism" and t.name == "all" and t.qualifier == "+" for t in terms):
        problems.append("+all authorizes every host on the internet")
    for modifier in ("redirect", "exp"):
        if sum(1 for t in terms if t.kind == "modifier" and t.name == modifier) > 1:
            problems.append(f"{modifier}= appears more than once (RFC 7208 §6)")
    problems += [f"unknown term {t.value!r}" for t in terms if t.kind == "unknown"]
    size = len(record.encode())
    if size > MAX_RECORD_BYTES:
        problems.append(f"{size} bytes, over {MAX_RECORD_BYTES} (RFC 7208 §3.4: answer may not fit in UDP)")
    return problems


def _parse_term(token: str) -> SpfTerm:
    qualifier = "+"
    body = token
    if body[:1] in _QUALIFIERS:
        qualifier, body = body[0], body[1:]
    cut = min((i for i in (body.find(":"), body.find("/"), body.find("=")) if i >= 0), default=len(body))
    name = body[:cut].lower()
    rest = body[cut:]
    if rest.startswith("=") and qualifier == "+" and token[:1] != "+" and name not in _MECHANISMS:
        # RFC 7208 §4.6.1: modifier = name "=" macro-string; modifiers take no qualifier.
        return SpfTerm(kind="modifier", name=name, value=_normalize_domain(rest[1:]))
    if name not in _MECHANISMS or rest.startswith("="):
        return SpfTerm(kind="unknown", name="", value=token)
    value = rest[1:] if rest.startswith(":") else rest
    if name in ("ip4", "ip6"):
        value = _normalize_network(value)
    elif value:
        domain, slash, cidr = value.partition("/")
        value = _normalize_domain(domain) + slash + cidr
    return SpfTerm(kind="mechanism", name=name, value=value, qualifier=qualifier)


def _canonical_key(term: SpfTerm) -> tuple[int, SpfTerm]:
    group = {"mechanism": 0, "unknown": 2, "modifier": 3}[term.kind]
    if term.kind == "mechanism" and term.name == "all":
        group = 1
    return (group, term)


def _normalize_network(value: str) -> str:
    try:
        network = ipaddress.ip_network(value, strict=False)
    except ValueError:
        return value
    return _render_network(network)


def _render_network(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> str:
    if network.prefixlen == network.max_prefixlen:
        return str(network.network_address)
    return str(network)


def _normalize_domain(domain: str) -> str:
    # Domain names compare case-insensitively (RFC 4343), but macro letters do not: %{D} URL-escapes
    # where %{d} does not (RFC 7208 §7.3), so a domain-spec with macros is kept as written.
    if "%" in domain:
        return domain
    return domain.lower().rstrip(".")


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(item for item in items if item))
