"""AWS drift: Elastic IPs, their associations, instances and security groups against the plan.

Resources are found by the tags components/ put on them (`stack`, `host`, `ip`), never by position, so a
renamed or re-created resource shows up as missing/extra rather than silently matching. The stack is the
Pulumi stack (components/tags.py), not `environment`: a stack copied with `--copy-config-from` keeps its
original's environment, and would otherwise take the original's EIPs and hosts for its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from mailinfra.drift.model import DriftResult, Status
from mailinfra.mta.network import plan_host_network
from mailinfra.plan.model import HostPlan, IpPlan, Plan

ENV_TAG = "environment"
STACK_TAG = "stack"  # components/tags.py
HOST_TAG = "host"
IP_TAG = "ip"

Rule = tuple[str, int, int, str]  # protocol, from port, to port, CIDR (or PREFIX_LIST)
# A rule whose peer is a managed prefix list (a route's peers' EIPs, components/mta_host.py): compared as
# "some prefix list on this port" — its entries are the EIPs' addresses, checked by the EIP checks.
PREFIX_LIST = "prefix-list"


def expected_eip_tags(plan: Plan, ip: IpPlan) -> dict[str, str]:
    """The tags components/ip_pool.py writes on every EIP."""
    return {"Name": ip.helo, "stream": ip.stream, "pool": ip.pool, IP_TAG: ip.name, ENV_TAG: plan.environment,
            STACK_TAG: plan.stack}


def expected_ingress(plan: Plan, host: HostPlan) -> set[Rule]:
    """The ingress rules components/mta_host.py creates: the plan's (mailinfra.mta.network), one place.

    A rule admitting another host's EIP is expected only when the plan knows that address (an adopted IP):
    a new EIP's address is a placeholder until `pulumi up`; see `unknown_peer_ports`."""
    return {(rule.protocol, rule.port, rule.port, PREFIX_LIST if rule.peers else rule.cidr or f"{rule.address}/32")
            for rule in plan_host_network(plan, host).ingress
            if rule.cidr is not None or rule.peers or (rule.ip is not None and not plan.ip(rule.ip).placeholder)}


def unknown_peer_ports(plan: Plan, host: HostPlan) -> set[int]:
    """Ports of ingress rules that admit an EIP whose address the plan does not know yet: a live /32 rule
    on such a port is one of them, not drift."""
    return {rule.port for rule in plan_host_network(plan, host).ingress
            if rule.ip is not None and plan.ip(rule.ip).placeholder}


def check_aws(
    plan: Plan, *, region: str, endpoint: str | None = None, client: Any = None
) -> tuple[list[DriftResult], list[str]]:
    """Compare EIPs, associations, instances and security groups; API failures are named, not raised."""
    import boto3
    import botocore.exceptions

    where = f"AWS EC2 API ({endpoint or region})"
    ec2 = client or boto3.client("ec2", region_name=region, endpoint_url=endpoint)
    env_filter = [{"Name": f"tag:{STACK_TAG}", "Values": [plan.stack]}]
    try:
        addresses = ec2.describe_addresses(Filters=env_filter)["Addresses"]
        reservations = ec2.describe_instances(Filters=env_filter)["Reservations"]
        groups = ec2.describe_security_groups(Filters=env_filter)["SecurityGroups"]
        interfaces = ec2.describe_network_interfaces(Filters=env_filter)["NetworkInterfaces"]
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
        unknown = [DriftResult("aws", f"eip:{ip.name}", Status.UNKNOWN, detail=f"{where}: {error}") for ip in plan.ips]
        return unknown, [f"{where}: {type(error).__name__}: {error}"]
    instances = [i for r in reservations for i in r["Instances"] if i["State"]["Name"] != "terminated"]
    results = [*_check_instances(plan, instances), *_check_groups(plan, groups)]
    results += _check_eips(plan, addresses, instances, interfaces)
    return results, []


def _tags(resource: Mapping[str, Any]) -> dict[str, str]:
    # EC2 names the list TagSet on network interfaces and Tags everywhere else.
    return {t["Key"]: t["Value"] for t in resource.get("Tags", resource.get("TagSet", []))}


def _by_tag(resources: Iterable[Mapping[str, Any]], tag: str) -> dict[str, Mapping[str, Any]]:
    return {_tags(r)[tag]: r for r in resources if tag in _tags(r)}


