"""The lab's firewall is the deployment's security groups: what AWS would drop, the lab drops.

The running lab (tests/lab/conftest.py) has its firewall built from the resources the program declares
(mailinfra.lab.firewall). These tests re-build only the firewall, from a deployment with one blocker put
back (the injection rule on 25 only, as the old security group had it; a route port not opened; no A
record or no peer rule for a `hosts` route), show the lab then fails where AWS would, and restore it.

AWS drops what no rule admits without answering (VPC User Guide, "Security groups"): a client sees a
connect time-out, which is what `firewall.probe` reports as "timeout".
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mailinfra.deployment.ec2 import eip_mappings
from mailinfra.deployment.program import Deployment, Resource, deployment_config, run_deployment
from mailinfra.lab import firewall, mta
from mailinfra.lab import lab as lab_module
from mailinfra.lab.layout import DNS_ADDRESS, OUTSIDER_ADDRESS
from mailinfra.lab.namespace import in_namespace
from mailinfra.lab.report import read_arrivals
from mailinfra.model.load import NAMESPACE, load_stack
from mailinfra.mta.postfix import SMTP_CONNECT_TIMEOUT
from mailinfra.plan import build_plan
from tests.pulumi.conftest import generate_keys
from tests.tooling import stop_by_pid

pytestmark = [pytest.mark.lab, pytest.mark.slow]

INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
R53 = "aws:route53/record:Record"


def _deploy(mutate: Callable[[dict[str, Any]], None] | None = None) -> Deployment:
    """The dev stack's deployment (`pulumi up` under mocks) with fresh test keys; `mutate` edits the
    decoded `mailinfra:` config first. The network resources do not depend on the keys."""
    plan = build_plan(load_stack("dev"))
    keys = [(d, s, public, pem) for (d, s), (pem, public) in generate_keys(plan).items()]
    secrets = {r.password_secret: "lab-test" for r in plan.routes if r.password_secret}
    secrets |= {s.password_secret: "lab-test" for s in plan.seeds}  # the seeds' IMAP passwords (monitoring)
    config, secret_keys = deployment_config("dev", dkim_keys=keys, secrets=secrets)
    if mutate is not None:
        decoded = {k.removeprefix(f"{NAMESPACE}:"): json.loads(v) for k, v in config.items()
                   if k.startswith(f"{NAMESPACE}:") and v.startswith(("{", "["))}
        mutate(decoded)
        config.update({f"{NAMESPACE}:{k}": json.dumps(v) for k, v in decoded.items()})
    return run_deployment("dev", config, secret_keys)


@pytest.fixture(scope="module")
def deployment(lab: Any) -> Iterator[Deployment]:
    """GIVEN the deployment the lab's firewall was built from (the same network resources)."""
    built = _deploy()
    kept = (lab.layout.build_dir / "firewall.nft").read_text()
    present = firewall.namespace_addresses(lab.layout.namespace)
    assert firewall.render_ruleset(firewall.plan_filters(built), eip_mappings(built), unfiltered=[DNS_ADDRESS],
                                   present=present) == kept
    yield built
    lab_module.install_firewall(lab, built)


def _without(deployment: Deployment, drop: Callable[[Resource], bool]) -> Deployment:
    return dataclasses.replace(deployment, resources=tuple(r for r in deployment.resources if not drop(r)))


def _changed(deployment: Deployment, change: Callable[[Resource], Resource]) -> Deployment:
    return dataclasses.replace(deployment, resources=tuple(change(r) for r in deployment.resources))


def _state_targets(lab: Any) -> list[dict[str, Any]]:
    state = lab_module.require_running(lab)
    return list(state.info["targets"])


