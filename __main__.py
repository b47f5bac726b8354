"""The Pulumi program: stack config -> plan -> components. Everything is decided in the plan."""

from __future__ import annotations

import datetime as dt
import os
import sys
from collections.abc import Callable
from pathlib import Path

import pulumi

from mailinfra.errors import MailinfraError, UsageError
from mailinfra.model.load import NAMESPACE, Stack, decode_pulumi_config, validate_config
from mailinfra.plan import Plan
from mailinfra.plan.build import plan_dates


def stack_file_name(stack: str) -> str:
    """How messages name the stack's config: its file when there is one."""
    stack_file = Path(__file__).parent / "stacks" / f"Pulumi.{stack}.yaml"
    return f"stacks/{stack_file.name}" if stack_file.is_file() else f"Pulumi config of stack {stack}"


def stack_region(where: str) -> str:
    """The region of the stack's default AWS provider, asked of that provider (`aws.get_region`).

    The provider resolves it as it does for every resource: `aws:region` (stack file, `pulumi config
    set`, ESC `pulumiConfig`), else AWS_REGION / AWS_DEFAULT_REGION (ESC `environmentVariables`, CI),
    else the profile's shared config. Reading `aws:region` alone missed all but the first; a guessed
    fallback would put the hosts' KMS condition and the SES credentials in the wrong region."""
    import pulumi_aws as aws

    try:
        region = aws.get_region().region
    except Exception as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UsageError(f"{where}: aws:region: received nothing the AWS provider can use ({reason}), expected "
                         "the stack's region: pulumi config set aws:region us-east-1 (or AWS_REGION)") from None
    if not region:
        raise UsageError(f"{where}: aws:region: received nothing, expected the stack's region: "
                         "pulumi config set aws:region us-east-1 (or AWS_REGION)")
    return str(region)


def load_pulumi_config(stack: str, region: str) -> Stack:
    """The `mailinfra:` keys as Pulumi resolved them (stack file, `pulumi config set`, ESC), validated
    by the same code as `mailinfra validate`. Pulumi, not our YAML reader, is the authority here.
    `region`: the default provider's, so availability zones are checked against the region used."""
    config = pulumi.Config(NAMESPACE)
    raw = decode_pulumi_config(config.get)
    routes = raw.get("routes")
    for route in routes.values() if isinstance(routes, dict) else ():
        name = route.get("password_secret") if isinstance(route, dict) else None
        if name and config.get(name) is not None and not pulumi.runtime.is_config_secret(f"{NAMESPACE}:{name}"):
            raw[name] = "(plain text)"  # validate_config reports a password stored in clear
    return validate_config(raw, stack, stack_file_name(stack), other_config={"aws:region": region})


