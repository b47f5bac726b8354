"""Every validation rule of the stack file rejects with one exact line: file:line: key: received X, expected Y."""

from __future__ import annotations

import base64
import copy
import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailinfra.errors import ConfigErrors, MailinfraError, UsageError
from mailinfra.model.load import STACKS_DIR, load_stack

DEV = yaml.safe_load((STACKS_DIR / "Pulumi.dev.yaml").read_text())
FILE = "Pulumi.t.yaml"
NS = "mailinfra:"

Mutation = Callable[[dict[str, Any]], None]


# ----------------------------------------------------------------- building bad stacks from dev


def put(*path: Any, value: Any) -> Mutation:
    """Set config[path] = value (the first key is written without its `mailinfra:` prefix)."""
    def mutate(config: dict[str, Any]) -> None:
        parent, key = _parent(config, path)
        parent[key] = value
    return mutate


def drop(*path: Any) -> Mutation:
    def mutate(config: dict[str, Any]) -> None:
        parent, key = _parent(config, path)
        del parent[key]
    return mutate


def rename(*path: Any, to: str) -> Mutation:
    def mutate(config: dict[str, Any]) -> None:
        parent, key = _parent(config, path)
        parent[NS + to if len(path) == 1 else to] = parent.pop(key)
    return mutate


def both(*mutations: Mutation) -> Mutation:
    def mutate(config: dict[str, Any]) -> None:
        for mutation in mutations:
            mutation(config)
    return mutate


def _parent(config: dict[str, Any], path: tuple[Any, ...]) -> tuple[Any, Any]:
    full = (NS + path[0], *path[1:])
    node: Any = config
    for part in full[:-1]:
        node = node[part]
    return node, full[-1]


def dev_text(mutation: Mutation | None = None) -> str:
    """dev's YAML with one mutation applied to its `config:`, dumped back to text."""
    stack = copy.deepcopy(DEV)
    if mutation is not None:
        mutation(stack["config"])
    return yaml.safe_dump(stack, sort_keys=False, width=1000)


def line_of(text: str, *anchors: str) -> int:
    """The 1-based line of the last anchor, each anchor searched from the previous one's line.

    The first anchor must be on exactly one line; later ones take the first match after it, like
    walking a key path down the file: line_of(text, "mailinfra:pools:", "bulk:", "ips:").
    """
    lines = text.splitlines()
    first = [n for n, line in enumerate(lines) if anchors[0] in line]
    assert len(first) == 1, f"anchor {anchors[0]!r} is on lines {[n + 1 for n in first]}"
    at = first[0]
    for anchor in anchors[1:]:
        at = next(n for n in range(at + 1, len(lines)) if anchor in lines[n])
    return at + 1


def rsa_1024_spki() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Work in tmp_path so messages name the file as a user passing `Pulumi.t.yaml` sees it."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def load_errors(text: str) -> list[str]:
    Path(FILE).write_text(text)
    with pytest.raises(ConfigErrors) as caught:
        load_stack(FILE)
    return str(caught.value).splitlines()


# ----------------------------------------------------------------- the table


@dataclass(frozen=True)
class Case:
    id: str
    text: str
    anchor: tuple[str, ...]  # line_of() anchors: the line the message must point at
    message: str  # everything after "Pulumi.t.yaml:<line>: "