def test_the_firewall_is_in_the_namespace_and_admits_every_stream(lab: Any, deployment: Deployment) -> None:
    """Every pool instance greets a client from the injection CIDRs through the firewall."""
    listing = subprocess.run(in_namespace(lab.layout.namespace, ["nft", "list", "table", "ip", firewall.FILTER_TABLE]),
                             capture_output=True, text=True, check=True).stdout
    assert "host-mta1-inject-tx-10.20.0.0/16" in listing
    for target in _state_targets(lab):
        got = firewall.probe(lab.layout.namespace, lab.layout.injector_address, target["address"], target["port"])
        assert got["result"] == "open" and got["banner"].startswith("220"), target["pool"]


def test_outsider_is_dropped_by_the_firewall_and_refused_by_postfix(lab: Any, deployment: Deployment) -> None:
    """GIVEN a client outside every injection CIDR THEN the security group drops its connection; AND with the
    group opened to it (a wrong rule), Postfix still refuses to relay (5xx) and nothing arrives."""
    target = next(t for t in _state_targets(lab) if t["pool"] == "tx")
    assert firewall.probe(lab.layout.namespace, OUTSIDER_ADDRESS, target["address"], target["port"])["result"] \
        == "timeout"
    rule = next(r for r in deployment.of_type(INGRESS) if r.name == "host-mta1-inject-tx-10.20.0.0/16")
    opened = dataclasses.replace(rule, name="host-mta1-inject-outsider",
                                 inputs={**rule.inputs, "cidrIpv4": f"{OUTSIDER_ADDRESS}/32"})
    lab_module.install_firewall(lab, dataclasses.replace(deployment, resources=(*deployment.resources, opened)))
    try:
        entries = lab_module.send(lab, pool="tx", provider="yahoo", source=OUTSIDER_ADDRESS)
    finally:
        lab_module.install_firewall(lab, deployment)
    assert [e["accepted"] for e in entries] == [False]
    assert entries[0]["reply"].startswith("5")
    time.sleep(0.5)
    assert entries[0]["lab_id"] not in {a.get("lab_id") for a in read_arrivals(lab.layout.mail_dir)}


def test_injection_rule_on_25_only_blocks_every_stream(lab: Any, deployment: Deployment) -> None:
    """Blocker: the old group opened tcp/25 to the injection CIDRs, where only the primary listens (and
    refuses injection); every pool instance on 10025+ is then unreachable from the app servers."""
    def on_25(resource: Resource) -> Resource:
        if resource.type == INGRESS and "-inject-" in resource.name:
            return dataclasses.replace(resource, inputs={**resource.inputs, "fromPort": 25, "toPort": 25})
        return resource

    lab_module.install_firewall(lab, _changed(deployment, on_25))
    try:
        results = {t["pool"]: firewall.probe(lab.layout.namespace, lab.layout.injector_address, t["address"],
                                             t["port"])["result"] for t in _state_targets(lab)}
    finally:
        lab_module.install_firewall(lab, deployment)
    assert set(results.values()) == {"timeout"}, results


def _bound_source(lab: Any, deployment: Deployment, ip: str) -> str:
    """The address IP `ip` sends from in the lab: its private address when the host binds it, else its EIP."""
    present = firewall.namespace_addresses(lab.layout.namespace)
    public = lab.plan.ip(ip).address
    mapping = next(m for m in eip_mappings(deployment) if m.public == public)
    return mapping.private if mapping.private in present else mapping.public


