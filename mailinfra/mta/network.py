"""What each host must accept and may send on the network: the rules of its security group.

Pure: the plan in, typed rules out. Every port comes from where the MTA config decides it (a Postfix
instance's `port` from plan_instances, PowerMTA's listener, a route's port), never re-derived; the
Pulumi component (components/mta_host.py) turns each rule into one `aws:vpc` rule resource (a rule with
`peers`: one customer-managed prefix list of their EIPs, referenced by the rule), the lab translates
those resources into nftables (mailinfra.deployment.security_groups, mailinfra.lab.firewall).

AWS security groups (VPC User Guide, "Security group rules" and "Security groups"): stateful (replies to
an allowed connection pass both ways), no inbound rule = nothing in, and egress is exactly the egress
rules, because the provider removes AWS's default allow-all egress rule of a new group
(terraform-provider-aws, aws_security_group docs, "NOTE on Egress rules"). Traffic to the
Amazon-provided DNS resolver, the Time Sync Service (NTP) and the instance metadata service is not
filtered by security groups at all ("Security groups don't filter traffic destined to and from the
following: Amazon Domain Name Services (DNS), Amazon DHCP, Amazon EC2 instance metadata, ... Amazon Time
Sync Service, reserved IP addresses used by the default VPC router"), so no rule is planned for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mailinfra.mta import postfix, powermta
from mailinfra.mta.resolver import resolver_egress
from mailinfra.plan.model import HostPlan, Plan, RoutePlan

WORLD = "0.0.0.0/0"
SMTP_PORT = 25  # RFC 5321 §4.5.4.2: MX delivery is on port 25
# HTTPS: the AWS APIs a host calls (S3 for its manifest, SSM for its secrets and the SSM agent) and apt
# (Debian's EC2 images fetch from the https CDN mirror, cdn-aws.deb.debian.org).
HTTPS_PORT = 443
# Amazon VPC quotas, "Security groups": 60 inbound and 60 outbound rules per security group (the default,
# adjustable). A referenced prefix list counts as its *maximum* entries, not as one rule (VPC User Guide,
# "Reference prefix lists in your AWS resources": "the maximum number of entries for the prefix lists
# counts against the quota for the number of entries for the resource").
RULES_PER_DIRECTION = 60

Direction = Literal["ingress", "egress"]


@dataclass(frozen=True, slots=True)
class NetworkRule:
    """One security group rule: tcp `port` from (ingress) or to (egress) a peer.

    The peer is a CIDR the plan knows (`cidr`), or the Elastic IP of one of the plan's IPs (`ip`, its name;
    `address`, the plan's address for it, a placeholder until `pulumi up` allocates it), as a /32, or a set
    of them (`peers`: (IP name, planned address) pairs), which the component puts in one managed prefix
    list so a route's peers are one rule resource however many EIPs they have.
    """

    key: str  # stable resource name suffix, from config keys (pool, route, host, IP names), never positions
    direction: Direction
    port: int
    description: str  # AWS allows a-zA-Z0-9, spaces and ._-:/()#,@[]+=&;{}!$* in rule descriptions
    cidr: str | None = None
    ip: str | None = None
    address: str | None = None
    protocol: str = "tcp"
    peers: tuple[tuple[str, str], ...] = ()

    @property
    def quota_weight(self) -> int:
        """What the rule counts against the group's rule quota: a prefix list counts as its max entries
        (the component sizes it to exactly its peers), any other rule as one."""
        return len(self.peers) or 1


@dataclass(frozen=True, slots=True)
class HostNetwork:
    host: str
    ingress: tuple[NetworkRule, ...]
    egress: tuple[NetworkRule, ...]

    @property
    def rules(self) -> tuple[NetworkRule, ...]:
        return self.ingress + self.egress


@dataclass(frozen=True, slots=True)
class FeedAccess:
    """A sending host polls a bounce host's change feed: tcp FEED_PORT from the client's group to the bounce
    host's group (group references: private traffic only), an ingress rule on one and an egress on the other."""

    bounce_host: str
    client_host: str
    port: int


def plan_feed_access(plan: Plan) -> tuple[FeedAccess, ...]:
    """Every (bounce host, polling host) pair, in plan order (mailinfra.mta.enforcement.feed_urls)."""
    from mailinfra.mta.enforcement import feed_clients
    from mailinfra.mta.intake import FEED_PORT

    return tuple(FeedAccess(bounce.name, client.name, FEED_PORT)
                 for bounce in plan.hosts for client in feed_clients(plan, bounce))


def plan_host_network(plan: Plan, host: HostPlan) -> HostNetwork:
    """The security group rules of one host, ingress then egress, each in a stable order."""
    return HostNetwork(host.name, tuple(_ingress(plan, host)), tuple(_egress(plan, host)))


