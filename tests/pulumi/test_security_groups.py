"""Every host's security group admits what its MTA really listens on and sends to, under the mock runtime.

The expectations are read from what the host runs (its manifest's rendered master.cf, main.cf and PowerMTA
config) and from the resources the program declares (EIPs, A records), never from the rule planner:
- AWS security groups are default deny inbound and, with the provider removing the default allow-all
  egress rule (terraform-provider-aws, aws_security_group "NOTE on Egress rules"), exactly their egress
  rules outbound (VPC User Guide, "Security group rules"). A port the MTA listens on for injection that
  no ingress rule opens never receives a connection; a next hop whose port no egress rule opens is unreachable.
- A peer on a `hosts` route reaches the target's EIP through the Internet gateway, which translates its
  private source to its own EIP (VPC User Guide, "Internet gateways"): the target sees the peer's EIP.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from mailinfra.model.load import NAMESPACE
from tests.pulumi.conftest import STACKS, manifest_files, preview_config, resources_of, run_mock

INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
EIP = "aws:ec2/eip:Eip"
PREFIX_LIST = "aws:ec2/managedPrefixList:ManagedPrefixList"
R53 = "aws:route53/record:Record"
WORLD = "0.0.0.0/0"
LOOPBACK = ("127.0.0.0/8", "127.0.0.1/32")
HTTPS = 443  # the host fetches its manifest (S3), its secrets (SSM) and packages (apt) over HTTPS

Rule = tuple[int, str]  # (port, CIDR); every rule of ours is tcp with from_port == to_port


def _rules(run: dict[str, Any], host: str, token: str, protocol: str = "tcp", *,
           lists_as: str | None = None) -> set[Rule]:
    """(port, CIDR) of every rule of the host's group; a rule naming a managed prefix list admits each CIDR
    of the list's entries (VPC User Guide, "Managed prefix lists"), so it stands for one pair per entry
    (`lists_as`: one pair (port, lists_as) instead)."""
    # A preview run records no outputs (no ids to join on): the component names a rule's list as the rule.
    lists = {r["name"]: [e["cidr"] for e in r["inputs"].get("entries") or ()]
             for r in resources_of(run, PREFIX_LIST)}
    found = set()
    for rule in resources_of(run, token):
        if rule["parent"] != f"host-{host}" or rule["inputs"]["ipProtocol"] != protocol:
            continue
        inputs = rule["inputs"]
        assert inputs["fromPort"] == inputs["toPort"], rule["name"]
        if "prefixListId" in inputs:
            assert str(inputs["prefixListId"]).startswith("pl-"), rule["name"]
            if lists_as is not None:
                found.add((int(inputs["fromPort"]), lists_as))
                continue
            found |= {(int(inputs["fromPort"]), cidr) for cidr in lists[rule["name"]]}
        else:
            found.add((int(inputs["fromPort"]), inputs["cidrIpv4"]))
    return found


def _recursive_resolver(files: dict[str, dict[str, Any]]) -> bool:
    """A tls: dane host runs its own validating unbound (mailinfra/mta/resolver.py), which asks the
    Internet's name servers itself on 53 (udp, and tcp for large answers)."""
    return any(path.startswith("/etc/unbound/") for path in files)


def _hosts(run: dict[str, Any]) -> dict[str, str]:
    """host -> its MTA kind, from the instances' tags."""
    return {i["inputs"]["tags"]["host"]: i["inputs"]["tags"]["mta"]
            for i in resources_of(run, "aws:ec2/instance:Instance")}


def _postfix_listeners(files: dict[str, dict[str, Any]]) -> set[Rule]:
    """(port, client CIDR) of every Postfix smtpd that relays for that client: each instance's `inet`
    service in its master.cf, for each network in its main.cf `mynetworks` (permit_mynetworks)."""
    result = set()
    for path, file in files.items():
        if not re.fullmatch(r"/etc/postfix-[^/]+/master\.cf", path):
            continue
        service = re.search(r"(?m)^(\S+)\s+inet\s", file["content"])
        assert service, path
        port = 25 if service[1] == "smtp" else int(service[1])
        main = files[path.replace("master.cf", "main.cf")]["content"]
        networks = re.search(r"(?m)^mynetworks = (.*)$", main)
        assert networks, path
        result |= {(port, cidr.strip()) for cidr in networks[1].split(",") if cidr.strip() not in LOOPBACK}
    return result