def _cases() -> Iterator[Case]:
    def case(case_id: str, mutation: Mutation, anchor: str | tuple[str, ...], message: str) -> Case:
        return Case(case_id, dev_text(mutation), anchor if isinstance(anchor, tuple) else (anchor,), message)

    source = (STACKS_DIR / "Pulumi.dev.yaml").read_text()
    unclosed = source.replace("      hosts: [mta1]\n", "      hosts: [mta1\n", 1)
    opened = line_of(unclosed, "mailinfra:pools:", "hosts: [mta1")
    yield Case("yaml-syntax", unclosed, ("mailinfra:pools:", "hosts: [mta1", "warmup:"),
               f"received YAML that does not parse: a `[` list opened on line {opened} is not closed with `]` "
               "(or lacks a comma) (YAML: expected ',' or ']', but got ':'), expected well-formed YAML")
    yield Case("duplicate-key", source.replace("  mailinfra:environment: dev\n",
                                               "  mailinfra:environment: dev\n  mailinfra:environment: dev2\n"),
               ("dev2",), "mailinfra:environment: received a second definition of this key, "
               "expected each key once per mapping")
    # --- shape: unknown keys, types, names, addresses
    yield case("unknown-key-did-you-mean", rename("hosts", "mta1", "instance_type", to="instanse_type"),
               "instanse_type", "mailinfra:hosts.mta1.instanse_type: received unknown key 'instanse_type', "
               "expected a known key (did you mean 'instance_type'?): mta, instance_type, availability_zone, "
               "subnet_id, injection_cidrs, fqdn, tls, address_salt, bootstrap")
    yield case("unknown-top-level-key", rename("streams", to="stream"), "mailinfra:stream:",
               "mailinfra:stream: received unknown key 'stream', expected a known key (did you mean 'streams'?): "
               "environment, domains, streams, pools, hosts, routes, dns, bounces, warmup_schedules, isolations, "
               "volume, monitoring")
    yield case("unknown-key-no-hint", put("dns", "nameservers", value=["ns1"]), "nameservers",
               "mailinfra:dns.nameservers: received unknown key 'nameservers', "
               "expected a known key: provider, zones, ttl_seconds, infra_domain")
    yield case("type-integer", put("dns", "ttl_seconds", value="soon"), "soon",
               "mailinfra:dns.ttl_seconds: received 'soon', expected a whole number")
    yield case("type-integer-range", put("dns", "ttl_seconds", value=5), "ttl_seconds",
               "mailinfra:dns.ttl_seconds: received 5, expected a whole number of at least 60")
    yield case("type-list", put("pools", "tx", "hosts", value="mta1-only"), "mta1-only",
               "mailinfra:pools.tx.hosts: received 'mta1-only', expected a list")
    yield case("type-mapping", put("pools", "tx", "ips", value=["tx1", "tx2"]), ("mailinfra:pools:", "  tx:", "ips:"),
               "mailinfra:pools.tx.ips: received a list, expected a mapping of keys to values")
    yield case("type-boolean", put("streams", "bulk", "one_click_unsubscribe", value="maybe"), "maybe",
               "mailinfra:streams.bulk.one_click_unsubscribe: received 'maybe', expected true or false")
    yield case("type-enum", put("streams", "bulk", "kind", value="newsletter"), "newsletter",
               "mailinfra:streams.bulk.kind: received 'newsletter', "
               "expected one of 'transactional', 'marketing' or 'bulk'")
    yield case("type-null", put("dns", "zones", value=None), "zones:",
               "mailinfra:dns.zones: received nothing, expected a mapping of keys to values")
    yield case("missing-required-key", drop("bounces"), "config:",
               "mailinfra:bounces: received nothing (the key is missing), expected a value: this key is required")
    yield case("bad-domain-name", put("streams", "bulk", "domain", value="exa_mple..com"), "exa_mple",
               "mailinfra:streams.bulk.domain: received 'exa_mple..com', "
               "expected a domain name such as example.com (RFC 1035 letters, digits, hyphens)")
    yield case("bad-ip-address", put("pools", "tx", "ips", "tx1",
                                     value={"address": "203.0.113.300", "allocation_id": "eipalloc-0123456789abcdef0"}),
               "203.0.113.300", "mailinfra:pools.tx.ips.tx1.address: received '203.0.113.300', "
               "expected an IPv4 address such as 203.0.113.10")
    yield case("private-ip-address", put("pools", "tx", "ips", "tx1",
                                         value={"address": "10.1.2.3", "allocation_id": "eipalloc-0123456789abcdef0"}),
               "10.1.2.3", "mailinfra:pools.tx.ips.tx1.address: received '10.1.2.3', "
               "expected a public IPv4 address (documentation ranges allowed for examples)")
    multicast = {"address": "224.0.0.5", "allocation_id": "eipalloc-0123456789abcdef0"}
    yield case("multicast-ip-address", put("pools", "tx", "ips", "tx1", value=multicast),
               "224.0.0.5", "mailinfra:pools.tx.ips.tx1.address: received '224.0.0.5', "
               "expected a public IPv4 address (documentation ranges allowed for examples)")
    yield case("adopted-ip-without-allocation", put("pools", "tx", "ips", "tx1", value={"address": "203.0.113.77"}),
               "tx1:", "mailinfra:pools.tx.ips.tx1: received address without allocation_id, "
               "expected both (an adopted Elastic IP) or neither (a new one)")
    # --- dangling references
    yield case("stream-to-pool", put("streams", "bulk", "pool", value="blk"), "pool: blk",
               "mailinfra:streams.bulk.pool: received 'blk', "
               "expected a pool under pools: one of bulk, mkt-active, mkt-cold, mkt-winback, tx")
    yield case("stream-tier-to-pool", put("streams", "marketing", "tiers", "cold", value="mkt-frozen"), "mkt-frozen",
               "mailinfra:streams.marketing.tiers.cold: received 'mkt-frozen', "
               "expected a pool under pools: one of bulk, mkt-active, mkt-cold, mkt-winback, tx")
    yield case("stream-to-route", put("streams", "bulk", "route", value="relay2"), "relay2",
               "mailinfra:streams.bulk.route: received 'relay2', expected a route under routes: one of relay, ses")
    yield case("stream-to-domain", put("streams", "bulk", "domain", value="example.net"), "domain: example.net",
               "mailinfra:streams.bulk.domain: received 'example.net', expected a domain under domains: "
               "one of example.com")
    yield case("pool-to-host", put("pools", "bulk", "hosts", value=["mta9"]), "- mta9",
               "mailinfra:pools.bulk.hosts[0]: received 'mta9', expected a host under hosts: one of mta1")
    yield case("ip-to-host", put("pools", "bulk", "ips", "bk1", value={"host": "mta9"}), "host: mta9",
               "mailinfra:pools.bulk.ips.bk1.host: received 'mta9', expected one of the pool's hosts (mta1)")
    # --- one IP, one pool; one stream, one subdomain; traffic separation
    yield case("ip-name-in-two-pools", put("pools", "bulk", "ips", "tx1", value={}),
               ("mailinfra:pools:", "  bulk:", "tx1: {}"),
               "mailinfra:pools.bulk.ips.tx1: received 'tx1', expected an IP name used once: it is already in pool tx")
    # A former name aliases exactly one current pool / IP (components/ip_pool.py aliases under every pool name).
    yield case("pool-previous-name-in-use", put("pools", "bulk", "previous_names", value=["tx"]),
               ("mailinfra:pools:", "  bulk:", "previous_names:"),
               "mailinfra:pools.bulk.previous_names: received 'tx', expected a name no pool has now: pool tx exists")
    yield case("pool-previous-name-twice", both(put("pools", "bulk", "previous_names", value=["old"]),
                                                put("pools", "tx", "previous_names", value=["old"])),
               ("mailinfra:pools:", "  bulk:", "previous_names:"),
               "mailinfra:pools.bulk.previous_names: received 'old', "
               "expected a former name of one pool only: pool tx lists it too")
    yield case("ip-legacy-name-spelled-twice",
               both(put("pools", "bulk", "previous_names", value=["mkt"]),
                    put("pools", "bulk", "ips", "cold-mc1", value={})),
               ("mailinfra:pools:", "  bulk:", "cold-mc1:"),
               "mailinfra:pools.bulk.ips.cold-mc1: received 'cold-mc1', expected an IP name whose legacy resource "
               "name pool-mkt-cold-mc1 no other IP spells: IP mc1 does (pool mkt-cold and IP mc1)")
    yield case("ip-previous-name-in-use", put("pools", "bulk", "ips", "bk1", value={"previous_names": ["tx1"]}),
               ("mailinfra:pools:", "  bulk:", "bk1:", "previous_names:"),
               "mailinfra:pools.bulk.ips.bk1.previous_names: received 'tx1', "
               "expected a name no IP has now: IP tx1 exists in pool tx")
    same = "203.0.113.50"
    yield case("ip-address-in-two-pools", both(
        put("pools", "tx", "ips", "tx1", value={"address": same, "allocation_id": "eipalloc-0000000000000001"}),
        put("pools", "bulk", "ips", "bk1", value={"address": same, "allocation_id": "eipalloc-0000000000000002"}),
    ), ("mailinfra:pools:", "  bulk:", "203.0.113.50"),
        "mailinfra:pools.bulk.ips.bk1.address: received '203.0.113.50', "
        "expected an address in one pool only: it is already tx/tx1")
    yield case("two-streams-one-subdomain", put("streams", "bulk", "subdomain", value="news"),
               ("mailinfra:streams:", "  bulk:", "subdomain: news"),
               "mailinfra:streams.bulk.subdomain: received 'news', "
               "expected a subdomain of its own: news.example.com is already used by stream marketing")
    yield case("transactional-shares-pool", put("streams", "bulk", "pool", value="tx"),
               ("mailinfra:streams:", "  bulk:", "pool: tx"),
               "mailinfra:streams.bulk.pool: received 'tx', expected a pool of its own: tx already carries "
               "transactional stream transactional, and transactional mail never shares IPs with bulk mail "
               "(traffic separation)")
    yield case("transactional-shares-subdomain", put("streams", "marketing", "subdomain", value="mail"),
               ("  marketing:", "subdomain: mail"),
               "mailinfra:streams.marketing.subdomain: received 'mail', expected a subdomain of its own: "
               "mail.example.com is already used by transactional stream transactional, "
               "and transactional mail never shares a domain with marketing mail")
    yield case("return-path-outside-org-domain", put("streams", "bulk", "return_path", value="bounce.other.net."),
               "bounce.other.net.", "mailinfra:streams.bulk.return_path: received 'bounce.other.net.', "
               "expected a name under example.com (SPF must align with the From domain for DMARC)")
    # --- capacity
    yield case("pool-over-host-capacity", put("hosts", "mta1", "instance_type", value="t3.small"), "t3.small",
               "mailinfra:hosts.mta1.instance_type: received 't3.small', expected a type that carries 11 IPs "
               "(pools bulk, mkt-active, mkt-cold, mkt-winback, tx): t3.small allows 4 private IPv4 addresses per ENI")
    yield case("unknown-instance-type", put("hosts", "mta1", "instance_type", value="x9.huge"), "x9.huge",
               "mailinfra:hosts.mta1.instance_type: received 'x9.huge', "
               "expected a supported instance type (30 known, e.g. c6i.large, m6i.xlarge)")
    # --- warmup
    yield case("warmup-date-impossible", put("pools", "tx", "warmup", "start", value="2026-13-40"), "2026-13-40",
               "mailinfra:pools.tx.warmup.start: received '2026-13-40', expected a date written YYYY-MM-DD")
    yield case("warmup-date-words", put("pools", "tx", "warmup", "start", value="next tuesday"), "next tuesday",
               "mailinfra:pools.tx.warmup.start: received 'next tuesday', expected a date written YYYY-MM-DD")
    yield case("warmup-missing", drop("pools", "tx", "warmup"), "  tx:",
               "mailinfra:pools.tx.warmup: received no warmup for any of its IPs, expected warmup on the pool or "
               "on each IP: {start: YYYY-MM-DD, schedule: NAME} or {warmed: true}")
    yield case("warmup-missing-start", put("pools", "tx", "warmup", value={"schedule": "standard"}),
               ("mailinfra:pools:", "  tx:", "warmup:"),
               "mailinfra:pools.tx.warmup.start: received nothing, "
               "expected the date its warmup starts (YYYY-MM-DD), or warmed: true")
    yield case("warmup-unknown-schedule", put("pools", "tx", "warmup", "schedule", value="turbo"), "turbo",
               "mailinfra:pools.tx.warmup.schedule: received 'turbo', "
               "expected a warmup schedule: one of aggressive, conservative, standard, transactional")
    # --- DKIM and secrets
    yield case("two-active-rsa-selectors",
               put("domains", "example.com", "dkim", "selectors", "s2027a", value={"state": "active"}), "selectors:",
               "mailinfra:domains.example.com.dkim.selectors: received 2 active RSA selectors (s2026a, s2027a), "
               "expected exactly one active RSA selector (others pending, retiring or retired)")
    yield case("plain-text-relay-password", put("relay_password", value="hunter2"), "hunter2",
               "mailinfra:relay_password: received a plain-text password, expected a Pulumi secret that route relay "
               "reads its password from: pulumi config set --secret mailinfra:relay_password ...")
    yield case("dkim-key-not-base64",
               put("domains", "example.com", "dkim", "selectors", "s2026a", "public_key", value="not base64!"),
               "not base64!", "mailinfra:domains.example.com.dkim.selectors.s2026a.public_key: "
               "received 'not base64!', expected base64 text of the public key")
    yield case("dkim-key-not-spki",
               put("domains", "example.com", "dkim", "selectors", "s2026a", "public_key", value="bm90IGEga2V5"),
               "bm90IGEga2V5", "mailinfra:domains.example.com.dkim.selectors.s2026a.public_key: received "
               "'bm90IGEga2V5', expected an RSA public key as base64 SubjectPublicKeyInfo "
               "(the p= value, RFC 6376 §3.6.1)")
    short = rsa_1024_spki()
    yield case("dkim-key-wrong-size",
               put("domains", "example.com", "dkim", "selectors", "s2026a", "public_key", value=short),
               short[:40], f"mailinfra:domains.example.com.dkim.selectors.s2026a.public_key: received "
               f"'{short[:76]}..., expected an RSA key of 2048 bits for rsa-2048 (this one is 1024)")

    # --- who may inject: never the internet (the hosts accept injected mail without a login)
    private = ("a private network inside 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16 (RFC 1918) or "
               "100.64.0.0/10 (RFC 6598): injected mail needs no login, so a public range is an open relay")
    yield case("injection-from-anywhere", put("hosts", "mta1", "injection_cidrs", value=["0.0.0.0/0"]), "0.0.0.0/0",
               f"mailinfra:hosts.mta1.injection_cidrs[0]: received '0.0.0.0/0', expected {private}")
    yield case("injection-from-a-public-range",
               put("hosts", "mta1", "injection_cidrs", value=["10.20.0.0/16", "198.51.100.0/24"]), "198.51.100.0/24",
               f"mailinfra:hosts.mta1.injection_cidrs[1]: received '198.51.100.0/24', expected {private}")
    yield case("injection-wider-than-private", put("hosts", "mta1", "injection_cidrs", value=["172.0.0.0/10"]),
               "172.0.0.0/10", f"mailinfra:hosts.mta1.injection_cidrs[0]: received '172.0.0.0/10', expected {private}")
    # --- queues and TLS (issue 11)
    yield case("queue-lifetime-format", put("streams", "transactional", "queue_lifetime", value="3 days"), "3 days",
               "mailinfra:streams.transactional.queue_lifetime: received '3 days', expected a duration such as "
               "30m, 4h or 2d (a number and one of s, m, h, d, w)")
    yield case("queue-lifetime-above-postfix-default", put("streams", "transactional", "queue_lifetime", value="6d"),
               "6d", "mailinfra:streams.transactional.queue_lifetime: received '6d', expected at most 5d "
               "(Postfix's own default; longer only delays the bounce the app acts on)")
    yield case("mta-sts-enforce-without-policy-host", put("bounces", "mta_sts", value={"mode": "enforce", "id": "1"}),
               "enforce", "mailinfra:bounces.mta_sts.mode: received 'enforce', expected testing or none (enforce "
               "needs a policy host and a CA-signed certificate on every bounce MX; mailinfra provides neither)")
    # --- places: zones, subnets and regions that belong together
    yield case("zone-outside-the-region", put("hosts", "mta1", "availability_zone", value="eu-west-1a"), "eu-west-1a",
               "mailinfra:hosts.mta1.availability_zone: received 'eu-west-1a', "
               "expected an availability zone of the stack's region us-east-1 (aws:region), such as us-east-1a")
    yield case("subnet-in-two-zones", both(
        put("hosts", "mta1", "subnet_id", value="subnet-0a1b2c3d4e5f60a01"),
        put("hosts", "mta2", value={"availability_zone": "us-east-1b", "subnet_id": "subnet-0a1b2c3d4e5f60a01",
                                    "injection_cidrs": ["10.20.0.0/16"]}),
    ), ("mailinfra:hosts:", "  mta2:", "availability_zone:"),
        "mailinfra:hosts.mta2.availability_zone: received 'us-east-1b', expected us-east-1a, the zone of subnet "
        "subnet-0a1b2c3d4e5f60a01 (host mta1): a subnet lies in one availability zone")
    yield case("ses-route-where-ses-is-not", put("routes", "ses", "region", value="cn-north-1"), "cn-north-1",
               "mailinfra:routes.ses.region: received 'cn-north-1', expected a region where Amazon SES has an "
               "endpoint, such as us-east-1 or eu-west-1 (AWS General Reference, SES endpoints)")
    # --- names: an organizational domain is a registrable domain (Public Suffix List)
    # (without dns.zones: a zone co.uk would be refused too, on its own line)
    suffix = dev_text(put("dns", "zones", value={})).replace("example.com", "co.uk")
    yield Case("org-domain-is-a-public-suffix", suffix, ("mailinfra:domains:", "co.uk:"),
               "mailinfra:domains.co.uk: received 'co.uk', expected a registrable domain such as example.co.uk: "
               "co.uk is a public suffix (Public Suffix List), nobody's organizational domain")
    below = dev_text().replace("example.com", "corp.example.co.uk")
    yield Case("org-domain-below-a-registrable-domain", below, ("mailinfra:domains:", "corp.example.co.uk:"),
               "mailinfra:domains.corp.example.co.uk: received 'corp.example.co.uk', expected its organizational "
               "domain example.co.uk (the registrable domain under the Public Suffix List; RFC 7489 §3.2: relaxed "
               "alignment and the _dmarc fallback use it), with corp as a stream's subdomain")
    in_suffix_zone = dev_text(put("dns", "zones", value={"co.uk": {}})).replace("example.com", "example.co.uk")
    yield Case("zone-is-a-public-suffix", in_suffix_zone, ("mailinfra:dns:", "co.uk:"),
               "mailinfra:dns.zones.co.uk: received 'co.uk', expected a zone you can own: co.uk is a public suffix "
               "(Public Suffix List)")
    # --- inbox-placement seeds (mailinfra.placement)
    seed = {"provider": "gmail", "address": "seed1@gmail.com", "imap_host": "imap.gmail.com",
            "password_secret": "seed_gmail_password"}
    yield case("seed-unknown-provider", put("monitoring", value={"seeds": {"g1": {**seed, "provider": "gmial"}}}),
               "gmial", "mailinfra:monitoring.seeds.g1.provider: received 'gmial', expected a receiving provider: "
               "gmail, microsoft, yahoo, apple, default")
    yield case("seed-shared-mailbox",
               put("monitoring", value={"seeds": {"g1": seed, "g2": {**seed, "address": "Seed1@gmail.com"}}}),
               "Seed1@gmail.com", "mailinfra:monitoring.seeds.g2.address: received 'Seed1@gmail.com', expected a "
               "mailbox no other seed uses (seed g1 has it: two seeds would read each other's probes)")
    yield case("seed-plain-text-password",
               both(put("monitoring", value={"seeds": {"g1": seed}}), put("seed_gmail_password", value="hunter3")),
               "hunter3", "mailinfra:seed_gmail_password: received a plain-text password, expected a Pulumi secret "
               "that seed g1 reads its IMAP password from: pulumi config set --secret "
               "mailinfra:seed_gmail_password ...")