def test_a_route_port_not_opened_blocks_the_secondary_route(lab: Any, deployment: Deployment) -> None:
    """Blocker: egress without the relay's port (587). GIVEN gmail refusing WHEN marketing sends to it THEN the
    fallback relay cannot be reached and the message stays queued; with the port open it arrives via the relay."""
    relay = next(r for r in lab.layout.routes if r.kind == "relay")
    source = _bound_source(lab, deployment, "ma1")
    closed = _without(deployment, lambda r: r.type == EGRESS and int(r.inputs["toPort"]) == relay.port)
    lab_module.install_firewall(lab, closed)
    lab_module.fault(lab, "gmail", "refuse")
    try:
        assert firewall.probe(lab.layout.namespace, source, relay.address, relay.port)["result"] == "timeout"
        sent = [e for e in lab_module.send(lab, pool="mkt-active", provider="gmail") if e["accepted"]]
        assert sent
        # A refused gmail, then the relay's connect timeout (rendered): the attempt must be over (deferred)
        # before the firewall opens and the queue is flushed.
        time.sleep(int(SMTP_CONNECT_TIMEOUT.removesuffix("s")) + 3)
        arrived = {a.get("lab_id") for a in read_arrivals(lab.layout.mail_dir)}
        assert not {e["lab_id"] for e in sent} & arrived
        lab_module.install_firewall(lab, deployment)
        assert firewall.probe(lab.layout.namespace, source, relay.address, relay.port)["result"] == "open"
        for _host, instance in lab_module.staged_instances(lab):
            if instance.pool == "mkt-active":
                mta.flush_queue(lab.layout.namespace, instance)
        lab_module.wait_for_arrivals(lab, [e["lab_id"] for e in sent], timeout=30)
    finally:
        lab_module.fault(lab, "gmail", "ok")
        lab_module.install_firewall(lab, deployment)
    via = {a["lab_id"]: a.get("via") for a in read_arrivals(lab.layout.mail_dir)}
    assert {via[e["lab_id"]] for e in sent} == {f"secondary:{relay.name}"}


# ---------------------------------------------------------------- a `hosts` route, with a stand-in target


def _with_hosts_route(config: dict[str, Any]) -> None:
    """dev plus a PowerMTA host mta2 carrying the mkt-cold pool, and bulk's fallback a `hosts` route to it
    (a route target runs PowerMTA, as in prod; the lab cannot run PowerMTA, hence the stand-in receiver)."""
    config["hosts"]["mta2"] = {**config["hosts"]["mta1"], "mta": "powermta"}
    config["pools"]["mkt-cold"]["hosts"] = ["mta2"]
    # A route host carries an IP of each pool of the streams it takes (overflow stays in stream and tier).
    config["pools"]["bulk"]["hosts"] = ["mta1", "mta2"]
    config["pools"]["bulk"]["ips"]["bk1"] = {**(config["pools"]["bulk"]["ips"]["bk1"] or {}), "host": "mta1"}
    config["pools"]["bulk"]["ips"]["bk2"] = {**(config["pools"]["bulk"]["ips"]["bk2"] or {}), "host": "mta2"}
    config["routes"]["spill"] = {"kind": "hosts", "hosts": ["mta2"]}
    config["streams"]["bulk"]["route"] = "spill"


@pytest.fixture(scope="module")
def routed() -> Deployment:
    return _deploy(_with_hosts_route)


def _next_hop(deployment: Deployment, host: str, pool: str) -> tuple[str, int]:
    manifest = json.loads(deployment.named(f"host-{host}-bundle").inputs["content"])
    main = next(f["content"] for f in manifest["files"] if f["path"] == f"/etc/postfix-{pool}/main.cf")
    found = re.search(r"(?m)^smtp_fallback_relay = \[([^\]]+)\]:(\d+)$", main)
    assert found, main
    return found[1], int(found[2])


def _a_record(deployment: Deployment, name: str) -> str | None:
    """The address Route53 would publish for `name` (an A record resource's single value), if any."""
    values = [r.inputs["records"] for r in deployment.of_type(R53)
              if r.inputs.get("type") == "A" and r.inputs.get("name") == name]
    return str(values[0][0]) if values else None


