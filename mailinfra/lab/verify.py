"""What a receiving provider checks: SPF (pyspf), DKIM (dkimpy), DMARC alignment, FCrDNS of the client.

Runs inside the lab namespace, so every lookup goes to the lab's Knot through dnspython, and through
one TTL-honouring cache per process (mailinfra/lab/resolver.py), as a real receiver's resolver caches.
"""

from __future__ import annotations

import email.utils
import functools
from dataclasses import asdict, dataclass, field
from email import message_from_bytes
from email.message import Message
from typing import Any

import dkim
import dns.exception
import dns.rdatatype
import dns.resolver
import dns.reversename
import spf
from authheaders import dmarc_lookup

from mailinfra.lab.resolver import shared_resolver

# authheaders parses the whole Public Suffix List (~10k rules, IDNA-encoding each) on every call:
# ~230 ms, five times per message. The list is static for the process's life, so each domain's
# organizational domain (RFC 7489 §3.2) is computed once.
get_org_domain = functools.lru_cache(maxsize=4096)(dmarc_lookup.get_org_domain)

_DNS_ERRORS = (dns.exception.DNSException, OSError)


@dataclass(frozen=True, slots=True)
class DkimResult:
    domain: str
    selector: str
    algorithm: str
    result: str  # pass | fail | temperror (with reason)
    reason: str = ""
    # The h= tag, lower-cased, in order (RFC 6376 §3.5): what the signature covers. A name listed once more
    # than the message has it is oversigned (§8.15). RFC 8058 §4: one-click counts only when a valid
    # signature lists both List-Unsubscribe and List-Unsubscribe-Post.
    signed_headers: tuple[str, ...] = ()
    canonicalization: str = ""  # header/body, c= with RFC 6376 §3.5's defaults filled in


    def covers(self, header: str) -> bool:
        return header.lower() in self.signed_headers


@dataclass(frozen=True, slots=True)
class Verdict:
    source_ip: str
    helo: str
    mail_from: str
    from_domain: str
    spf: str
    spf_domain: str
    dkim: tuple[DkimResult, ...]
    dmarc: str
    dmarc_policy: str
    ptr_names: tuple[str, ...]
    helo_matches_ptr: bool
    fcrdns: bool
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def dkim_pass(self) -> bool:
        return any(d.result == "pass" for d in self.dkim)

    @property
    def one_click_signed(self) -> bool:
        """RFC 8058 §3.1/§4: the message has List-Unsubscribe and List-Unsubscribe-Post, and a valid DKIM
        signature covers both (a receiver offers one-click unsubscribe only then)."""
        present = all(self.headers.get(h) for h in ("List-Unsubscribe", "List-Unsubscribe-Post"))
        return present and any(d.result == "pass" and d.covers("list-unsubscribe")
                               and d.covers("list-unsubscribe-post") for d in self.dkim)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["dkim_pass"] = self.dkim_pass
        data["one_click_signed"] = self.one_click_signed
        return data


def verify_message(raw: bytes, source_ip: str, helo: str, mail_from: str) -> Verdict:
    message = message_from_bytes(raw)
    from_domain = _domain_of(email.utils.parseaddr(str(message.get("From", "")))[1])
    spf_domain = _domain_of(mail_from) or helo
    spf_result = _check_spf(source_ip, mail_from or f"postmaster@{helo}", helo)
    signatures = _check_dkim(raw, message)
    dmarc, policy = _check_dmarc(from_domain, spf_result, spf_domain, signatures)
    ptr_names = _reverse(source_ip)
    return Verdict(
        source_ip=source_ip, helo=helo, mail_from=mail_from, from_domain=from_domain,
        spf=spf_result, spf_domain=spf_domain, dkim=signatures, dmarc=dmarc, dmarc_policy=policy,
        ptr_names=ptr_names,
        helo_matches_ptr=helo.lower().rstrip(".") in ptr_names,
        fcrdns=any(source_ip in _addresses(name) for name in ptr_names),
        headers={name: str(message.get(name, "")) for name in
                 ("Message-ID", "X-Lab-Id", "X-Lab-Stream", "X-Lab-Tier", "List-Unsubscribe",
                  "List-Unsubscribe-Post")},
    )


def _check_spf(ip: str, mail_from: str, helo: str) -> str:
    # RFC 7208 §2.4: the MAIL FROM identity; the null return path falls back to the HELO identity.
    shared_resolver()  # pyspf queries dnspython's default resolver: make sure it has the cache first
    try:
        result, _explanation = spf.check2(i=ip, s=mail_from, h=helo)
    except Exception as exc:  # pyspf raises its own error types for malformed records
        return f"permerror ({exc.__class__.__name__})"
    return str(result)


