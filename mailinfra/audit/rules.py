"""The deliverability checklist as rules over the plan: one function per rule, one code per rule.

Pure: each rule reads the Plan (and the StackConfig for what the plan does not carry, such as the FBL
mailbox) and yields Issues; nothing here resolves DNS or raises on a finding.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator

from mailinfra.audit.findings import Issue, Rule, RuleFn, Severity, Subject
from mailinfra.dns.dkim import public_key_bits
from mailinfra.dns.dmarc import parse_dmarc, report_authorization_name
from mailinfra.dns.records import DnsRecord, RecordType
from mailinfra.dns.spf import MAX_LOOKUPS, check_spf, count_lookup_terms, parse_spf
from mailinfra.dns.zonefile import ptr_name
from mailinfra.model.rules import BUILTIN_SCHEDULES
from mailinfra.plan.model import Plan, StreamPlan
from mailinfra.warmup import check_schedule

ERROR, WARNING, INFO = Severity.ERROR, Severity.WARNING, Severity.INFO

# RFC 7208 §4.6.4: more than two lookups that return no records is a permerror at the receiver.
MAX_VOID_LOOKUPS = 2
# Project rule (Gmail/Yahoo recommend 2048; RFC 8301 §3.2 only forbids < 1024).
MIN_DKIM_RSA_BITS = 2048
STRONG_DMARC_POLICIES = ("quarantine", "reject")
# Gmail/Yahoo bulk-sender rules and RFC 8058: marketing and bulk mail carries one-click unsubscribe.
UNSUBSCRIBE_KINDS = ("marketing", "bulk")

RULES: list[Rule] = []


def rule(code: str, title: str, basis: str) -> Callable[[RuleFn], RuleFn]:
    """Register a rule function under its code (the order of registration is the report's order)."""

    def register(check: RuleFn) -> RuleFn:
        if any(r.code == code for r in RULES):
            raise ValueError(f"audit rule code {code!r} registered twice")
        RULES.append(Rule(code, title, basis, check))
        return check

    return register


# ----------------------------------------------------------------------------- helpers


def _by_key(plan: Plan) -> dict[str, DnsRecord]:
    return {r.key: r for r in plan.records}


def _txt(plan: Plan, name: str, prefix: str) -> list[str]:
    record = _by_key(plan).get(f"TXT:{name}")
    if record is None:
        return []
    return [v for v in record.values if v.lower().startswith(prefix.lower())]


def _spf_records(plan: Plan) -> Iterator[tuple[DnsRecord, str]]:
    for record in plan.records:
        if record.type is RecordType.TXT:
            for value in record.values:
                if value.lower().startswith("v=spf1"):
                    yield record, value


def _under(name: str, parent: str) -> bool:
    return name == parent or name.endswith("." + parent)


def _dmarc_governing(plan: Plan, stream: StreamPlan) -> tuple[str, dict[str, str], str] | None:
    """The DMARC record a receiver applies to mail From the stream's sending domain.

    RFC 7489 §6.6.3: the receiver looks at `_dmarc.<From domain>` first, then at the organizational
    domain, where `sp` (falling back to `p`) is the policy for subdomains. Returns (record name, tags,
    effective policy).
    """
    own = _txt(plan, f"_dmarc.{stream.sending_domain}", "v=DMARC1")
    if own:
        tags = parse_dmarc(own[0])
        return f"_dmarc.{stream.sending_domain}", tags, tags.get("p", "")
    org = _txt(plan, f"_dmarc.{stream.org_domain}", "v=DMARC1")
    if org:
        tags = parse_dmarc(org[0])
        return f"_dmarc.{stream.org_domain}", tags, tags.get("sp", tags.get("p", ""))
    return None


# ----------------------------------------------------------------------------- streams and domains


@rule(
    "stream-subdomain",
    "each stream sends from a subdomain of its own",
    "traffic separation: a stream's reputation is tracked per (sub)domain by Gmail and Yahoo",
)
def check_stream_subdomains(subject: Subject) -> Iterator[Issue]:
    plan = subject.plan
    owners: dict[str, str] = {}
    for stream in plan.streams:
        where = f"streams.{stream.name}.subdomain"
        if stream.sending_domain == stream.org_domain:
            yield Issue(
                ERROR,
                where,
                f"stream {stream.name} sends from the organizational domain "
                f"{stream.org_domain} itself, so its reputation is the whole domain's",
                f"give it a subdomain such as {stream.kind[:4]}.{stream.org_domain}",
            )
        for name in (stream.sending_domain, stream.return_path):
            other = owners.setdefault(name, stream.name)
            if other != stream.name:
                yield Issue(
                    ERROR,
                    where,
                    f"{name} is used by streams {other} and {stream.name}: "
                    "their reputations cannot be told apart",
                    f"give stream {stream.name} a subdomain and return path of its own",
                )


@rule(
    "spf-missing",
    "every sending stream has SPF for its return path",
    "RFC 7208 §2.4; Gmail/Yahoo: SPF required for bulk senders",
)
def check_spf_present(subject: Subject) -> Iterator[Issue]:
    plan = subject.plan
    for stream in plan.streams:
        if not _txt(plan, stream.return_path, "v=spf1"):
            yield Issue(
                ERROR,
                f"TXT:{stream.return_path}",
                f"no SPF record for {stream.return_path}, the MAIL FROM of stream {stream.name}",
                "publish `v=spf1 ip4:<pool IPs> -all` at the return path (the plan normally does)",
            )


@rule(
    "dkim-missing",
    "every sending domain publishes its signing DKIM key",
    "RFC 6376 §3.6.2; Gmail/Yahoo: DKIM required for bulk senders",
)
def check_dkim_present(subject: Subject) -> Iterator[Issue]:
    plan = subject.plan
    for stream in plan.streams:
        name = f"{stream.dkim_selector}._domainkey.{stream.sending_domain}"
        values = _txt(plan, name, "v=DKIM1")
        # DKIM key records use the same tag=value list syntax as DMARC (RFC 6376 §3.2).
        if not values or not parse_dmarc(values[0]).get("p"):
            yield Issue(
                ERROR,
                f"TXT:{name}",
                f"stream {stream.name} signs with selector {stream.dkim_selector} but no key is "
                f"published at {name}: every signature fails verification",
                f"publish the public key of {stream.dkim_selector} at {name}",
            )


@rule(
    "dmarc-missing",
    "every sending domain is covered by a DMARC record",
    "RFC 7489 §6.1; Gmail/Yahoo: DMARC required above 5,000 messages/day",
)
def check_dmarc_present(subject: Subject) -> Iterator[Issue]:
    plan = subject.plan
    for stream in plan.streams:
        if _dmarc_governing(plan, stream) is None:
            yield Issue(
                ERROR,
                f"TXT:_dmarc.{stream.org_domain}",
                f"no DMARC record at _dmarc.{stream.sending_domain} or _dmarc.{stream.org_domain}",
                f"publish `v=DMARC1; p=quarantine; rua=mailto:...` at _dmarc.{stream.org_domain}",
            )


@rule(
    "dmarc-policy",
    "DMARC policy is at least quarantine for every sending domain",
    "project rule (above Gmail/Yahoo's p=none minimum); RFC 7489 §6.3 sp and pct",
)
def check_dmarc_policy(subject: Subject) -> Iterator[Issue]:
    plan = subject.plan
    seen: set[str] = set()
    for stream in plan.streams:
        governing = _dmarc_governing(plan, stream)
        if governing is None:
            continue
        name, tags, policy = governing
        if policy not in STRONG_DMARC_POLICIES:
            tag = "sp" if "sp" in tags and name == f"_dmarc.{stream.org_domain}" else "p"
            yield Issue(
                ERROR,
                f"TXT:{name}",
                f"mail From {stream.sending_domain} gets DMARC policy {policy or 'nothing'} "
                f"(tag {tag} of {name}): spoofed mail is delivered",
                f"set {tag}=quarantine or {tag}=reject (domains.{stream.org_domain}.dmarc)",
            )
        pct = tags.get("pct", "100")
        if name not in seen and pct != "100":
            yield Issue(
                WARNING,
                f"TXT:{name}",
                f"pct={pct} applies the policy to part of the failing mail only",
                "drop pct (DMARCbis removes it) so the policy applies to all failing mail",
            )
        seen.add(name)


@rule(
    "dmarc-rua",
    "DMARC asks for aggregate reports",
    "project rule; RFC 7489 §7.2 (without rua nobody sees who sends as the domain)",
)
def check_dmarc_rua(subject: Subject) -> Iterator[Issue]:
    plan = subject.plan
    seen: set[str] = set()
    for stream in plan.streams:
        governing = _dmarc_governing(plan, stream)
        if governing is None or governing[0] in seen:
            continue
        name, tags, _ = governing
        seen.add(name)
        if not tags.get("rua"):
            yield Issue(
                ERROR,
                f"TXT:{name}",
                f"{name} has no rua: aggregate reports are never sent",
                f"add rua: [mailto:dmarc-reports@{stream.org_domain}] "
                f"under domains.{stream.org_domain}.dmarc",
            )


@rule(
    "dmarc-report-authorization",
    "external DMARC report addresses are authorized",
    "RFC 7489 §7.1: a report domain outside the organizational domain must publish an authorization",
)
def check_dmarc_report_authorization(subject: Subject) -> Iterator[Issue]:
    plan = subject.plan
    config = subject.config
    keys = _by_key(plan)
    for record in plan.records:
        if record.type is not RecordType.TXT or not record.name.startswith("_dmarc."):
            continue
        domain = record.name.removeprefix("_dmarc.")
        org = next((d for d in config.domains if _under(domain, d)), domain)
        for value in record.values:
            tags = parse_dmarc(value)
            for tag in ("rua", "ruf"):
                for uri in filter(None, (u.strip() for u in tags.get(tag, "").split(","))):
                    needed = report_authorization_name(domain, uri, org)
                    if needed is None or f"TXT:{needed}" in keys:
                        continue
                    yield Issue(
                        WARNING,
                        f"TXT:{needed}",
                        f"{tag} {uri} of {record.name} is outside {org}: receivers send no reports "
                        f"unless {needed} publishes TXT `v=DMARC1`",
                        f'ask the report receiver to publish TXT {needed} "v=DMARC1", or use an '
                        f"address under {org}",
                    )


@rule(
    "dmarc-spf-alignment",
    "SPF can align with the From domain",
    "RFC 7489 §3.1.2: strict aspf needs MAIL FROM == From domain; relaxed needs the same org domain",
)
def check_spf_alignment(subject: Subject) -> Iterator[Issue]:
    plan = subject.plan
    for stream in plan.streams:
        governing = _dmarc_governing(plan, stream)
        if not _under(stream.return_path, stream.org_domain):
            yield Issue(
                ERROR,
                f"streams.{stream.name}.return_path",
                f"return path {stream.return_path} is outside {stream.org_domain}: SPF never aligns "
                "and DMARC rests on DKIM alone",
                f"use a return path under {stream.org_domain} such as bounce.{stream.sending_domain}",
            )
        elif (
            governing is not None
            and governing[1].get("aspf") == "s"
            and stream.return_path != stream.sending_domain
        ):
            yield Issue(
                WARNING,
                f"domains.{stream.org_domain}.dmarc.aspf",
                f"aspf=s but stream {stream.name} uses return path {stream.return_path} != From domain "
                f"{stream.sending_domain}: SPF can never align, DMARC rests on DKIM alone",
                "set aspf: r (relaxed alignment accepts a return path under the same org domain)",
            )


# ----------------------------------------------------------------------------- pools, warmup, routes


@rule(
    "pool-dedicated",
    "each pool carries one stream and one engagement tier",
    "traffic separation: IP reputation is per address; one stream's complaints must not hit another",
)
def check_pools_dedicated(subject: Subject) -> Iterator[Issue]:
    plan = subject.plan
    users: dict[str, list[str]] = defaultdict(list)
    for stream in plan.streams:
        for tier, pool in stream.pools:
            users[pool].append(f"{stream.name}/{tier}")
    for pool, owners in users.items():
        if len(owners) > 1:
            yield Issue(
                ERROR,
                f"pools.{pool}",
                f"pool {pool} carries {', '.join(owners)}",
                "give each stream tier a pool of its own",
            )
    addresses: dict[str, str] = {}
    for ip in plan.ips:
        other = addresses.setdefault(ip.address, ip.pool)
        if other != ip.pool:
            yield Issue(
                ERROR,
                f"pools.{ip.pool}.ips.{ip.name}",
                f"address {ip.address} sends for pools {other} and {ip.pool}",
                "use one address per pool",
            )


@rule(
    "pool-tiers",
    "marketing streams split recipients into engagement tiers",
    "common practice: less engaged recipients complain more; "
    "their mail must not spend the active pool's reputation",
)
def check_engagement_tiers(subject: Subject) -> Iterator[Issue]:
    plan = subject.plan
    for stream in plan.streams:
        if stream.kind == "marketing" and len({pool for _, pool in stream.pools}) < 2:
            yield Issue(
                WARNING,
                f"streams.{stream.name}.tiers",
                f"marketing stream {stream.name} has one pool for every engagement tier",
                "add winback and cold tiers with pools of their own",
            )


@rule(
    "warmup-set",
    "every IP that is not warmed has a warmup start and a known schedule",
    "receivers throttle unknown IPs; ramp 4-6 weeks (SendGrid, KumoMTA schedules)",
)
def check_warmup(subject: Subject) -> Iterator[Issue]:
    plan = subject.plan
    config = subject.config
    known = set(BUILTIN_SCHEDULES) | set(config.warmup_schedules)
    for ip in plan.ips:
        if ip.warmup.warmed:
            continue
        where = f"pools.{ip.pool}.ips.{ip.name}.warmup"
        if ip.warmup.start is None or ip.warmup.schedule is None:
            yield Issue(
                ERROR,
                where,
                f"IP {ip.name} is not warmed and has no warmup start/schedule: it would "
                "send at full volume from day one",
                "set warmup: {start: YYYY-MM-DD, schedule: ...} on the IP or its pool",
            )
        elif ip.warmup.schedule not in known:
            yield Issue(
                ERROR,
                where,
                f"IP {ip.name} names warmup schedule {ip.warmup.schedule!r}, which is not defined",
                f"use one of {', '.join(sorted(known))}",
            )


@rule(
    "warmup-schedule",
    "declared warmup schedules ramp no faster than 500/day to full volume in 4 weeks",
    "common practice: start at 200-500/day/IP, reach full volume in 4-6 weeks (the built-ins' bounds)",
)
def check_warmup_schedules(subject: Subject) -> Iterator[Issue]:
    for name, schedule in subject.config.warmup_schedules.items():
        for severity, why in check_schedule(tuple(schedule.daily_caps)):
            yield Issue(
                ERROR if severity == "error" else INFO,
                f"warmup_schedules.{name}.daily_caps",
                f"schedule {name} {why}",
                "ramp from 200-500/day by the same factor each day to full volume in 4-6 weeks",
            )


@rule(
    "secondary-route",
    "every stream has a secondary route that keeps its overflow in its own stream and tier",
    "availability: a throttled or blocked pool must not stop a stream (Postfix smtp_fallback_relay)",
)
def check_secondary_routes(subject: Subject) -> Iterator[Issue]:
    plan = subject.plan
    routes = {r.name: r for r in plan.routes}
    for stream in plan.streams:
        where = f"streams.{stream.name}.route"
        if stream.route is None:
            yield Issue(
                ERROR,
                where,
                f"stream {stream.name} has no secondary route: when its pool is throttled "
                "or blocked, its mail waits in the queue",
                "name a route under routes: (relay, ses or hosts)",
            )
            continue
        route = routes.get(stream.route)
        if route is None:
            yield Issue(
                ERROR,
                where,
                f"stream {stream.name} names route {stream.route}, which the plan lacks",
                "declare the route under routes:",
            )
            continue
        # Overflow stays in the stream's own pools on the route hosts (same stream and tier), and a
        # route host never reroutes (no A -> B -> A): each route host carries every pool of the stream.
        carried = {(ip.host, ip.pool) for ip in plan.ips}
        lacking = sorted(h for h in route.hosts for pool in stream.pool_names() if (h, pool) not in carried)
        if lacking:
            yield Issue(
                ERROR,
                where,
                f"route {route.name} sends overflow to {', '.join(dict.fromkeys(lacking))}, which lacks IPs of "
                f"the stream's pools: the overflow would leave from another stream's or tier's reputation",
                "route through hosts that carry an IP of each of the stream's pools",
            )


# ----------------------------------------------------------------------------- bounces and FBL


@rule(
    "bounce-processing",
    "bounces reach a host that processes them",
    "RFC 5321 §4.5.5: non-delivery reports go to MAIL FROM; unprocessed bounces ruin list hygiene",
)
def check_bounce_processing(subject: Subject) -> Iterator[Issue]:
    plan = subject.plan
    targets = {h.fqdn for h in plan.hosts if h.accepts_bounces}
    if not targets:
        yield Issue(
            ERROR,
            "bounces.hosts",
            "no host accepts bounces",
            "list the bounce-processing hosts under bounces.hosts",
        )
        return
    keys = _by_key(plan)
    for stream in plan.streams:
        mx = keys.get(f"MX:{stream.return_path}")
        exchanges = {v.partition(" ")[2].rstrip(".") for v in mx.values} if mx else set()
        if not exchanges & targets:
            yield Issue(
                ERROR,
                f"MX:{stream.return_path}",
                f"bounces for stream {stream.name} go to {', '.join(sorted(exchanges)) or 'nowhere'}, "
                "not to a bounce-processing host",
                f"point the MX at {', '.join(sorted(targets))}",
            )


@rule(
    "fbl-mailbox",
    "complaint feedback loops are received",
    "Gmail/Yahoo: spam rate < 0.3 %; Yahoo CFL / Microsoft JMRP reports need a mailbox that is processed",
)
def check_fbl(subject: Subject) -> Iterator[Issue]:
    config, plan = subject.config, subject.plan
    addresses = config.bounces.feedback_addresses
    if not addresses:
        yield Issue(
            ERROR,
            "bounces.fbl_addresses",
            "no feedback-loop address: complaints are never seen and complainers keep receiving mail",
            "set bounces.fbl_addresses (e.g. [fbl@<a return-path domain>]) and "
            "register it with the providers' feedback loops",
        )
        return
    # The bounce hosts accept the FBL addresses (mailinfra.mta.intake), but a report only reaches them when
    # the address's domain has its MX there: the plan publishes that MX for the return-path domains only.
    keys = _by_key(plan)
    targets = {h.fqdn for h in plan.hosts if h.accepts_bounces}
    return_paths = {stream.return_path for stream in plan.streams}
    for address in addresses:
        domain = address.rpartition("@")[2]
        if domain in return_paths:
            continue  # its MX is bounce-processing's to check
        mx = keys.get(f"MX:{domain}")
        exchanges = {v.partition(" ")[2].rstrip(".") for v in mx.values} if mx else set()
        if not exchanges & targets:
            yield Issue(
                WARNING,
                "bounces.fbl_addresses",
                f"{address}: its domain's MX is not planned to the bounce hosts, so complaints reach the "
                "processor only if that domain's mail server forwards them",
                f"use an address at a return-path domain, e.g. fbl@{plan.streams[0].return_path}",
            )


@rule(
    "suppression-store",
    "one suppression list that every sending host enforces",
    "issue 12: every hard bounce and complaint suppresses on every host; a split list mails the suppressed",
)
def check_suppression_store(subject: Subject) -> Iterator[Issue]:
    plan = subject.plan
    bounce_hosts = [h.name for h in plan.hosts if h.accepts_bounces]
    powermta = [h.name for h in plan.hosts if h.accepts_bounces and h.mta != "postfix"]
    if powermta and plan.intake.store == "sqlite":
        yield Issue(
            ERROR,
            "bounces.suppression.store",
            f"bounce hosts {', '.join(powermta)} run PowerMTA, which has no embedded store: their reports are "
            "not suppressed",
            "set bounces.suppression.store: dynamodb (or make the bounce hosts Postfix hosts)",
        )
    if len(bounce_hosts) > 1 and plan.intake.store == "sqlite":
        yield Issue(
            WARNING,
            "bounces.suppression.store",
            f"{len(bounce_hosts)} bounce hosts ({', '.join(bounce_hosts)}) each keep their own SQLite list: "
            "hosts enforce the union, but `mailinfra suppress` edits one at a time",
            "set bounces.suppression.store: dynamodb for one shared table",
        )


# ----------------------------------------------------------------------------- reverse DNS and HELO


@rule(
    "fcrdns",
    "every sending IP has forward-confirmed reverse DNS matching its HELO",
    "Gmail/Yahoo sender rules: valid forward and reverse DNS; RFC 5321 §4.1.1.1 HELO",
)
def check_fcrdns(subject: Subject) -> Iterator[Issue]:
    plan = subject.plan
    keys = _by_key(plan)
    for ip in plan.ips:
        ptr = keys.get(f"PTR:{ptr_name(ip.address)}")
        forward = keys.get(f"A:{ip.helo}")
        names = {v.rstrip(".").lower() for v in ptr.values} if ptr else set()
        if names != {ip.helo}:
            yield Issue(
                ERROR,
                f"PTR:{ptr_name(ip.address)}",
                f"reverse DNS of {ip.name} ({ip.address}) is {', '.join(sorted(names)) or 'missing'}, "
                f"its HELO is {ip.helo}",
                f"set the PTR of {ip.address} to {ip.helo}",
            )
        if forward is None or ip.address not in forward.values:
            yield Issue(
                ERROR,
                f"A:{ip.helo}",
                f"HELO name {ip.helo} does not resolve to {ip.name} ({ip.address}): "
                "reverse DNS is not forward-confirmed",
                f"publish A {ip.helo} {ip.address}",
            )


@rule(
    "helo-stream",
    "an IP's HELO name carries its own stream's identity",
    "traffic separation: a HELO under another stream's domain ties the two reputations together",
)
def check_helo_identity(subject: Subject) -> Iterator[Issue]:
    plan = subject.plan
    streams = {s.name: s for s in plan.streams}
    for ip in plan.ips:
        for other in plan.streams:
            if other.name != ip.stream and _under(ip.helo, other.sending_domain):
                own = streams[ip.stream].sending_domain
                yield Issue(
                    WARNING,
                    f"pools.{ip.pool}.ips.{ip.name}.helo",
                    f"IP {ip.name} of stream {ip.stream} says HELO {ip.helo}, under stream {other.name}'s "
                    f"domain {other.sending_domain}",
                    f"use a name under {own} (the default)",
                )


# ----------------------------------------------------------------------------- DKIM keys


@rule(
    "dkim-key-size",
    "RSA DKIM keys are at least 2048 bits",
    "project rule; Gmail/Yahoo recommend 2048; RFC 8301 §3.2 rejects < 1024",
)
def check_dkim_key_size(subject: Subject) -> Iterator[Issue]:
    plan = subject.plan
    for key in plan.dkim_keys:
        if not key.published or key.algorithm == "ed25519":
            continue
        where = f"domains.{key.domain}.dkim.selectors.{key.selector}"
        try:
            bits = public_key_bits(key.public_key)
        except ValueError as error:
            yield Issue(
                ERROR,
                where,
                f"DKIM key {key.selector} cannot be read: {error}",
                "put the base64 SubjectPublicKeyInfo (p= value) in public_key",
            )
            continue
        if bits < MIN_DKIM_RSA_BITS:
            yield Issue(
                ERROR,
                where,
                f"DKIM key {key.selector} of {key.domain} is {bits} bits",
                f"rotate to a new selector with an RSA key of at least {MIN_DKIM_RSA_BITS} bits",
            )


@rule(
    "dkim-placeholder",
    "published DKIM keys are real keys, not preview placeholders",
    "a placeholder key has no private half: mail signed for it never verifies",
)
def check_dkim_placeholders(subject: Subject) -> Iterator[Issue]:
    plan = subject.plan
    for key in plan.dkim_keys:
        if key.published and key.placeholder:
            yield Issue(
                INFO,
                f"domains.{key.domain}.dkim.selectors.{key.selector}.public_key",
                f"selector {key.selector} of {key.domain} uses the preview placeholder key",
                "run `mailinfra dkim keygen` and put the public key in the stack before `pulumi up`",
            )


# ----------------------------------------------------------------------------- SPF limits


@rule(
    "spf-lookups",
    "SPF records need at most 10 DNS lookups",
    "RFC 7208 §4.6.4: the 11th lookup is a permerror, and SPF fails for every message",
)
def check_spf_lookups(subject: Subject) -> Iterator[Issue]:
    plan = subject.plan
    for record, value in _spf_records(plan):
        count = count_lookup_terms(value)
        if count > MAX_LOOKUPS:
            yield Issue(
                ERROR,
                record.key,
                f"SPF at {record.name} has {count} DNS-querying terms (limit {MAX_LOOKUPS})",
                "replace include/a/mx terms with ip4: ranges or split traffic across return paths",
            )


@rule(
    "spf-void-lookups",
    "SPF terms do not point at names that do not exist",
    "RFC 7208 §4.6.4: more than 2 void lookups is a permerror",
)
def check_spf_void_lookups(subject: Subject) -> Iterator[Issue]:
    plan = subject.plan
    zones = [z.name for z in plan.zones if not z.reverse]
    keys = _by_key(plan)
    needed = {"a": ("A",), "exists": ("A",), "mx": ("MX",), "include": ("TXT",)}
    for record, value in _spf_records(plan):
        void = []
        for term in parse_spf(value).terms:
            if term.kind != "mechanism" or term.name not in needed:
                continue
            target = (term.value.partition("/")[0] or record.name).lower()
            # Only names in our own zones can be judged offline; outside them the answer is the world's.
            if "%" in target or not any(_under(target, z) for z in zones):
                continue
            if not any(f"{rtype}:{target}" in keys for rtype in needed[term.name]):
                void.append(f"{term.name}:{target}")
        if len(void) > MAX_VOID_LOOKUPS:
            yield Issue(
                ERROR,
                record.key,
                f"SPF at {record.name} has {len(void)} void lookups "
                f"({', '.join(void)}), over the limit of {MAX_VOID_LOOKUPS}",
                "remove the terms or publish the names",
            )
        elif void:
            yield Issue(
                WARNING,
                record.key,
                f"SPF at {record.name} looks up names with no records: {', '.join(void)}",
                "remove the terms or publish the names (more than 2 is a permerror)",
            )


@rule(
    "spf-syntax",
    "SPF records are well formed and there is one per name",
    "RFC 7208 §3.2 (one record), §4.7 (terminal all), §3.4 (450 bytes)",
)
def check_spf_syntax(subject: Subject) -> Iterator[Issue]:
    plan = subject.plan
    per_name: dict[str, int] = defaultdict(int)
    for record, value in _spf_records(plan):
        per_name[record.key] += 1
        for problem in check_spf(value):
            if "DNS-querying terms" in problem:
                continue  # reported by spf-lookups
            yield Issue(
                ERROR,
                record.key,
                f"SPF at {record.name}: {problem}",
                "fix the record so receivers can evaluate it",
            )
    for key, count in per_name.items():
        if count > 1:
            yield Issue(
                ERROR,
                key,
                f"{count} SPF records at one name: receivers return permerror",
                "merge them into one record",
            )


# ----------------------------------------------------------------------------- unsubscribe and TLS


@rule(
    "one-click-unsubscribe",
    "marketing and bulk streams carry one-click unsubscribe",
    "RFC 8058; Gmail/Yahoo bulk-sender rules (transactional mail exempt)",
)
def check_one_click_unsubscribe(subject: Subject) -> Iterator[Issue]:
    plan = subject.plan
    for stream in plan.streams:
        if stream.kind in UNSUBSCRIBE_KINDS and not stream.one_click_unsubscribe:
            yield Issue(
                ERROR,
                f"streams.{stream.name}.one_click_unsubscribe",
                f"{stream.kind} stream {stream.name} does not require List-Unsubscribe-Post: "
                "List-Unsubscribe=One-Click",
                "set one_click_unsubscribe: true",
            )


@rule(
    "tls",
    "mail leaves over TLS, and relay credentials never travel in clear",
    "Gmail/Yahoo sender rules: TLS required; RFC 8314 (submission over TLS)",
)
def check_tls(subject: Subject) -> Iterator[Issue]:
    plan = subject.plan
    for host in plan.hosts:
        if host.tls not in ("may", "dane", "encrypt", "verify"):
            yield Issue(
                ERROR,
                f"hosts.{host.name}.tls",
                f"host {host.name} sends with TLS level {host.tls!r}",
                "set tls: may (opportunistic) or dane",
            )
    for route in plan.routes:
        if route.kind == "relay" and route.username and route.port == 25:
            yield Issue(
                WARNING,
                f"routes.{route.name}.port",
                f"route {route.name} authenticates as {route.username} on port 25, where STARTTLS is "
                "optional: the password may be sent in clear",
                "use port 587 (STARTTLS) or 465 (TLS)",
            )


@rule(
    "tls-reporting",
    "bounce domains ask for TLS reports",
    "RFC 8460 (recommended): TLS-RPT shows when mail to the bounce hosts fails TLS",
)
def check_tls_reporting(subject: Subject) -> Iterator[Issue]:
    config = subject.config
    if not config.bounces.tls_rpt_rua:
        yield Issue(
            INFO,
            "bounces.tls_rpt_rua",
            "no TLS-RPT address: TLS failures towards the bounce hosts go unnoticed",
            "set bounces.tls_rpt_rua: [mailto:tls-reports@<your domain>]",
        )


@rule(
    "route-dmarc-dkim-only",
    "mail on a secondary relay still passes DMARC",
    "RFC 7489 §4.2: DMARC passes on one aligned mechanism; a relay's IPs are not in our SPF",
)
def check_route_alignment(subject: Subject) -> Iterator[Issue]:
    plan = subject.plan
    routes = {r.name: r for r in plan.routes}
    for stream in plan.streams:
        route = routes.get(stream.route or "")
        if route is None or route.kind != "relay" or route.spf_include:
            continue
        governing = _dmarc_governing(plan, stream)
        strict = governing is not None and governing[1].get("adkim") == "s"
        yield Issue(
            WARNING if strict else INFO,
            f"streams.{stream.name}.route",
            f"mail of {stream.name} through relay {route.name} ({route.smtp_host}) is outside the "
            "return path's SPF; DMARC passes on our DKIM signature alone"
            + (" and adkim=s leaves no margin" if strict else ""),
            "keep signing on our hosts before relaying, and make sure the relay does not re-sign or "
            "alter signed headers",
        )


# An isolation is a diagnosis window, not a way of running: past this, the pool's reputation is not being
# repaired (nothing it sends is measured) and the route's fleet carries the stream's mail for good.
ISOLATION_MAX_AGE_DAYS = 14


@rule(
    "isolation-age",
    "isolated pools and IPs come back or go",
    "an isolation is for diagnosing an incident (issue 14); a pool left out keeps costing and never recovers",
)
def check_isolation_age(subject: Subject) -> Iterator[Issue]:
    plan = subject.plan
    for iso in plan.isolations:
        age = iso.age_days(plan.as_of)
        if age > ISOLATION_MAX_AGE_DAYS:
            yield Issue(
                WARNING,
                f"isolations.{iso.target}",
                f"{iso.describe()}: isolated for {age} days (more than {ISOLATION_MAX_AGE_DAYS})",
                f"lift it (`mailinfra isolate {plan.stack} {iso.target} --lift`) with a re-warm of the pool, "
                "or retire its IPs",
            )
        elif age >= 0:
            yield Issue(INFO, f"isolations.{iso.target}", f"{iso.describe()}: isolated for {age} days",
                        "lift it once the cause is fixed and the provider accepts the pool again")


@rule(
    "monitoring-routing",
    "fired alerts reach someone",
    "issue 13: alert rules per pool x provider are rendered for every stack; with no receiver Alertmanager "
    "drops every alert (a bounce or complaint spike goes unseen until a provider blocks the pool)",
)
def check_monitoring_routing(subject: Subject) -> Iterator[Issue]:
    monitoring = subject.plan.monitoring
    if not monitoring.routing.configured:
        yield Issue(
            WARNING,
            "monitoring.routing",
            "no alert routing: Alertmanager has a receiver with no email or webhook, so every alert is dropped",
            "set monitoring.routing.webhook_urls (e.g. a chat or paging webhook) or email_to with email_smarthost",
        )


# ----------------------------------------------------------------------------- monitoring


@rule(
    "placement-seeds",
    "inbox placement is measured by seed mailboxes at the providers mail goes to",
    "delivery rate only says the mail left: a pool whose mail is junked delivers 100 % (issue 13); seed "
    "mailboxes read over IMAP (GlockApps, Everest) are how placement is measured",
)
def check_placement_seeds(subject: Subject) -> Iterator[Issue]:
    from mailinfra.placement.probes import plan_probes
    from mailinfra.warmup import PROVIDERS

    plan = subject.plan
    if not plan.seeds:
        yield Issue(WARNING, "monitoring.seeds",
                    f"stack {plan.stack} has no seed mailboxes: inbox placement of its pools is not measured",
                    "add one seed per major provider under monitoring.seeds (provider, address, imap_host, "
                    "password_secret as a Pulumi secret; README: Delivery vs placement)")
        return
    seeded = {s.provider for s in plan.seeds}
    missing = [p for p in PROVIDERS if p != "default" and p not in seeded]
    if missing:
        yield Issue(INFO, "monitoring.seeds", f"no seed at {', '.join(missing)}: placement there is not measured",
                    "add a seed mailbox for each (one free account per provider is enough)")
    probed = {p.pool for p in plan_probes(plan) if plan.host(p.host).mta == "postfix"}
    for pool in plan.pools:
        if pool.hosts and pool.name not in probed:
            yield Issue(INFO, f"pools.{pool.name}", f"pool {pool.name} runs on PowerMTA, which sends no probes yet",
                        "measure it with the seeds by hand until PowerMTA probes are rendered")
