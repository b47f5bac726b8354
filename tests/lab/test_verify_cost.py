"""The simulated provider's verifier must stay cheap: it answers DATA only after verifying, so its cost
per message bounds the lab's throughput (docs/BENCHMARKS.md, Lab). No lab needed: pure functions."""

from __future__ import annotations

from typing import Any

import pytest
from authheaders import dmarc_lookup

from mailinfra.lab import verify


def test_relaxed_alignment_uses_the_organizational_domain() -> None:
    # RFC 7489 §3.1.1: relaxed alignment compares organizational domains, strict the exact names.
    assert verify._aligned("mail.tx.example.co.uk", "news.example.co.uk", strict=False)
    assert not verify._aligned("example.co.uk", "other.co.uk", strict=False)
    assert not verify._aligned("mail.example.com", "example.com", strict=True)
    assert verify._aligned("Example.COM.", "example.com", strict=True)


def test_public_suffix_list_is_parsed_once_per_domain(monkeypatch: pytest.MonkeyPatch) -> None:
    # authheaders re-reads and re-parses the whole list on every get_org_domain call (~230 ms);
    # five lookups per message made the provider, not Postfix, the lab's bottleneck.
    parses: list[str] = []
    original = dmarc_lookup.get_org_domain_from_suffix_list

    def counting(location: Any, domain: str) -> str:
        parses.append(domain)
        return str(original(location, domain))

    monkeypatch.setattr(dmarc_lookup, "get_org_domain_from_suffix_list", counting)
    verify.get_org_domain.cache_clear()
    for _ in range(20):
        assert verify._aligned("bounce.tx.cachetest.example", "tx.cachetest.example", strict=False)
    assert sorted(set(parses)) == ["bounce.tx.cachetest.example", "tx.cachetest.example"]
    assert len(parses) == 2
