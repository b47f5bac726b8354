"""The monitoring host: Debian's prometheus and prometheus-alertmanager with the files the plan renders
(mailinfra.monitoring), scraping every MTA host's exporter over the private network.

The exporter port (mailinfra.metrics.labels.EXPORTER_PORT) of each MTA host is opened by one ingress rule on
that host's group whose peer is *this host's group* (`referenced_security_group_id`): only interfaces
carrying the monitoring group reach it, never 0.0.0.0/0 (VPC User Guide, "Security group rules": a rule
naming a security group admits the private addresses of the interfaces associated with it). The rules are
children of this component because the group exists only here; MTA hosts declare nothing about it.
"""

from __future__ import annotations

import base64
import gzip
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import yaml

from components.mta_host import DEBIAN_IMAGE, DEBIAN_OWNER
from components.tags import stack_tags
from mailinfra.metrics.labels import EXPORTER_PORT
from mailinfra.monitoring.prometheus import retention_bytes
from mailinfra.monitoring.render import render_monitoring
from mailinfra.mta.files import RenderedFile
from mailinfra.plan.disks import VOLUME_TYPE
from mailinfra.plan.model import Plan
from mailinfra.plan.monitoring import MonitoringHostPlan

PACKAGES = ["prometheus", "prometheus-alertmanager"]
HTTPS_PORT = 443  # apt (Debian's EC2 images use the https CDN mirror)
# The root disk holds the TSDB: the retention cap, plus the OS and packages (Debian's EC2 image is 2 GiB;
# the prometheus packages about 200 MB), plus room for compaction (it writes a block before deleting old ones).
SYSTEM_GIB = 8


@dataclass(frozen=True)
class Exporter:
    """One MTA host's exporter: its group (the rule goes there) and the private address it listens on."""

    security_group_id: pulumi.Input[str]
    private_address: pulumi.Input[str]


@dataclass(frozen=True)
class MonitoringHostArgs:
    plan: Plan
    host: MonitoringHostPlan
    environment: str
    exporters: Mapping[str, Exporter]  # MTA host name -> its exporter


class MonitoringHost(pulumi.ComponentResource):
    def __init__(self, name: str, args: MonitoringHostArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mailinfra:monitoring_host:MonitoringHost", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        host = args.host
        tags = stack_tags(args.environment, Name=f"{args.plan.stack} monitoring", host=host.name)
        subnet = (aws.ec2.get_subnet_output(id=host.subnet_id) if host.subnet_id else
                  aws.ec2.get_subnet_output(default_for_az=True, availability_zone=host.availability_zone))
        group = aws.ec2.SecurityGroup(f"{name}-sg", vpc_id=subnet.vpc_id, description="Prometheus and Alertmanager",
                                      tags=tags, opts=child)
        # Egress exactly: the exporters (each a /32 of its private address) and HTTPS for apt. No ingress:
        # operators reach Prometheus and Alertmanager through SSM port forwarding, nothing listens publicly.
        for mta, exporter in sorted(args.exporters.items()):
            aws.vpc.SecurityGroupEgressRule(
                f"{name}-scrape-{mta}", security_group_id=group.id, ip_protocol="tcp", from_port=EXPORTER_PORT,
                to_port=EXPORTER_PORT, description=f"scrape the metrics exporter of {mta}",
                cidr_ipv4=pulumi.Output.from_input(exporter.private_address).apply(lambda a: f"{a}/32"), opts=child)
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-exporter-{mta}", security_group_id=exporter.security_group_id, ip_protocol="tcp",
                from_port=EXPORTER_PORT, to_port=EXPORTER_PORT, referenced_security_group_id=group.id,
                description="metrics exporter, from the monitoring host only", opts=child)
        aws.vpc.SecurityGroupEgressRule(f"{name}-egress-{HTTPS_PORT}", security_group_id=group.id, ip_protocol="tcp",
                                        from_port=HTTPS_PORT, to_port=HTTPS_PORT, cidr_ipv4="0.0.0.0/0",
                                        description="HTTPS out (apt)", opts=child)
        smarthost_port = _smarthost_port(args.plan)
        if smarthost_port is not None:
            aws.vpc.SecurityGroupEgressRule(
                f"{name}-egress-{smarthost_port}", security_group_id=group.id, ip_protocol="tcp",
                from_port=smarthost_port, to_port=smarthost_port, cidr_ipv4="0.0.0.0/0",
                description="alert mail to the smarthost", opts=child)
        # An interface of its own: the group's members are what the exporters' rules admit (and the lab's
        # firewall resolves a group reference to its members' addresses the same way).
        interface = aws.ec2.NetworkInterface(f"{name}-eni", subnet_id=subnet.id, security_groups=[group.id],
                                             description=f"{args.plan.stack} monitoring", tags=tags, opts=child)
        ami = aws.ec2.get_ami_output(most_recent=True, owners=[DEBIAN_OWNER],
                                     filters=[aws.ec2.GetAmiFilterArgs(name="name", values=[DEBIAN_IMAGE])])
        addresses = pulumi.Output.all(**{mta: e.private_address for mta, e in args.exporters.items()})
        plan = args.plan
        # Only strings inside apply (no resource): preview and up register the same resources.
        user_data = addresses.apply(lambda private: _gzip_b64(render_user_data(
            render_monitoring(plan, {mta: str(address) for mta, address in private.items()}))))
        instance = aws.ec2.Instance(
            f"{name}-instance", ami=ami.id, instance_type=host.instance_type,
            primary_network_interface=aws.ec2.InstancePrimaryNetworkInterfaceArgs(network_interface_id=interface.id),
            metadata_options=aws.ec2.InstanceMetadataOptionsArgs(
                http_endpoint="enabled", http_tokens="required", http_put_response_hop_limit=1),
            root_block_device=aws.ec2.InstanceRootBlockDeviceArgs(
                encrypted=True, volume_type=VOLUME_TYPE, volume_size=root_size_gib(args.plan),
                delete_on_termination=True),
            # A config change (new host, new threshold) is a new first boot: cloud-init runs once per instance.
            user_data_base64=user_data, user_data_replace_on_change=True,
            tags=tags, opts=child)
        self.security_group_id = group.id
        self.private_ip = interface.private_ip
        self.instance_id = instance.id
        self.register_outputs({"security_group_id": group.id, "private_ip": interface.private_ip,
                               "instance_id": instance.id})


def root_size_gib(plan: Plan) -> int:
    return SYSTEM_GIB + math.ceil(retention_bytes(plan) * 1.5 / (1 << 30))


def _smarthost_port(plan: Plan) -> int | None:
    routing = plan.monitoring.routing
    if not routing.email_to or not routing.email_smarthost:
        return None
    _, _, port = routing.email_smarthost.rpartition(":")
    return int(port) if port.isdigit() else 25


def render_user_data(files: Sequence[RenderedFile]) -> str:
    """cloud-config: the two packages, the rendered files, then a restart so both daemons read them
    (Debian starts them on install, with its default config)."""
    document = {
        "package_update": True,
        "packages": PACKAGES,
        "write_files": [{"path": f"/{f.path}", "permissions": f"0{f.mode:o}", "content": f.content}
                        for f in files],
        "runcmd": [["systemctl", "restart", "prometheus", "prometheus-alertmanager"]],
    }
    return "#cloud-config\n" + yaml.safe_dump(document, sort_keys=False, width=1000)


def _gzip_b64(text: str) -> str:
    # mtime=0: the same user data always compresses to the same bytes (cloud-init reads gzip user data).
    return base64.b64encode(gzip.compress(text.encode(), mtime=0)).decode()