CASES = list(_cases())


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_rule_rejects_with_its_exact_line(case: Case, in_tmp: Path) -> None:
    """Each bad input gets exactly one line naming file:line, key path, what was received and expected."""
    errors = load_errors(case.text)
    assert errors == [f"{FILE}:{line_of(case.text, *case.anchor)}: {case.message}"]


def test_table_covers_distinct_inputs() -> None:
    """No two table rows test the same text (a copy-paste row would test nothing new)."""
    assert len({c.text for c in CASES}) == len(CASES)


def test_dev_itself_is_valid(in_tmp: Path) -> None:
    """The base every table row mutates loads cleanly after the YAML round trip."""
    Path(FILE).write_text(dev_text())
    assert load_stack(FILE).config.streams.keys() == {"transactional", "marketing", "bulk"}


def test_every_problem_is_reported_at_once(in_tmp: Path) -> None:
    """Two independent mistakes give two lines, in one load (no fix-one-rerun loop)."""
    text = dev_text(both(put("dns", "ttl_seconds", value="soon"), put("streams", "bulk", "route", value="relay2")))
    errors = load_errors(text)
    assert len(errors) == 1  # schema errors stop before topology rules, which need a typed config
    text = dev_text(both(put("hosts", "mta1", "instance_type", value="x9.huge"),
                         put("streams", "bulk", "route", value="relay2")))
    errors = load_errors(text)
    assert [e.split(": received")[0] for e in errors] == [
        f"{FILE}:{line_of(text, 'relay2')}: mailinfra:streams.bulk.route",
        f"{FILE}:{line_of(text, 'x9.huge')}: mailinfra:hosts.mta1.instance_type",
    ]


