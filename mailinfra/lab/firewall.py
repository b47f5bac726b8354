"""Every security group of the deployment as nftables rules inside the lab namespace, and the EIP NAT.

Built from the resources (mailinfra.deployment.security_groups, .ec2), not from the plan: a port the
deployment does not open, or a peer it does not admit, fails in the lab as it would on AWS.

Every lab address lives in one namespace, so lab traffic is locally delivered: a packet passes the
`output` hook as its sender sends it and the `input` hook as its receiver gets it (nftables wiki,
"Netfilter hooks"), and conntrack keeps one entry for the connection across both (loopback traffic is
not looked up twice: nf_conntrack_in, "Previously seen (loopback or untracked)? Ignore."). So:
- egress of a host: in `output`, packets from any of its addresses (private or EIP) opening a connection
  go through its egress rules; their destination is the one the sender addressed, before the NAT below
  rewrote it (`ct original ip daddr`), as AWS evaluates the egress rule on the packet leaving the ENI.
- ingress of a host: in `input`, packets to any of its addresses opening a connection go through its
  ingress rules; their source is the one the receiver sees, after the NAT below (an EIP, as on AWS).
- stateful, like a security group: `ct state established,related` passes both ways first.
- default deny: a new connection no rule admits is dropped (AWS drops; the client sees a time-out).
- traffic a host sends to itself never crosses its interface: not filtered, as on an instance.
- the lab's DNS server stands for the Amazon DNS server, which security groups do not filter (VPC User
  Guide, "Security groups": "don't filter traffic destined to and from ... Amazon Domain Name Services").
  The simulated providers, route servers and the injector are the Internet and the app servers: they
  have no security group, so only the hosts' own rules apply to their traffic.

NAT (mailinfra.deployment.ec2): AWS maps each EIP 1:1 to one private address of an ENI. The lab emulates
it with `dnat` EIP -> private (in `output`, for connections addressed to the EIP) and `snat` private ->
EIP (in `postrouting`, for connections from the private address to anything outside the VPC's private
addresses). A DNAT rule is installed only when its private address is on the lab interface: a lab host
that binds the EIP itself (not its private address) is then reached as before; the SNAT rule matches
only a private source, so it never applies to such a host either.

The rules live in the namespace; deleting the namespace (lab down) deletes them with it: netfilter state
is per network namespace.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from mailinfra.deployment.ec2 import EipMapping, eip_mappings, interface_addresses, network_interfaces
from mailinfra.deployment.program import Deployment
from mailinfra.deployment.security_groups import ALL_PROTOCOLS, GroupRule, rules_of, security_groups
from mailinfra.lab.namespace import LabError, in_namespace

FILTER_TABLE = "mailinfra_sg"
NAT_TABLE = "mailinfra-eip-nat"
NFT = "nft"


@dataclass(frozen=True, slots=True)
class HostFilter:
    """One network interface's addresses and the rules of the groups it carries, peers resolved to CIDRs."""

    name: str  # the interface resource (host-<name>-eni)
    addresses: tuple[str, ...]
    ingress: tuple[GroupRule, ...]
    egress: tuple[GroupRule, ...]


def plan_filters(deployment: Deployment) -> list[HostFilter]:
    """A filter per network interface of the deployment; rules naming a group become its members' addresses."""
    groups = security_groups(deployment)
    interfaces = network_interfaces(deployment)
    addresses = interface_addresses(deployment)
    members: dict[str, list[str]] = {}
    for interface_id, interface in interfaces.items():
        for group in interface.security_groups:
            members.setdefault(group, []).extend(addresses[interface_id])
    result = []
    for interface_id, interface in sorted(interfaces.items(), key=lambda item: item[1].name):
        ingress, egress = rules_of(groups, interface.security_groups)
        result.append(HostFilter(interface.name, addresses[interface_id], tuple(_resolve(ingress, members)),
                                 tuple(_resolve(egress, members))))
    return result


def _resolve(rules: Iterable[GroupRule], members: Mapping[str, list[str]]) -> list[GroupRule]:
    resolved = []
    for rule in rules:
        if rule.group is None:
            if rule.cidr is not None:
                resolved.append(rule)
            continue  # IPv6 peers (the lab is IPv4 only); prefix lists arrive expanded (security_groups.py)
        resolved += [GroupRule(rule.direction, rule.protocol, rule.from_port, rule.to_port, cidr=f"{a}/32",
                               name=rule.name) for a in members.get(rule.group, [])]
    return resolved


def render_ruleset(filters: Sequence[HostFilter], nat: Sequence[EipMapping], *, unfiltered: Sequence[str],
                   present: Iterable[str]) -> str:
    """The nftables script (`nft -f`): both tables replaced whole, so installing twice is installing once.

    `unfiltered`: addresses security groups do not filter (the VPC resolver's stand-in).
    `present`: addresses on the lab interface now (DNAT only to a private address that is there).
    """
    lines = [f"table ip {FILTER_TABLE} {{}}", f"delete table ip {FILTER_TABLE}",
             f"table ip {NAT_TABLE} {{}}", f"delete table ip {NAT_TABLE}", f"table ip {FILTER_TABLE} {{"]
    output = ["type filter hook output priority filter; policy accept;", "ct state established,related accept"]
    inputs = ["type filter hook input priority filter; policy accept;", "ct state established,related accept"]
    for address in unfiltered:
        output.append(f"ip daddr {address} accept")
        inputs.append(f"ip saddr {address} accept")
    sets, chains = [], []
    for index, host in enumerate(filters):
        if not host.addresses:
            continue
        own = f"@host_{index}"
        sets.append(_named_set(f"host_{index}", host.addresses))
        output.append(f"ip saddr {own} jump egress_{index}")
        inputs.append(f"ip daddr {own} jump ingress_{index}")
        chains.append((f"ingress_{index}", host.name, [f"ip saddr {own} accept",
                                                       *(_match(r, "ip saddr") for r in host.ingress)]))
        chains.append((f"egress_{index}", host.name, [f"ct original ip daddr {own} accept",
                                                      *(_match(r, "ct original ip daddr") for r in host.egress)]))
    lines += sets + _chain("output", output) + _chain("input", inputs)
    for name, comment, body in chains:
        lines += _chain(name, [*body, f'counter drop comment "{comment}: no rule admits it"'])
    lines.append("}")
    lines += _nat(nat, set(present))
    return "\n".join(lines) + "\n"