def check_rule_quota(network: HostNetwork) -> list[str]:
    """The directions whose rules exceed AWS's default quota per group, as "ingress: 64 > 60" (prefix lists
    counted at their max entries); AWS refuses the rule that crosses it (RulesPerSecurityGroupLimitExceeded)."""
    found = []
    for direction, rules in (("ingress", network.ingress), ("egress", network.egress)):
        weight = sum(rule.quota_weight for rule in rules)
        if weight > RULES_PER_DIRECTION:
            found.append(f"{direction}: {weight} > {RULES_PER_DIRECTION}")
    return found


def host_injection_ports(plan: Plan, host: HostPlan) -> dict[str, int]:
    """Where the app injects on this host: Postfix pool -> its instance's port (plan_instances; the primary
    on 25 refuses injection by design: mynetworks is loopback only), PowerMTA -> its one listener."""
    if host.mta == "powermta":
        return {"": powermta.SMTP_LISTENER_PORT}
    return {instance.pool: instance.port for instance in postfix.plan_instances(plan, host)}


def _ingress(plan: Plan, host: HostPlan) -> list[NetworkRule]:
    rules = []
    for pool, port in host_injection_ports(plan, host).items():
        # A Postfix pool's port admits only its stream's injectors (mynetworks of its instance).
        cidrs = postfix.stream_injectors(plan.stream(plan.pool(pool).stream), host) if pool else host.injection_cidrs
        for cidr in cidrs:
            # PowerMTA keeps the name the single port-25 rule always had (no replacement on upgrade).
            key = f"inject-{pool}-{cidr}" if pool else f"inject-{cidr}"
            what = f"pool {pool}" if pool else "PowerMTA"
            rules.append(NetworkRule(key, "ingress", port, f"SMTP injection ({what})", cidr=cidr))
    if host.accepts_bounces:
        # The return-path MX: bounces and complaints arrive from any receiver on the Internet (port 25).
        rules.append(NetworkRule("bounces", "ingress", SMTP_PORT, "bounces (MX)", cidr=WORLD))
    for route, ips in powermta.plan_route_peer_ips(plan, host).items():
        port = plan.route(route).port or SMTP_PORT
        # The peer reaches this host's EIP through the Internet gateway, which rewrites its source to the
        # peer's own EIP: the rule names those public addresses, not the peers' private ones. One rule per
        # route (a prefix list of its peers): one resource per peer EIP made prod's pmta3 14 rule resources.
        peers = tuple((name, plan.ip(name).address) for name in ips)
        if peers:
            rules.append(NetworkRule(f"peer-{route}", "ingress", port, f"route {route} from its senders' EIPs",
                                     peers=peers))
    return rules


def _egress(plan: Plan, host: HostPlan) -> list[NetworkRule]:
    ports = {SMTP_PORT: ["SMTP delivery to MX hosts"], HTTPS_PORT: ["HTTPS: AWS APIs (S3, SSM) and apt"]}
    targets: list[NetworkRule] = []
    for route in _routes_of(plan, host):
        port = route.port or SMTP_PORT
        if route.kind == "hosts":
            for target in (plan.host(name) for name in route.hosts if name != host.name):
                # The address the fallback connects to: the target's fqdn, whose A record is its first IP.
                ip = target.ips[0]
                targets.append(NetworkRule(f"route-{route.name}-{target.name}", "egress", port,
                                           f"route {route.name} to {target.name}", ip=ip,
                                           address=plan.ip(ip).address))
        else:
            # A relay or the SES endpoint is a name, not an address the plan knows (SES publishes no fixed
            # range for its SMTP endpoints): the route's port to anywhere.
            ports.setdefault(port, []).append(f"route {route.name}")
    world = [NetworkRule(f"egress-{port}", "egress", port, f"tcp/{port} out ({', '.join(what)})",
                         cidr=WORLD) for port, what in sorted(ports.items())]
    # A tls: dane host's own unbound recurses (mailinfra/mta/resolver.py): DNS to any name server.
    world += [NetworkRule(f"egress-dns-{protocol}", "egress", port, f"{protocol}/{port} out (resolver)",
                          cidr=WORLD, protocol=protocol) for protocol, port in resolver_egress(host)]
    return world + targets


def _routes_of(plan: Plan, host: HostPlan) -> list[RoutePlan]:
    """The routes the host's MTA really uses. PowerMTA reroutes only from backoff mode, which only throttle
    replies start (mailinfra.mta.powermta): a PowerMTA stream whose `fallback_on` lacks `throttle` renders no
    reroute, so its route gets no egress either."""
    streams = [plan.stream(s) for s in host.streams]
    if host.mta == "powermta":
        streams = [s for s in streams if "throttle" in s.fallback_on]
    names = dict.fromkeys(s.route for s in streams if s.route)
    return [plan.route(name) for name in names if name is not None]
