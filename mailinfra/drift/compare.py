"""Compare a planned RRset with a live answer by meaning, not bytes (pure).

TXT strings are joined first (mailinfra.dns.txt.join_txt, done by the resolver); SPF compares as
parsed terms (order, case, whitespace and an explicit `+` do not matter), DMARC/DKIM/TLS-RPT/MTA-STS as
tag sets; names compare case-insensitively without the trailing dot.
"""

from __future__ import annotations

from collections.abc import Sequence

from mailinfra.dns.dmarc import parse_dmarc
from mailinfra.dns.records import DnsRecord, RecordType
from mailinfra.dns.spf import parse_spf
from mailinfra.drift.model import DriftResult, Status

# Tags whose values are lists (RFC 7489 §6.4 rua/ruf; RFC 8460 rua): order carries no meaning.
_LIST_TAGS = frozenset({"rua", "ruf"})
# Values that are case-sensitive: DKIM p= is base64.
_CASE_SENSITIVE_TAGS = frozenset({"p", "id"})


def txt_kind(text: str) -> str:
    """spf | dmarc | dkim | tlsrpt | sts | text: which protocol a TXT value speaks (its version tag)."""
    head = text.strip().split(";", 1)[0].split(" ", 1)[0].lower().replace(" ", "")
    return {"v=spf1": "spf", "v=dmarc1": "dmarc", "v=dkim1": "dkim", "v=tlsrptv1": "tlsrpt", "v=stsv1": "sts"}.get(
        head, "text"
    )


def canonical_txt(text: str) -> object:
    """A value whose equality is the record's meaning."""
    kind = txt_kind(text)
    if kind == "spf":
        return parse_spf(text)
    if kind == "text":
        return " ".join(text.split())
    return tuple(sorted(_tags(text).items(), key=lambda item: item[0]))


def _tags(text: str) -> dict[str, object]:
    tags = parse_dmarc(text)  # every v=... protocol here uses the same tag=value list (RFC 6376 §3.2)
    result: dict[str, object] = {}
    for tag, value in tags.items():
        if tag in _LIST_TAGS:
            result[tag] = frozenset(v.strip().lower() for v in value.split(",") if v.strip())
        elif tag in _CASE_SENSITIVE_TAGS:
            result[tag] = "".join(value.split())
        else:
            result[tag] = value.lower()
    return result


def normalize_value(rtype: RecordType, value: str) -> str:
    if rtype is RecordType.MX:
        preference, _, target = value.strip().partition(" ")
        return f"{int(preference)} {target.strip().lower().rstrip('.')}"
    if rtype in (RecordType.PTR, RecordType.CNAME, RecordType.NS):
        return value.strip().lower().rstrip(".")
    return value.strip()


def compare_record(record: DnsRecord, live: Sequence[str], server: str) -> DriftResult:
    """A planned RRset against the values a server returned (an empty sequence: no such RRset)."""
    if not live:
        return _result(record, Status.MISSING, [], f"{server} has no {record.type} record at {record.name}")
    if record.type is RecordType.TXT:
        if live == record.values or (len(live) == len(record.values) and sorted(live) == sorted(record.values)):
            # The same strings: equal meaning without parsing (canonical_txt is a function of the text,
            # so matching by meaning pairs every value with itself and nothing is left over).
            return _result(record, Status.OK, list(live), f"answered by {server}")
        status, actual, detail = _compare_txt(record, live)
        return _result(record, status, actual, detail or f"answered by {server}")
    found = {normalize_value(record.type, v) for v in live}
    planned = found if live == record.values else {normalize_value(record.type, v) for v in record.values}
    if found == planned:
        return _result(record, Status.OK, sorted(found), f"answered by {server}")
    if found > planned:
        return _result(record, Status.EXTRA, sorted(found), f"not planned: {', '.join(sorted(found - planned))}")
    return _result(record, Status.CHANGED, sorted(found), _describe_set_change(planned, found))


def _result(record: DnsRecord, status: Status, actual: Sequence[str], detail: str) -> DriftResult:
    return DriftResult("dns", record.key, status, " | ".join(record.values), " | ".join(actual), detail, record.purpose)


def _compare_txt(record: DnsRecord, live: Sequence[str]) -> tuple[Status, list[str], str]:
    kinds = {txt_kind(v) for v in record.values}
    # A TXT of another protocol at the same name (a site-verification token) is not ours to judge.
    relevant = [v for v in live if txt_kind(v) in kinds]
    if not relevant:
        return Status.MISSING, list(live), f"no {'/'.join(sorted(kinds)).upper()} value at {record.name}"
    unmatched = list(relevant)
    changes = []
    for planned in record.values:
        wanted = canonical_txt(planned)
        match = next((v for v in unmatched if canonical_txt(v) == wanted), None)
        if match is not None:
            unmatched.remove(match)
            continue
        same_kind = [v for v in unmatched if txt_kind(v) == txt_kind(planned)]
        if same_kind:
            unmatched.remove(same_kind[0])
            changes.append(describe_txt_change(planned, same_kind[0]))
        else:
            changes.append(f"missing {planned!r}")
    if changes:
        return Status.CHANGED, relevant, "; ".join(changes)
    if unmatched:
        # Two SPF records at one name is a permerror (RFC 7208 §3.2), so "extra" is real drift.
        return Status.EXTRA, relevant, f"not planned: {' | '.join(unmatched)}"
    return Status.OK, relevant, ""


def describe_txt_change(planned: str, live: str) -> str:
    """What changed, in the protocol's own terms: SPF terms added/removed, DMARC tags old -> new."""
    kind = txt_kind(planned)
    if kind == "spf":
        old, new = set(parse_spf(planned).terms), set(parse_spf(live).terms)
        parts = [f"-{t.render()}" for t in sorted(old - new)] + [f"+{t.render()}" for t in sorted(new - old)]
        return "SPF " + " ".join(parts)
    if kind == "text":
        return f"{planned!r} -> {live!r}"
    old_tags, new_tags = _tags(planned), _tags(live)
    raw_old, raw_new = parse_dmarc(planned), parse_dmarc(live)
    parts = []
    for tag in sorted(set(old_tags) | set(new_tags)):
        if old_tags.get(tag) != new_tags.get(tag):
            parts.append(f"{tag}: {raw_old.get(tag, '(none)')} -> {raw_new.get(tag, '(none)')}")
    return f"{kind.upper()} " + "; ".join(parts)


def _describe_set_change(planned: set[str], found: set[str]) -> str:
    removed, added = sorted(planned - found), sorted(found - planned)
    return ", ".join([f"-{v}" for v in removed] + [f"+{v}" for v in added])