def deploy(plan: Plan, aws_region: str, plan_at: Callable[[dt.date], Plan]) -> dict[str, object]:
    """Instantiate every component from the plan; return the stack outputs. `plan_at(date)`: the same
    stack's plan as of another date (hosts render their files as of a fixed date, not the plan's)."""
    # Imported after validation so a bad config costs no provider import.
    from components.config_bundle import ConfigBundle, ConfigBundleArgs
    from components.dkim_keys import DkimKeys, DkimKeysArgs, delivered_keys, dkim_parameter_name
    from components.dns_records import DnsRecords, DnsRecordsArgs, forward_records, lookup_zone_ids
    from components.ip_pool import IpPool, IpPoolArgs, pool_resource_name
    from components.mta_host import (
        HostSecret,
        MtaHost,
        MtaHostArgs,
        dkim_host_secret,
        feed_private_address,
        postfix_instances,
        rendered_files,
    )
    from components.placement import PlacementSeeds, PlacementSeedsArgs
    from components.secondary_route import SecondaryRoute, SecondaryRouteArgs
    from components.suppression import FeedAccessArgs, FeedAccessRules, Suppression, SuppressionArgs
    from mailinfra.mta.enforcement import feed_address
    from mailinfra.mta.host_code import render_host_code_object
    from mailinfra.mta.network import plan_feed_access, plan_host_network
    from mailinfra.plan.private_addresses import subnet_address_keys

    env = plan.environment  # a label (tags); account-wide physical names use plan.stack
    zone_ids = lookup_zone_ids(plan)
    records = {r.key: r for r in plan.records}
    a_records = {ip.name: records[f"A:{ip.helo}"] for ip in plan.ips}
    # Every name a pool has or had: an IP's resources alias their old `pool-<pool>-<ip>` names under all.
    pool_names = sorted({name for pool in plan.pools for name in (pool.name, *pool.previous_names)})
    pools = {
        pool.name: IpPool(pool_resource_name(pool.name), IpPoolArgs(
            pool, [ip for ip in plan.ips if ip.pool == pool.name], env, plan.dns_provider, zone_ids, a_records,
            pool_names, {z.name: z for z in plan.zones}))
        for pool in plan.pools
    }
    allocation_ids = {n: a for p in pools.values() for n, a in p.allocation_ids.items()}
    new_addresses = {ip.address: pools[ip.pool].public_ips[ip.name] for ip in plan.ips if ip.placeholder}
    owned = {r.key for r in a_records.values()}
    DnsRecords("dns", DnsRecordsArgs(plan.dns_provider, forward_records(plan, owned), zone_ids, new_addresses,
                                     plan.zones))
    keys = DkimKeys("dkim", DkimKeysArgs(plan, plan.hosts))
    routes = [SecondaryRoute(f"route-{r.name}", SecondaryRouteArgs(plan, r, keys.private_keys, aws_region))
              for r in plan.routes]
    bundle = ConfigBundle("config", ConfigBundleArgs(env, host_code=render_host_code_object()))
    suppression = Suppression("suppression", SuppressionArgs(
        plan, [route.events_queue_arn for route in routes if route.events_queue_arn is not None]))
    # Where the hosts poll each bounce host's change feed: its feed IP's private address.
    feed_addresses = {feed_address(plan, b): feed_private_address(b, subnet_address_keys(plan, b.name))
                      for b in plan.hosts if b.accepts_bounces}
    seeds = PlacementSeeds("placement", PlacementSeedsArgs(plan))
    hosts = {}
    for host in plan.hosts:
        secrets = [dkim_host_secret(dkim_parameter_name(plan.stack, host.name, k), host, k)
                   for k in delivered_keys(plan, host)]
        secrets += [HostSecret(parameter, path) for r in routes for parameter, path in r.deliveries.get(host.name, [])]
        secrets += [HostSecret(parameter, path, owner, mode)
                    for parameter, path, owner, mode in suppression.deliveries.get(host.name, [])]
        parameters = keys.parameters.get(host.name, []) + [p for r in routes for p in r.parameters.get(host.name, [])]
        parameters += suppression.parameters.get(host.name, [])
        secrets += [HostSecret(parameter, path, owner, mode, dirs)
                    for parameter, path, owner, mode, dirs in seeds.deliveries.get(host.name, [])]
        parameters += seeds.parameters.get(host.name, [])
        hosts[host.name] = MtaHost(f"host-{host.name}", MtaHostArgs(
            host, env, aws_region, allocation_ids, parameters, bundle, secrets,
            rendered_files(plan_at, host, plan),
            planned_addresses={ip: plan.ip(ip).address for ip in host.ips},
            peer_addresses={ip.address: pools[ip.pool].public_ips[ip.name] for ip in plan.ips if ip.host != host.name},
            feed_addresses={a: p for a, p in feed_addresses.items()
                            if a not in {plan.ip(ip).address for ip in host.ips}},
            subnet_address_keys=subnet_address_keys(plan, host.name),
            previous_names={ip: plan.ip(ip).previous_names for ip in host.ips},
            postfix_instances=postfix_instances(plan, host), network=plan_host_network(plan, host),
            policies={"suppression": suppression.host_policies[host.name]}
            if host.name in suppression.host_policies else {}))
    access = plan_feed_access(plan)
    if access:
        FeedAccessRules("feed", FeedAccessArgs(access, {name: h.security_group_id for name, h in hosts.items()}))
    outputs: dict[str, object] = {}
    if plan.monitoring.host is not None:
        from components.monitoring_host import Exporter, MonitoringHost, MonitoringHostArgs
        from mailinfra.monitoring.prometheus import exporter_hosts

        # Every host exporter_hosts scrapes has IPs, so an exporter address (the first IP's private one).
        scraped = {name: hosts[name] for name, _ in exporter_hosts(plan)}
        monitoring = MonitoringHost("monitoring", MonitoringHostArgs(plan, plan.monitoring.host, env, {
            name: Exporter(mta.security_group_id, address)
            for name, mta in scraped.items() if (address := mta.exporter_address) is not None}))
        outputs["monitoring"] = {"private_ip": monitoring.private_ip, "instance_id": monitoring.instance_id}
    return outputs | {
        # The SQS queue of each SES route's bounce/complaint/delivery events (components/secondary_route.py).
        "ses_event_queues": {r.name: route.events_queue_url for r, route in zip(plan.routes, routes, strict=True)
                             if route.events_queue_url is not None},
        "pools": {name: pool.public_ips for name, pool in pools.items()},
        "streams": {s.name: {"sending_domain": s.sending_domain, "return_path": s.return_path,
                             "helo_names": [ip.helo for ip in plan.ips if ip.stream == s.name]}
                    for s in plan.streams},
        "hosts": {name: host.instance_id for name, host in hosts.items()},
        # The bootstrap each host would be launched with now; its instance's mailinfra:bootstrap tag says
        # the one it runs (docs/pulumi-workflow.md, "Replacing a host").
        "bootstrap": {name: host.bootstrap_version for name, host in hosts.items()},
    }


def run_date() -> dt.date:
    """The date the plan is built as of: today, or MAILINFRA_AS_OF (YYYY-MM-DD) to reproduce a run of
    another day (tests check that the hosts' user data does not depend on it)."""
    text = os.environ.get("MAILINFRA_AS_OF")
    if not text:
        return dt.date.today()
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"MAILINFRA_AS_OF: received {text!r}, expected a date YYYY-MM-DD") from None


try:
    region = stack_region(stack_file_name(pulumi.get_stack()))
    stack = load_pulumi_config(pulumi.get_stack(), region)
    plan_at = plan_dates(stack)
    plan = plan_at(run_date())
    # Before any resource is registered: a refusal after some have started leaves a half-done `up`.
    from components.dkim_keys import check_private_keys

    check_private_keys(plan, stack.source)
    for key, value in deploy(plan, region, plan_at).items():
        pulumi.export(key, value)
except MailinfraError as error:
    for line in str(error).splitlines():
        pulumi.log.error(line)
    sys.exit(1)