@pytest.fixture
def stand_in(lab: Any, routed: Deployment) -> Iterator[tuple[str, int]]:
    """A stand-in SMTP receiver at the address the route's A record names (mta2 runs no Postfix here)."""
    name, port = _next_hop(routed, "mta1", "bulk")
    address = _a_record(routed, name)
    assert address is not None, f"no A record for {name}"
    namespace = lab.layout.namespace
    interface = lab_module.require_running(lab).interface or "lo"
    # A host binds the private address behind its EIP (the firewall's DNAT sends the EIP's traffic there).
    listen = next((m.private for m in eip_mappings(routed) if m.public == address), address)
    added = [a for a in dict.fromkeys([address, listen]) if a not in firewall.namespace_addresses(namespace)]
    for extra in added:
        subprocess.run(["ip", "-n", namespace, "addr", "add", f"{extra}/32", "dev", interface], check=True)
    script = ("import socket,sys\ns=socket.create_server((sys.argv[1], int(sys.argv[2])))\n"
              "while True:\n c,_=s.accept(); c.sendall(b'220 stand-in for mta2 (PowerMTA)\\r\\n'); c.close()\n")
    server = subprocess.Popen(in_namespace(namespace, [sys.executable, "-c", script, listen, str(port)]))
    try:
        mta.wait_for_port(namespace, listen, port, "stand-in receiver")
        yield address, port
    finally:
        stop_by_pid(server)
        for extra in added:
            subprocess.run(["ip", "-n", namespace, "addr", "del", f"{extra}/32", "dev", interface], check=False)


def _route_attempt(lab: Any, deployment: Deployment, source: str) -> str:
    """What mta1's bulk fallback meets with `deployment` in force: it resolves `[name]:port` through the
    A record the deployment publishes (brackets: no MX lookup) and connects from `source` through both
    hosts' translated groups. "open", "timeout" (dropped), or "unresolvable" (no A record)."""
    name, port = _next_hop(deployment, "mta1", "bulk")
    address = _a_record(deployment, name)
    if address is None:
        return "unresolvable"
    lab_module.install_firewall(lab, deployment)
    got = firewall.probe(lab.layout.namespace, source, address, port)
    assert got["result"] != "open" or got["banner"].startswith("220 stand-in"), got
    return got["result"]


def test_hosts_route_needs_the_target_a_record_and_the_peer_rule(lab: Any, routed: Deployment,
                                                                stand_in: tuple[str, int],
                                                                deployment: Deployment) -> None:
    """mta1's bulk fallback `[mta2...]:25` resolves and connects from a bulk IP through mta1's egress and
    mta2's ingress (the peer rule admits mta1's EIPs); an outsider is dropped. Blockers put back: without
    the target's A record (the old plan) there is nothing to connect to; without the peer rule (the old
    group, 25 from the injection CIDRs only) the connection is dropped."""
    source = _bound_source(lab, routed, "bk1")
    name, port = _next_hop(routed, "mta1", "bulk")
    try:
        assert _route_attempt(lab, routed, source) == "open"
        assert firewall.probe(lab.layout.namespace, OUTSIDER_ADDRESS, stand_in[0], port)["result"] == "timeout"
        no_record = _without(routed, lambda r: r.type == R53 and r.inputs.get("name") == name)
        assert _route_attempt(lab, no_record, source) == "unresolvable"
        no_peer = _without(routed, lambda r: r.type == INGRESS and r.name.startswith("host-mta2-peer-"))
        assert _route_attempt(lab, no_peer, source) == "timeout"
    finally:
        lab_module.install_firewall(lab, deployment)


def test_lab_down_removes_the_ruleset_with_the_namespace(tmp_path: Path) -> None:
    """Netfilter state is per network namespace: deleting it (lab down) leaves no table behind."""
    namespace = "mi-test-nft"
    subprocess.run(["ip", "netns", "add", namespace], check=True)
    try:
        subprocess.run(in_namespace(namespace, ["nft", "add", "table", "ip", firewall.FILTER_TABLE]), check=True)
    finally:
        subprocess.run(["ip", "netns", "del", namespace], check=True)
    subprocess.run(["ip", "netns", "add", namespace], check=True)
    try:
        listing = subprocess.run(in_namespace(namespace, ["nft", "list", "ruleset"]), capture_output=True,
                                 text=True, check=True).stdout
    finally:
        subprocess.run(["ip", "netns", "del", namespace], check=True)
    assert firewall.FILTER_TABLE not in listing
