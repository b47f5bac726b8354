"""The lab's receivers resolve as real ones do: through one caching resolver per process.

A real receiving MTA asks a caching recursive resolver, which keeps each answer for its TTL
(RFC 1035 §3.2.1, RFC 2181 §8) and each negative answer for the zone's negative TTL (RFC 2308), so
a provider fetches a sender's DKIM key or SPF record once per TTL, not once per message. The lab's
providers (SPF, DKIM, DMARC, FCrDNS) and routes (MX) do the same with dnspython's LRUCache, which
drops each answer when its TTL runs out.

The resolver is dnspython's default resolver (the namespace's resolv.conf, i.e. the lab's Knot) with
the cache installed: pyspf calls the module-level `dns.resolver.query`, which uses the default
resolver, so its lookups share the cache with the verifier's own and dkimpy's (verify.dkim_key_txt).
Not for callers that must see a change at once: drift and the DKIM key checks resolve through their
own resolver (mailinfra/drift/resolve.py), never this one.
"""

from __future__ import annotations

import functools

import dns.resolver

# Answers (name, type) kept at most; a lab has a few hundred names, the bound keeps a long run flat.
CACHE_ENTRIES = 10_000


@functools.cache
def shared_resolver() -> dns.resolver.Resolver:
    """The process's default dnspython resolver, with a TTL-honouring cache installed on first call."""
    resolver = dns.resolver.get_default_resolver()
    resolver.cache = dns.resolver.LRUCache(max_size=CACHE_ENTRIES)
    return resolver