def _check_eips(plan: Plan, addresses: list[Any], instances: list[Any], interfaces: list[Any]) -> list[DriftResult]:
    results = []
    by_ip = _by_tag(addresses, IP_TAG)
    host_of_instance = {i["InstanceId"]: _tags(i).get(HOST_TAG) for i in instances}
    host_of_eni = {n["NetworkInterfaceId"]: _tags(n).get(HOST_TAG) for n in interfaces}
    for ip in plan.ips:
        key = f"eip:{ip.name}"
        live = by_ip.get(ip.name)
        if live is None:
            results.append(
                DriftResult(
                    "aws",
                    key,
                    Status.MISSING,
                    ip.address,
                    "",
                    f"no Elastic IP tagged {IP_TAG}={ip.name}, {STACK_TAG}={plan.stack}",
                )
            )
            continue
        problems = []
        tags = _tags(live)
        for tag, want in expected_eip_tags(plan, ip).items():
            if tags.get(tag) != want:
                problems.append(f"tag {tag}: {want} -> {tags.get(tag, '(none)')}")
        if not ip.placeholder and live.get("PublicIp") != ip.address:
            problems.append(f"address {ip.address} -> {live.get('PublicIp')}")
        if ip.allocation_id and live.get("AllocationId") != ip.allocation_id:
            problems.append(f"allocation {ip.allocation_id} -> {live.get('AllocationId')}")
        attached = host_of_eni.get(live.get("NetworkInterfaceId", "")) or host_of_instance.get(
            live.get("InstanceId", "")
        )
        if attached != ip.host:
            problems.append(f"associated with {ip.host} -> {attached or 'nothing'}")
        results.append(
            DriftResult(
                "aws",
                key,
                Status.CHANGED if problems else Status.OK,
                ip.address,
                str(live.get("PublicIp", "")),
                "; ".join(problems),
            )
        )
    planned = {ip.name for ip in plan.ips}
    for name, live in sorted(by_ip.items()):
        if name not in planned:
            results.append(
                DriftResult(
                    "aws",
                    f"eip:{name}",
                    Status.EXTRA,
                    "",
                    str(live.get("PublicIp", "")),
                    f"Elastic IP tagged {IP_TAG}={name} is not in the plan",
                )
            )
    return results


def _check_instances(plan: Plan, instances: list[Any]) -> list[DriftResult]:
    results = []
    by_host = _by_tag(instances, HOST_TAG)
    for host in plan.hosts:
        live = by_host.get(host.name)
        key = f"instance:{host.name}"
        if live is None:
            results.append(
                DriftResult("aws", key, Status.MISSING, "running", "", f"no instance tagged host={host.name}")
            )
            continue
        state = live["State"]["Name"]
        problems = [] if state == "running" else [f"state running -> {state}"]
        if live.get("InstanceType") != host.instance_type:
            problems.append(f"type {host.instance_type} -> {live.get('InstanceType')}")
        results.append(
            DriftResult("aws", key, Status.CHANGED if problems else Status.OK, "running", state, "; ".join(problems))
        )
    planned = {h.name for h in plan.hosts}
    results += [
        DriftResult(
            "aws",
            f"instance:{name}",
            Status.EXTRA,
            "",
            live["State"]["Name"],
            f"instance tagged host={name} is not in the plan",
        )
        for name, live in sorted(by_host.items())
        if name not in planned
    ]
    return results


def _check_groups(plan: Plan, groups: list[Any]) -> list[DriftResult]:
    results = []
    by_host = _by_tag(groups, HOST_TAG)
    for host in plan.hosts:
        key = f"sg:{host.name}"
        want = expected_ingress(plan, host)
        live = by_host.get(host.name)
        if live is None:
            results.append(
                DriftResult("aws", key, Status.MISSING, _show(want), "", f"no security group tagged host={host.name}")
            )
            continue
        tolerated = unknown_peer_ports(plan, host)
        found = {r for r in _ingress(live) if r in want or not (r[1] in tolerated and r[3].endswith("/32"))}
        status = Status.OK if found == want else (Status.EXTRA if found > want else Status.CHANGED)
        detail = ", ".join(
            [f"-{_show({r})}" for r in sorted(want - found)] + [f"+{_show({r})}" for r in sorted(found - want)]
        )
        results.append(DriftResult("aws", key, status, _show(want), _show(found), detail))
    return results


def _ingress(group: Mapping[str, Any]) -> set[Rule]:
    rules = set()
    for permission in group.get("IpPermissions", []):
        protocol = str(permission.get("IpProtocol", ""))
        low, high = int(permission.get("FromPort", -1)), int(permission.get("ToPort", -1))
        for ranges in permission.get("IpRanges", []):
            rules.add((protocol, low, high, ranges["CidrIp"]))
        for ranges in permission.get("Ipv6Ranges", []):
            rules.add((protocol, low, high, ranges["CidrIpv6"]))
        if permission.get("PrefixListIds"):
            rules.add((protocol, low, high, PREFIX_LIST))
    return rules


def _show(rules: set[Rule]) -> str:
    return ", ".join(
        f"{p}/{lo}-{hi} from {cidr}" if lo != hi else f"{p}/{lo} from {cidr}" for p, lo, hi, cidr in sorted(rules)
    )