def _check_dkim(raw: bytes, message: Message) -> tuple[DkimResult, ...]:
    results = []
    verifier = dkim.DKIM(raw)
    for index, header in enumerate(message.get_all("DKIM-Signature") or []):
        tags = _tags(str(header))
        try:
            ok = verifier.verify(idx=index, dnsfunc=dkim_key_txt)
            result, reason = ("pass", "") if ok else ("fail", "signature did not verify")
        except dkim.DKIMException as exc:
            result, reason = ("temperror" if "dns" in str(exc).lower() else "fail"), str(exc)
        except Exception as exc:  # dkimpy raises NaClNotFoundError etc. outside its hierarchy
            result, reason = "temperror", f"{exc.__class__.__name__}: {exc}"
        results.append(DkimResult(domain=tags.get("d", "").lower(), selector=tags.get("s", ""),
                                  algorithm=tags.get("a", ""), result=result, reason=reason,
                                  signed_headers=signed_headers(tags.get("h", "")),
                                  canonicalization=_canonicalization(tags.get("c", ""))))
    return tuple(results)


def signed_headers(h_tag: str) -> tuple[str, ...]:
    """The header names of a DKIM-Signature h= tag (colon-separated, case-insensitive: RFC 6376 §3.5)."""
    return tuple(name.strip().lower() for name in h_tag.split(":") if name.strip())


def _canonicalization(c_tag: str) -> str:
    """RFC 6376 §3.5: c= absent means simple/simple; a header algorithm alone means a simple body."""
    header, _, body = (c_tag or "simple").lower().partition("/")
    return f"{header}/{body or 'simple'}"


def _check_dmarc(from_domain: str, spf_result: str, spf_domain: str,
                 signatures: tuple[DkimResult, ...]) -> tuple[str, str]:
    """RFC 7489 §3.1 / §6.6: pass when SPF or DKIM passes for an identifier aligned with From."""
    record = _dmarc_record(from_domain) if from_domain else None
    if record is None:
        return "none", ""
    tags = _tags(record)
    policy = tags.get("p", "none")
    strict_spf, strict_dkim = tags.get("aspf", "r") == "s", tags.get("adkim", "r") == "s"
    spf_aligned = spf_result == "pass" and _aligned(spf_domain, from_domain, strict_spf)
    dkim_aligned = any(s.result == "pass" and _aligned(s.domain, from_domain, strict_dkim) for s in signatures)
    return ("pass" if spf_aligned or dkim_aligned else "fail"), policy


def _dmarc_record(domain: str) -> str | None:
    # RFC 7489 §6.6.3: the From domain first, then its organizational domain.
    for name in dict.fromkeys([domain, get_org_domain(domain)]):
        for text in _txt(f"_dmarc.{name}"):
            if text.lower().startswith("v=dmarc1"):
                return text
    return None


def _aligned(identifier: str, from_domain: str, strict: bool) -> bool:
    a, b = identifier.lower().rstrip("."), from_domain.lower().rstrip(".")
    if strict:
        return a == b
    return bool(a) and get_org_domain(a) == get_org_domain(b)


def dkim_key_txt(name: bytes, timeout: int = 5) -> bytes | None:
    """dkimpy's `dnsfunc` through the shared cache, answering as dkimpy's own dnsplug.get_txt does:
    the first TXT record's strings joined, None when there is none (dkimpy: "missing public key")."""
    try:
        answer = shared_resolver().resolve(name.decode(), dns.rdatatype.TXT, lifetime=timeout,
                                           raise_on_no_answer=False)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoNameservers, UnicodeDecodeError):
        return None
    except (dns.exception.Timeout, dns.resolver.NoResolverConfiguration) as exc:
        # A key lookup that timed out is a temporary failure (RFC 6376 §6.1.2: TEMPFAIL), not a missing key.
        raise dkim.DnsTimeoutError(f"DNS {exc.__class__.__name__}: {exc}") from exc
    if answer.rrset is None:
        return None
    return b"".join(next(iter(answer.rrset)).strings)


def _tags(text: str) -> dict[str, str]:
    result = {}
    for part in text.split(";"):
        key, sep, value = part.partition("=")
        if sep:
            result[key.strip().lower()] = "".join(value.split())
    return result


def _domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower().strip("<> ") if "@" in address else ""


def _txt(name: str) -> list[str]:
    try:
        answer = shared_resolver().resolve(name, "TXT")
    except _DNS_ERRORS:
        return []
    return [b"".join(r.strings).decode() for r in answer]


def _reverse(ip: str) -> tuple[str, ...]:
    try:
        answer = shared_resolver().resolve(dns.reversename.from_address(ip), "PTR")
    except _DNS_ERRORS:
        return ()
    return tuple(str(r).lower().rstrip(".") for r in answer)


def _addresses(name: str) -> set[str]:
    try:
        return {str(r) for r in shared_resolver().resolve(name, "A")}
    except _DNS_ERRORS:
        return set()
