"""Where every lab piece lives: namespace name, addresses, runtime and build directories.

Pure: a Plan in, names and paths out. The plan's pool IPs are already documentation-range
stand-ins (203.0.113.0/24, 198.51.100.0/24, see mailinfra.plan.addresses), so the lab reuses
them as is; 192.0.2.0/24 (TEST-NET-1, RFC 5737), which the plan keeps free, carries the lab's own
infrastructure: DNS, simulated providers, secondary routes.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from mailinfra.plan.model import Plan

RUNTIME_ROOT = Path("/run/mailinfra-lab")
DNS_ADDRESS = "192.0.2.53"
# A client that is in no host's injection CIDRs: the "cannot relay" check connects from it.
OUTSIDER_ADDRESS = "192.0.2.250"
# The zone that names the lab's own servers (NS, provider MX hosts, routes).
LAB_ZONE = "mailinfra.lab"
# Recipient domains that do not take mail: one publishes a null MX (RFC 7505), one does not exist at all
# (NXDOMAIN from the lab zone's authoritative server). Mail to them must bounce, never use a route.
NULL_MX_DOMAIN = f"nullmx.{LAB_ZONE}"
NXDOMAIN_DOMAIN = f"no-such-domain.{LAB_ZONE}"


@dataclass(frozen=True, slots=True)
class Provider:
    """A simulated mailbox provider: recipients @domain, one MX host."""

    name: str
    domain: str
    mx_host: str
    address: str


@dataclass(frozen=True, slots=True)
class RouteServer:
    """The lab stand-in for a secondary route (relay, SES endpoint): listens where the plan points."""

    name: str
    kind: str
    smtp_host: str
    port: int
    address: str
    username: str | None


@dataclass(frozen=True, slots=True)
class LabLayout:
    stack: str
    namespace: str
    runtime_dir: Path
    build_dir: Path
    providers: tuple[Provider, ...]
    routes: tuple[RouteServer, ...]
    injector_address: str
    pool_addresses: tuple[str, ...]

    @property
    def keys_dir(self) -> Path:
        # Where the rendered KeyTable points once relocated under the lab root (see mta.relocate).
        return self.runtime_dir / "root/etc/opendkim/keys"

    @property
    def state_file(self) -> Path:
        return self.runtime_dir / "state.json"

    @property
    def control_dir(self) -> Path:
        return self.runtime_dir / "control"

    @property
    def mail_dir(self) -> Path:
        return self.build_dir / "mail"

    @property
    def zones_dir(self) -> Path:
        return self.build_dir / "zones"

    @property
    def sent_log(self) -> Path:
        return self.build_dir / "sent.jsonl"

    def provider(self, name: str) -> Provider:
        return next(p for p in self.providers if p.name == name)

    def route_addresses(self) -> tuple[str, ...]:
        return tuple(r.address for r in self.routes)

    def addresses(self) -> tuple[str, ...]:
        """Every address the namespace carries, each once."""
        infra = [DNS_ADDRESS, OUTSIDER_ADDRESS, self.injector_address]
        infra += [p.address for p in self.providers]
        infra += [r.address for r in self.routes]
        return tuple(dict.fromkeys([*infra, *self.pool_addresses]))


# The providers the lab simulates, under their real domains: the rendered Postfix picks its
# per-provider transports (and warmup limits) by these recipient domains, so the lab exercises
# them. The lab's Knot is authoritative for them inside the namespace only; nothing leaves it.
SIMULATED_PROVIDERS = (("gmail", "gmail.com"), ("yahoo", "yahoo.com"), ("outlook", "outlook.com"))
# What `mailinfra lab fault` can make a provider do (mailinfra.lab.providers implements each).
FAULT_MODES = ("ok", "throttle", "throttle-rcpt", "refuse", "silent", "reputation", "complaints", "postscreen")


def plan_layout(plan: Plan, build_root: Path = Path("build/lab"), runtime_root: Path = RUNTIME_ROOT,
                namespace: str | None = None) -> LabLayout:
    """The lab layout of one stack: fixed 192.0.2.x infrastructure, the plan's own pool addresses."""
    providers = tuple(
        Provider(name=name, domain=domain, mx_host=f"mx.{domain}", address=f"192.0.2.{10 + i}")
        for i, (name, domain) in enumerate(SIMULATED_PROVIDERS))
    routes = tuple(
        RouteServer(name=r.name, kind=r.kind, smtp_host=r.smtp_host or f"{r.name}.route.{LAB_ZONE}",
                    port=r.port or 25, address=f"192.0.2.{20 + i}", username=r.username)
        for i, r in enumerate(plan.routes) if r.kind in ("relay", "ses"))
    return LabLayout(
        stack=plan.stack,
        namespace=namespace or namespace_name(plan.stack),
        runtime_dir=runtime_root / plan.stack,
        build_dir=build_root / plan.stack,
        providers=providers,
        routes=routes,
        injector_address=injector_address(plan),
        pool_addresses=tuple(ip.address for ip in plan.ips),
    )


def namespace_name(stack: str) -> str:
    # Linux interface/namespace names are short; a stack path is reduced to its stem.
    stem = Path(stack).name.removeprefix("Pulumi.").removesuffix(".yaml")
    return f"mi-{stem}"[:15]


def injector_address(plan: Plan) -> str:
    """An address inside the first injection CIDR of the first host: the app servers' stand-in.

    The rendered mynetworks is not overlaid, so relaying from here exercises the real config.
    """
    for host in plan.hosts:
        for cidr in host.injection_cidrs:
            network = ipaddress.ip_network(cidr, strict=False)
            if network.version == 4 and network.num_addresses > 16:
                return str(network.network_address + 10)
    return "192.0.2.100"