def _nat(nat: Sequence[EipMapping], present: set[str]) -> list[str]:
    private = sorted({m.private for m in nat}, key=ipaddress.IPv4Address)
    dnat = [f"ip daddr {m.public} dnat to {m.private}" for m in nat if m.private in present]
    snat = [f"ip saddr {m.private} ct original ip daddr != @private snat to {m.public}" for m in nat]
    return [f"table ip {NAT_TABLE} {{", *([_named_set("private", private)] if private else []),
            *_chain("output", ["type nat hook output priority -100;", *dnat]),
            *_chain("postrouting", ["type nat hook postrouting priority 100;", *(snat if private else [])]),
            "}"]


def _named_set(name: str, addresses: Iterable[str]) -> str:
    return f"  set {name} {{ type ipv4_addr; elements = {{ {', '.join(addresses)} }} }}"


def _chain(name: str, body: Sequence[str]) -> list[str]:
    return [f"  chain {name} {{", *(f"    {line}" for line in body), "  }"]


def _match(rule: GroupRule, peer: str) -> str:
    parts = [] if rule.cidr in (None, "0.0.0.0/0") else [f"{peer} {rule.cidr}"]
    if rule.protocol != ALL_PROTOCOLS:
        if rule.protocol in ("tcp", "udp") and rule.from_port is not None:
            ports = str(rule.from_port) if rule.from_port == rule.to_port else f"{rule.from_port}-{rule.to_port}"
            parts.append(f"{rule.protocol} dport {ports}")
        else:
            parts.append(f"ip protocol {rule.protocol}")
    return " ".join([*parts, "accept", f'comment "{rule.name}"'])


def namespace_addresses(namespace: str) -> set[str]:
    """IPv4 addresses on any interface of the namespace now."""
    out = subprocess.run(["ip", "-n", namespace, "-4", "-o", "addr", "show"], capture_output=True, text=True,
                         check=False).stdout
    return {line.split()[3].split("/")[0] for line in out.splitlines() if len(line.split()) > 3}


def install_firewall(namespace: str, deployment: Deployment, *, unfiltered: Sequence[str],
                     keep: Path | None = None) -> str:
    """Load the deployment's security groups and EIP NAT into the namespace; return the ruleset.

    `keep`: a file to write the ruleset to (the lab's build directory, for inspection)."""
    ruleset = render_ruleset(plan_filters(deployment), eip_mappings(deployment), unfiltered=unfiltered,
                             present=namespace_addresses(namespace))
    if keep is not None:
        keep.parent.mkdir(parents=True, exist_ok=True)
        keep.write_text(ruleset, encoding="utf-8")
    done = subprocess.run(in_namespace(namespace, [NFT, "-f", "-"]), input=ruleset, capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        raise LabError(f"nft -f (lab firewall): exit {done.returncode}: {done.stderr.strip()[:500]}")
    return ruleset


def remove_firewall(namespace: str) -> None:
    """Drop both tables (the namespace's removal at `lab down` drops them too)."""
    script = "".join(f"table ip {t} {{}}\ndelete table ip {t}\n" for t in (FILTER_TABLE, NAT_TABLE))
    subprocess.run(in_namespace(namespace, [NFT, "-f", "-"]), input=script, capture_output=True, text=True,
                   check=False)


_PROBE = """
import json, socket, sys
source, address, port, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
try:
    with socket.create_connection((address, port), timeout=timeout, source_address=(source, 0)) as s:
        s.settimeout(timeout)
        print(json.dumps({"result": "open", "banner": s.recv(512).decode(errors="replace").strip()}))
except socket.timeout:
    print(json.dumps({"result": "timeout"}))
except ConnectionRefusedError:
    print(json.dumps({"result": "refused"}))
except OSError as error:
    print(json.dumps({"result": "error", "error": str(error)}))
"""


def probe(namespace: str, source: str, address: str, port: int, timeout: float = 2.0) -> dict[str, str]:
    """Open a TCP connection from `source` to `address:port` inside the namespace and read the greeting:
    {"result": "open", "banner": ...}, or "timeout" (a dropped SYN, what a security group does), "refused"."""
    done = subprocess.run(in_namespace(namespace, [sys.executable, "-c", _PROBE, source, address, str(port),
                                                   str(timeout)]), capture_output=True, text=True, check=False,
                          timeout=timeout * 3 + 10)
    lines = done.stdout.strip().splitlines()
    if not lines:
        raise LabError(f"probe {source} -> {address}:{port}: {done.stderr.strip()[-300:]}")
    result: dict[str, str] = json.loads(lines[-1])
    return result