def _powermta_listeners(files: dict[str, dict[str, Any]]) -> set[Rule]:
    """(port, client CIDR) of every <source> PowerMTA lets relay, on its smtp-listener port."""
    config = files["/etc/pmta/config"]["content"]
    listener = re.search(r"(?m)^smtp-listener \S+:(\d+)$", config)
    assert listener, "PowerMTA config names no smtp-listener"
    relaying = re.findall(r"(?ms)^<source ([^>]+)>\n(.*?)^</source>", config)
    return {(int(listener[1]), cidr) for cidr, body in relaying
            if "always-allow-relaying yes" in body and cidr not in LOOPBACK}


def _bounce_listener(files: dict[str, dict[str, Any]]) -> set[Rule]:
    """The primary Postfix of a bounce host: inet_interfaces = all, smtpd on 25, for any receiver."""
    main = files.get("/etc/postfix/main.cf", {}).get("content", "")
    return {(25, WORLD)} if re.search(r"(?m)^inet_interfaces = all$", main) else set()


@pytest.mark.parametrize("stack", STACKS)
def test_ingress_is_exactly_what_the_mta_accepts(stack, mock_runs):
    """Each injection listener (a Postfix instance's port from its master.cf, PowerMTA's smtp-listener) is
    open to exactly the networks the MTA lets relay, bounce hosts' port 25 to the world; nothing else."""
    run = mock_runs(stack)
    for host, mta in _hosts(run).items():
        files = manifest_files(run, host)
        expected = _powermta_listeners(files) if mta == "powermta" else _postfix_listeners(files)
        expected |= _bounce_listener(files)
        assert expected, host
        assert _rules(run, host, INGRESS) == expected, host


@pytest.mark.parametrize("stack", STACKS)
def test_no_postfix_host_admits_injection_on_the_primary(stack, mock_runs):
    """The primary instance on 25 relays for loopback only (mynetworks): port 25 open to an injection network
    admits nothing that could be injected; the world rule of a bounce host is the only one on 25."""
    run = mock_runs(stack)
    for host, mta in _hosts(run).items():
        if mta != "postfix":
            continue
        main = manifest_files(run, host)["/etc/postfix/main.cf"]["content"]
        assert re.search(r"(?m)^mynetworks = 127\.0\.0\.0/8$", main), host
        assert {cidr for port, cidr in _rules(run, host, INGRESS) if port == 25} <= {WORLD}, host


def _next_hops(files: dict[str, dict[str, Any]]) -> set[tuple[str, int]]:
    """(host, port) of every explicit next hop the MTA connects to: Postfix smtp_fallback_relay, PowerMTA
    smtp-hosts, both `[name]:port` (brackets: no MX lookup, the name's A record)."""
    hops = set()
    for file in files.values():
        for line in re.findall(r"(?m)^(?:\s*smtp-hosts|smtp_fallback_relay =|\s*-o smtp_fallback_relay=)(.*)$",
                               file["content"]):
            hops |= {(name, int(port)) for name, port in re.findall(r"\[([^\]]+)\]:(\d+)", line)}
    return hops


def _egress_allows(rules: set[Rule], port: int, address: str | None = None) -> bool:
    return (port, WORLD) in rules or (address is not None and (port, f"{address}/32") in rules)


@pytest.mark.parametrize("stack", STACKS)
def test_egress_is_delivery_https_and_each_next_hop(stack, mock_runs):
    """Egress: 25 to the world (MX delivery), 443 (AWS APIs, apt), and the port of every next hop the
    host's MTA names; no other port."""
    run = mock_runs(stack)
    for host in _hosts(run):
        rules = _rules(run, host, EGRESS)
        files = manifest_files(run, host)
        hops = _next_hops(files)
        assert _egress_allows(rules, 25) and _egress_allows(rules, HTTPS), host
        for name, port in hops:
            assert _egress_allows(rules, port, _a_record(run, name)), (host, name, port)
        dns = {53} if _recursive_resolver(files) else set()
        assert {port for port, _ in rules} == {25, HTTPS} | {port for _, port in hops} | dns, host
        assert _rules(run, host, EGRESS, "udp") == {(port, WORLD) for port in dns}, host


def _a_record(run: dict[str, Any], name: str) -> str | None:
    values = [r["inputs"]["records"] for r in resources_of(run, R53)
              if r["inputs"]["type"] == "A" and r["inputs"]["name"] == name]
    return values[0][0] if values and len(values[0]) == 1 else None