def test_secret_value_is_never_echoed(in_tmp: Path) -> None:
    """A plain-text password is reported without repeating it (the error may land in CI logs)."""
    errors = load_errors(dev_text(put("relay_password", value="hunter2-s3cret")))
    assert len(errors) == 1 and "hunter2-s3cret" not in errors[0]


def test_pulumi_secret_is_accepted(in_tmp: Path) -> None:
    """The same key as a Pulumi secret (ciphertext under `secure:`) is what the rule asks for."""
    Path(FILE).write_text(dev_text(put("relay_password", value={"secure": "v1:AAAABBBBCCCC"})))
    assert load_stack(FILE).secure_keys == frozenset({"relay_password"})


def test_recursive_alias_is_a_config_error(in_tmp: Path) -> None:
    """A YAML anchor that contains itself is reported, not a RecursionError."""
    errors = load_errors("config:\n  mailinfra:hosts: &loop\n    mta1: *loop\n")
    assert errors == [f"{FILE}:3: mailinfra:hosts.mta1: received an alias that contains itself, "
                      "expected a value that ends (no recursive YAML anchors)"]


# ----------------------------------------------------------------- no input raises anything else


def _key_paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if prefix:
        yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _key_paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _key_paths(value, (*prefix, i))


DEV_PATHS = sorted(_key_paths(DEV["config"]), key=repr)
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70), st.floats(allow_nan=True),
    st.text(max_size=30), st.dates(min_value=dt.date(1, 1, 1)),
    st.sampled_from(["mta1", "tx", "relay", "example.com", "2026-13-40", "203.0.113.9", "eipalloc-0123456789abcdef0",
                     "active", "rsa-2048", "ed25519", "postfix", "powermta", "hosts", "ses", "c6i.large", "bounce.x.",
                     "{secure: x}", "[", "*a", "&a", "- x", "a: b", "\t", "\n"]),
)
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3),
    st.dictionaries(st.one_of(st.text(max_size=8), st.sampled_from(["host", "kind", "warmup", "secure", "pool"])),
                    inner, max_size=3),
), max_leaves=6)


