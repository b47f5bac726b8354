"""What a host's exporter needs to know, from the plan (pure): the exporter config rendered for the host.

A Postfix pool transport is one (IP, provider) pair (mailinfra.mta.postfix.transport_name) and logs under
its own syslog name, so a delivery line names its transport; the plan knows the rest (stream, pool, IP,
sending domain). The receiving provider comes from the recipient's domain, grouped as the mail flow groups
it (the plan's ProviderLimit.domains; every other domain is `default`).
"""

from __future__ import annotations

from mailinfra.metrics.exporter import DEFAULT_PROVIDER
from mailinfra.mta import postfix
from mailinfra.mta.powermta import vmta_name
from mailinfra.plan.model import HostPlan, Plan

# The exporter's port (the brief's contract; 9465 is free in Prometheus's default port allocation list,
# github.com/prometheus/prometheus/wiki/Default-port-allocations, next to the exporters' 91xx-99xx range).
EXPORTER_PORT = 9465
EXPORTER_CONFIG = "etc/mailinfra/metrics.json"
EXPORTER_UNIT = "mailinfra-metrics"
# The `ip` label of mail that left by the stream's secondary route (an isolation or an automatic reroute).
ROUTE_IP_LABEL = "route"
# Delivery latency buckets, seconds: from an immediate delivery to a day in the deferred queue (Postfix's
# default maximal_queue_lifetime is 5 days; our streams' queue_lifetime is at most a few days).
DELAY_BUCKETS_SECONDS = (0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600, 14400, 86400)


def provider_domains(plan: Plan) -> dict[str, str]:
    """Recipient domain -> receiving provider, from the plan's provider grouping."""
    result: dict[str, str] = {}
    for limits in plan.warmup:
        for provider in limits.providers:
            for domain in provider.domains:
                result.setdefault(domain, provider.provider)
    return dict(sorted(result.items()))


def transport_labels(plan: Plan, host: HostPlan) -> dict[str, dict[str, str]]:
    """Postfix transport (`<instance>/route` for the route) -> its labels (stream, pool, ip, domain, provider)
    for every pool instance here."""
    result: dict[str, dict[str, str]] = {}
    for instance in postfix.plan_instances(plan, host):
        # The DSN twins of the IPs' default transports (postfix.dsn_transports) leave from the same IP.
        for transport in (*instance.transports, *postfix.dsn_transports(instance)):
            result[transport.name] = {
                "stream": instance.stream.name, "pool": instance.pool, "ip": transport.ip,
                "domain": instance.stream.sending_domain, "provider": transport.limit.provider}
        if instance.route_transport is not None:
            # Every instance has its own `route` service (isolations, mailinfra-shaping): keyed by instance.
            # The provider sees the route's addresses, never this pool's: the IP label says so.
            result[f"{instance.name}/{instance.route_transport.name}"] = {
                "stream": instance.stream.name, "pool": instance.pool, "ip": ROUTE_IP_LABEL,
                "domain": instance.stream.sending_domain, "provider": DEFAULT_PROVIDER}
    return result


def listen_address(plan: Plan, host: HostPlan) -> str:
    """The host's private address as the plan names it: its first IP's planned address, which the component
    replaces by that IP's private address (components/mta_host.BIND_POSITIONS) — never a public one."""
    return plan.ip(host.ips[0]).address


def exporter_config(plan: Plan, host: HostPlan) -> dict[str, object]:
    """The JSON the exporter reads at start (mailinfra.metrics.config.load_config)."""
    if host.mta == "powermta":
        from mailinfra.metrics.pmta import ACCOUNTING_FILE

        # PowerMTA: its accounting file instead of Postfix logs and queues (mailinfra.metrics.pmta).
        return {"stack": plan.stack, "host": host.name, "mta": host.mta, "listen_private": listen_address(plan, host),
                "port": EXPORTER_PORT, "logs": [], "queues": [], "instance_pools": {}, "transports": {},
                "providers": provider_domains(plan), "delay_buckets_seconds": list(DELAY_BUCKETS_SECONDS),
                "accounting": {"path": ACCOUNTING_FILE, "vmtas": vmta_labels(plan, host)}}
    instances = postfix.plan_instances(plan, host)
    return {
        "stack": plan.stack,
        "host": host.name,
        "mta": host.mta,
        "listen_private": listen_address(plan, host),
        "port": EXPORTER_PORT,
        "logs": [{"instance": i.name, "path": postfix.instance_log(i)} for i in instances],
        # postqueue -c DIR -j per instance, the primary's (bounces, DSNs) included.
        "queues": [{"instance": "postfix", "config_dir": "/etc/postfix"}]
        + [{"instance": i.name, "config_dir": i.config_dir} for i in instances],
        "instance_pools": {i.name: i.pool for i in instances},
        "transports": transport_labels(plan, host),
        "providers": provider_domains(plan),
        "delay_buckets_seconds": list(DELAY_BUCKETS_SECONDS),
    }


def vmta_labels(plan: Plan, host: HostPlan) -> dict[str, dict[str, str]]:
    """VMTA -> stream, pool, ip, domain of every sending IP of a PowerMTA host."""
    result = {}
    for name in host.ips:
        ip = plan.ip(name)
        result[vmta_name(name)] = {"stream": ip.stream, "pool": ip.pool, "ip": ip.name,
                                   "domain": plan.stream(ip.stream).sending_domain}
    return result