def _public_ips(run: dict[str, Any], plans: Any, stack: str, host: str) -> set[str]:
    """The EIPs of a host's IPs. The mock allocates each EIP at the plan's address for it
    (mailinfra.deployment.mock_runtime._Mocks), which the rendered files and records of a preview carry."""
    plan = plans(stack)
    return {plan.ip(e["inputs"]["tags"]["ip"]).address for e in resources_of(run, EIP)
            if plan.ip(e["inputs"]["tags"]["ip"]).host == host}


def _route_targets(run: dict[str, Any], plans: Any) -> list[tuple[str, str, Any, int]]:
    """(sender, next-hop name, target host plan, port) of every next hop that is one of prod's own hosts."""
    plan = plans("prod")
    found = []
    for sender in _hosts(run):
        for name, port in sorted(_next_hops(manifest_files(run, sender))):
            target = next((h for h in plan.hosts if h.fqdn == name), None)
            if target is not None:
                found.append((sender, name, target, port))
    assert found, "prod has hosts routes (com-marketing-overflow, net-marketing-overflow)"
    return found


def test_hosts_route_targets_have_an_a_record_at_their_eip(mock_runs, plans):
    """A `[fqdn]:port` next hop skips the MX lookup and resolves the name's A record (RFC 5321 §5.1):
    every route target named so has one, at one of its own EIPs."""
    run = mock_runs("prod")
    for sender, name, target, _ in _route_targets(run, plans):
        assert _a_record(run, name) in _public_ips(run, plans, "prod", target.name), (sender, name)


def test_hosts_route_targets_admit_their_peers_eips(mock_runs, plans):
    """The target's group admits the route's port from every EIP of each sending host (PowerMTA's fallback
    virtual-mta leaves from any of them), and the sender's group lets that port out to the target."""
    run = mock_runs("prod")
    for sender, name, target, port in _route_targets(run, plans):
        admitted = _rules(run, target.name, INGRESS)
        missing = {ip for ip in _public_ips(run, plans, "prod", sender) if (port, f"{ip}/32") not in admitted}
        assert not missing, (sender, target.name, sorted(missing))
        assert _egress_allows(_rules(run, sender, EGRESS), port, _a_record(run, name)), (sender, name)


def _dev_with_route_ports(relay: int, ses: int) -> tuple[dict[str, str], list[str]]:
    config, secret_keys = preview_config("dev")
    routes = json.loads(config[f"{NAMESPACE}:routes"])
    routes["relay"]["port"] = relay
    routes["ses"]["port"] = ses
    config[f"{NAMESPACE}:routes"] = json.dumps(routes)
    return config, secret_keys


@pytest.mark.parametrize(("relay", "ses"), [(2525, 2587), (465, 2465)])
def test_egress_follows_configured_route_ports(relay, ses, tmp_path):
    """A relay on 2525/465 and SES on 2587/2465 (ports SES documents for its SMTP endpoint) are reachable:
    the fixed 25/587/443 egress left them closed."""
    config, secret_keys = _dev_with_route_ports(relay, ses)
    run = run_mock("dev", tmp_path, config, secret_keys)
    assert "error" not in run, run.get("error")
    hops = _next_hops(manifest_files(run, "mta1"))
    assert {port for _, port in hops} == {relay, ses}
    assert _rules(run, "mta1", EGRESS) == {(25, WORLD), (HTTPS, WORLD), (relay, WORLD), (ses, WORLD)}


@pytest.mark.parametrize("stack", STACKS)
def test_drift_expects_the_ingress_the_program_declares(stack, mock_runs, plans):
    """`mailinfra drift` compares the live groups with exactly the rules `pulumi up` creates (a peer EIP
    the plan does not know yet, a placeholder, is tolerated on its port)."""
    from mailinfra.drift.aws_check import PREFIX_LIST as LISTED
    from mailinfra.drift.aws_check import expected_ingress, unknown_peer_ports

    run, plan = mock_runs(stack), plans(stack)
    for host in plan.hosts:
        # A live rule naming a prefix list is compared as such (describe_security_groups: PrefixListIds).
        declared = _rules(run, host.name, INGRESS, lists_as=LISTED)
        expected = {(low, cidr) for _, low, _, cidr in expected_ingress(plan, host)}
        unknown = {r for r in declared - expected if r[0] in unknown_peer_ports(plan, host) and r[1].endswith("/32")}
        assert declared - unknown == expected, host.name