@st.composite
def mutated_dev(draw: st.DrawFn) -> str:
    """dev with 1-3 random edits at random key paths: set a value, delete a key or misspell it."""
    stack = copy.deepcopy(DEV)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(DEV_PATHS))
        try:
            parent = stack["config"]
            for part in path[:-1]:
                parent = parent[part]
            action = draw(st.sampled_from(["set", "set", "delete", "rename"]))
            if action == "set":
                parent[path[-1]] = draw(VALUES)
            elif isinstance(parent, dict) and action == "delete":
                del parent[path[-1]]
            elif isinstance(parent, dict):
                parent[draw(st.text(min_size=1, max_size=12))] = parent.pop(path[-1])
        except (KeyError, IndexError, TypeError):
            continue  # an earlier edit removed or replaced this path
    text = yaml.safe_dump(stack, sort_keys=False, allow_unicode=True)
    if draw(st.booleans()):
        return text
    # Raw text damage as well: YAML syntax errors, duplicate keys, stray indentation.
    cut = draw(st.integers(0, len(text)))
    damage = draw(st.sampled_from(["", "\n  x: [", "\n  mailinfra:environment: dup", ":", "\t", "- "]))
    return text[:cut] + damage + text[cut:]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=mutated_dev())
def test_any_input_gives_one_line_errors_or_a_stack(text: str, in_tmp: Path) -> None:
    """Whatever the file holds, load_stack returns a Stack or raises our errors, every line naming the file."""
    Path(FILE).write_text(text, encoding="utf-8")
    try:
        load_stack(FILE)
    except ConfigErrors as exc:
        lines = str(exc).splitlines()
        assert len(lines) == len(exc.errors) >= 1
        assert all(line.startswith(FILE) and ": received " in line for line in lines), lines
    except UsageError as exc:
        assert str(exc).startswith(FILE) and "\n" not in str(exc)
    except MailinfraError as exc:  # pragma: no cover - a failure message, not a path
        pytest.fail(f"unexpected {type(exc).__name__}: {exc}")
