"""DKIM key drift: sign a test message with the key a host holds and verify it against the PUBLISHED record.

Comparing the TXT record with the plan says whether DNS matches the plan; it cannot say whether the
private key on the host still matches DNS (a key re-generated on the host, a record restored from an
old backup). Only a signature made with the held key and verified against the record the world sees
answers that, so dkimpy verifies with its `dnsfunc` hook fed by our resolver, asking the same
nameserver the DNS check asks (never the system resolver, whose cache may hold an older record).
The private key is read from the file and used in memory only; no result carries key material.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import dkim
import dns.rdatatype

from mailinfra.dns.dkim import dkim_record_name
from mailinfra.drift.model import DriftResult, Status
from mailinfra.drift.resolve import Answer, Resolver, Server
from mailinfra.errors import UsageError
from mailinfra.plan.model import DkimKeyPlan, Plan

_TEST_MESSAGE = (
    b"From: drift-check@{domain}\r\n"
    b"To: drift-check@{domain}\r\n"
    b"Subject: mailinfra DKIM key check\r\n"
    b"Message-ID: <dkim-check@{domain}>\r\n"
    b"\r\n"
    b"Signed with the key the host holds, verified against the published selector.\r\n"
)


@dataclass(frozen=True, slots=True)
class HeldKey:
    """A `--dkim-key DOMAIN:SELECTOR:PATH` argument: the private key a host holds for a selector."""

    domain: str  # the d= domain it signs for, or the org domain (then every signing domain is checked)
    selector: str
    path: Path


def parse_held_key(text: str) -> HeldKey:
    domain, sep1, rest = text.partition(":")
    selector, sep2, path = rest.partition(":")
    if not (sep1 and sep2 and domain and selector and path):
        raise UsageError(f"--dkim-key: received {text!r}, expected DOMAIN:SELECTOR:PATH (a private key file)")
    return HeldKey(domain.lower().rstrip("."), selector.lower(), Path(path))


def planned_targets(plan: Plan, held: HeldKey) -> tuple[DkimKeyPlan, list[str]]:
    """The planned key and the d= domains to check for one held key (one-line error when not planned)."""
    for key in plan.dkim_keys:
        if key.selector != held.selector:
            continue
        if held.domain == key.domain:
            return key, list(key.signing_domains)
        if held.domain in key.signing_domains:
            return key, [held.domain]
    planned = ", ".join(sorted({f"{d}:{k.selector}" for k in plan.dkim_keys for d in (k.domain, *k.signing_domains)}))
    raise UsageError(f"--dkim-key: received {held.domain}:{held.selector}, expected a planned DOMAIN:SELECTOR "
                     f"({planned})")


def read_private_key(held: HeldKey) -> bytes:
    try:
        data = held.path.read_bytes()
    except OSError as error:
        raise UsageError(f"--dkim-key {held.domain}:{held.selector}: cannot read {held.path} "
                         f"({error.strerror or error})") from None
    return data.strip()


def sign_and_verify(private_key: bytes, algorithm: str, domain: str, selector: str, published: str) -> bool | str:
    """True when a signature made with `private_key` verifies against `published`; a string says why not."""
    message = _TEST_MESSAGE.replace(b"{domain}", domain.encode())
    # RFC 8463: Ed25519 keys sign as ed25519-sha256; everything else we plan is RSA (RFC 6376 §3.3).
    signature_algorithm = b"ed25519-sha256" if algorithm.startswith("ed25519") else b"rsa-sha256"
    try:
        header = dkim.sign(message, selector.encode(), domain.encode(), private_key,
                           signature_algorithm=signature_algorithm, include_headers=[b"from", b"to", b"subject"])
    except (dkim.DKIMException, ValueError) as error:
        return f"cannot sign with the held key ({type(error).__name__}: {error})"

    def published_txt(name: bytes, timeout: int = 5) -> bytes:  # noqa: ARG001 - dkimpy's dnsfunc signature
        return published.encode()

    try:
        return bool(dkim.verify(header + message, dnsfunc=published_txt, minkey=1024))
    except dkim.DKIMException as error:
        return f"the published record does not verify ({type(error).__name__}: {error})"


async def check_dkim_keys(plan: Plan, held_keys: Sequence[HeldKey], servers: Mapping[str, Server | None],
                          resolver: Resolver) -> list[DriftResult]:
    """One result per (held key, d= domain): ok, changed (key mismatch), missing or unknown."""
    results = []
    for held in held_keys:
        key, domains = planned_targets(plan, held)
        private_key = read_private_key(held)
        for domain in domains:
            name = dkim_record_name(held.selector, domain)
            record = next((r for r in plan.records if r.name == name and r.type == "TXT"), None)
            zone = record.zone if record else _zone_of(plan, name)
            server = servers.get(zone) if zone else None
            where = f"dkim:{name}"
            expected = "a signature made with the held key verifies"
            if server is None:
                results.append(DriftResult("dkim", where, Status.UNKNOWN, expected, "", f"no nameserver for {name}"))
                continue
            answer = await resolver.query(server, name, dns.rdatatype.TXT)
            results.append(_judge(answer, private_key, key=key, domain=domain, server=server, where=where,
                                  expected=expected))
    return results


def _judge(answer: Answer, private_key: bytes, *, key: DkimKeyPlan, domain: str, server: Server, where: str,
           expected: str) -> DriftResult:
    if answer.status == "error":
        return DriftResult("dkim", where, Status.UNKNOWN, expected, "", answer.error)
    records = [v for v in answer.values if "p=" in v]
    if answer.status in ("nxdomain", "nodata") or not records:
        return DriftResult("dkim", where, Status.MISSING, expected, "no DKIM record",
                           f"{server} has no key record for selector {key.selector}: receivers fail every signature")
    if len(records) > 1:
        return DriftResult("dkim", where, Status.CHANGED, expected, f"{len(records)} key records",
                           "more than one DKIM record at the selector: verifiers may pick either (RFC 6376 §3.6.2.2)")
    verdict = sign_and_verify(private_key, key.algorithm, domain, key.selector, records[0])
    if verdict is True:
        return DriftResult("dkim", where, Status.OK, expected, "verifies", f"verified against {server}")
    reason = verdict if isinstance(verdict, str) else "the signature does not verify with the published key"
    return DriftResult("dkim", where, Status.CHANGED, expected, "key mismatch",
                       f"{reason}: the host's key and the record at {server} differ")


def _zone_of(plan: Plan, name: str) -> str | None:
    return max((z.name for z in plan.zones if not z.reverse and (name == z.name or name.endswith("." + z.name))),
               key=len, default=None)
