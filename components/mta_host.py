"""MtaHost: one sending host — security group, ENI carrying one private IP per EIP, the instance,
its mail spool volume (queues and bounce mail, outliving any instance), its role (reads only its own
secrets and its own config manifest), its config manifest (an object in the stack's ConfigBundle bucket)
and the cloud-init user data that applies it.

The user data holds only what cannot change without a new instance: host name, MTA kind, region, bucket,
manifest key, packages and the static program that applies a manifest (mailinfra-apply-config). Everything
the plan changes — rendered files, secrets to fetch, marker fills, postmap, private addresses, postmulti
instances, services — is in the manifest. EC2 stops and starts an instance to change its user data, and
cloud-init would not re-run anyway; `pulumi up` updates the object instead, and `mailinfra-refresh-config`
(run through SSM Run Command) applies it on the host, removing what the previous manifest listed and the
new one does not.

Replacing a host (docs/pulumi-workflow.md, "Replacing a host") keeps the ENI, its private addresses and
EIP associations, and the spool volume; only the instance and the volume's attachment are new. The
options below make that sequence one `pulumi up --replace <instance urn>`:
- the instance is delete-before-replace: its primary ENI is ours (`primary_network_interface`, ForceNew
  in terraform-provider-aws) and cannot move to a new instance while the old one runs (a primary ENI is
  never detached); the old instance terminates first and releases it (delete_on_termination is false for
  an ENI given by id: the provider's `network_interface.delete_on_termination` defaults to false, and AWS
  allows true only for an ENI RunInstances creates itself).
- the ENI is delete-before-replace: its private addresses cannot be held by two ENIs of the subnet
  (CreateNetworkInterface fails with PrivateIpAddressInUse), so a new ENI can only follow the old one.
- the attachment is delete-before-replace (a volume attaches to one instance at a time) and stops the
  instance before detaching (`stop_instance_before_detaching`): the MTA shuts down and the file system is
  unmounted cleanly, no forced detach of a mounted volume.
- the spool volume is protected and retained: no `pulumi up` or `destroy` deletes queued mail.
- `disable_api_termination`: the console or CLI cannot terminate the instance by mistake; the provider
  clears the flag itself before it terminates (terraform-provider-aws resourceInstanceDelete calls
  disableInstanceAPITermination(false) first), so `pulumi up --replace` still works.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import hashlib
import ipaddress
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from operator import itemgetter
from pathlib import Path, PurePosixPath
from typing import Any

import pulumi
import pulumi_aws as aws

from components.config_bundle import ConfigBundle, bundle_key
from components.secondary_route import route_parameter_name
from components.tags import stack_tags
from mailinfra.errors import PlanError
from mailinfra.metrics.render import metrics_services
from mailinfra.model.load import NAMESPACE
from mailinfra.mta import enforcement, intake, opendkim, postfix, powermta
from mailinfra.mta.files import RenderedFile, secret_placeholder
from mailinfra.mta.host_code import DEBIAN_PACKAGES, HOST_PYTHON_PATH
from mailinfra.mta.limits_calendar import limits_anchor, plan_limits_calendar, render_limits_files
from mailinfra.mta.network import RULES_PER_DIRECTION, HostNetwork, NetworkRule, check_rule_quota
from mailinfra.mta.powermta_calendar import plan_config_calendar, render_config_calendar_files
from mailinfra.mta.render import render_host
from mailinfra.mta.resolver import resolver_packages
from mailinfra.placement.render import placement_units
from mailinfra.plan.disks import ROOT_SIZE_GIB, SPOOL_SIZE_GIB, VOLUME_TYPE
from mailinfra.plan.model import DkimKeyPlan, HostPlan, Plan
from mailinfra.plan.private_addresses import private_addresses
from mailinfra.shaping.plan import shaping_services

TEMPLATES = Path(__file__).resolve().parents[1] / "templates" / "cloud-init"
# Debian 12 images published by the Debian cloud team (https://wiki.debian.org/Cloud/AmazonEC2Image).
DEBIAN_OWNER = "136693071363"
DEBIAN_IMAGE = "debian-12-amd64-*"
# EC2 raw user data is limited to 16 KB; cloud-init reads gzip-compressed user data as well.
USER_DATA_LIMIT = 16 * 1024
# The mail spool volume: its own EBS volume, attached as this device name (the block device shows up as
# /dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol<id> on Nitro, as /dev/xvdf on Xen instances).
SPOOL_DEVICE_NAME = "/dev/sdf"
SPOOL_MOUNT = "/var/lib/mailinfra/spool"
# The bootstrap (user data) a host was launched with; see MtaHost, ignore_changes.
BOOTSTRAP_TAG = "mailinfra:bootstrap"

# python3-boto3: mailinfra-apply-config reads the manifest (S3) and the host's secrets (SSM) with the role.
PACKAGES = {
    "postfix": ["postfix", "opendkim", "opendkim-tools", "python3-boto3", "awscli", "curl",
                # mailinfra-shaping and the metrics exporter (mailinfra.metrics) import prometheus_client
                # (Debian 12: 0.16).
                "python3-prometheus-client"],
    # PowerMTA is licensed software, not in Debian: its package comes from the vendor's repository.
    "powermta": ["python3-boto3", "awscli", "curl"],
}
MANIFEST_FORMAT = 1  # FORMAT in templates/cloud-init/mailinfra-apply-config.py
# Postfix map types stored as an indexed database beside the source file (postmap(1)).
INDEXED_MAP = re.compile(r"\b(hash|btree|lmdb|cdb|dbm|sdbm):(/[^\s,]+)")
# The host's timers are listed too: a refresh enables what is new in the manifest, and cloud-init's own
# `enable --now` (user data) runs once, at first boot only (a running host would never get a new timer).
SERVICES = {"postfix": ["opendkim", "postfix", "mailinfra-limits.timer", "mailinfra-caps.timer",
                        "mailinfra-logrotate.timer"],
            "powermta": ["pmta", "mailinfra-pmta-config.timer"]}
# The units that run the MTA itself (Debian's postfix.service only groups the postfix@<instance> units):
# each requires the spool volume mounted first.
MTA_UNITS = {"postfix": "postfix@.service", "powermta": "pmta.service"}


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    """A system user (and its group, same name and id) created before the packages install, at a fixed id."""

    name: str
    uid: int
    home: str
    groups: tuple[tuple[str, int], ...] = ()  # more groups at fixed ids (postdrop)


# The spool volume outlives the instance and keeps numeric owners: a replacement must map them to the same
# users. Debian's postinsts create these accounts with `adduser --system` only when absent, and adduser
# refuses an existing account outside the system range (adduser.conf FIRST_SYSTEM_UID=100..LAST_SYSTEM_UID
# =999: "already exists, but is not a system user"), so the ids are system ids, away from both ends the
# dynamic allocators take first (adduser from 100 up, useradd -r and systemd-sysusers from 999 down).
SERVICE_ACCOUNTS = {
    "postfix": (ServiceAccount("postfix", 510, "/var/spool/postfix", groups=(("postdrop", 511),)),
                ServiceAccount("opendkim", 512, "/run/opendkim")),
    "powermta": (),
}
# Where the rendered files name an address the MTA binds (the IP's own sending address). On EC2 an
# EIP is NAT-mapped to one private address of the ENI; the host can bind only that private address.
BIND_POSITIONS = (
    re.compile(r"(-o smtp_bind_address=)([0-9.]+)"),  # Postfix master.cf transport
    re.compile(r"(?m)^(\s*smtp-source-host\s+)([0-9.]+)"),  # PowerMTA virtual-mta
    re.compile(r'("source_address": ")([0-9.]+)'),  # the lookup's feed polls (mailinfra.mta.enforcement)
    re.compile(r'("listen_private": ")([0-9.]+)'),  # the metrics exporter (mailinfra.metrics.labels)
)
# Where they name a bounce host's change feed by the planned address of its first IP: bound to that IP's
# PRIVATE address (the feed is polled inside the VPC: mailinfra.mta.enforcement.feed_urls).
FEED_POSITION = re.compile(rf"(http://)([0-9.]+)(:{intake.FEED_PORT}/)")
# Where they name another host's address: PowerMTA's <source ADDR/32> for the hosts of a `hosts` route.
PEER_POSITION = re.compile(r"(?m)^(<source\s+)([0-9.]+)(/32>)")
POWERMTA_PACKAGE = "/opt/mailinfra/PowerMTA.deb"
INSTALL = {
    "postfix": [],
    # The vendor's package must be on the image: without it the boot stops here with one line (cloud-init's
    # runcmd is one script; its status turns to error) instead of carrying on with no MTA installed.
    "powermta": [f"test -f {POWERMTA_PACKAGE} || {{ echo \"mailinfra - no PowerMTA package at {POWERMTA_PACKAGE}"
                 " (licensed, not in Debian - put the vendor's .deb there on the image) - PowerMTA not installed\""
                 " >&2; exit 1; }",
                 f"apt-get install -y {POWERMTA_PACKAGE}"],
}
# What the SSM agent needs (the AmazonSSMManagedInstanceCore actions) minus ssm:GetParameter(s), which
# that managed policy grants on "*" and would let a host read every other host's keys.
SSM_AGENT_ACTIONS = [
    "ssm:DescribeAssociation", "ssm:GetDeployablePatchSnapshotForInstance", "ssm:GetDocument",
    "ssm:DescribeDocument", "ssm:GetManifest", "ssm:ListAssociations", "ssm:ListInstanceAssociations",
    "ssm:PutInventory", "ssm:PutComplianceItems", "ssm:PutConfigurePackageResult",
    "ssm:UpdateAssociationStatus", "ssm:UpdateInstanceAssociationStatus", "ssm:UpdateInstanceInformation",
    "ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel", "ssmmessages:OpenControlChannel",
    "ssmmessages:OpenDataChannel", "ec2messages:AcknowledgeMessage", "ec2messages:DeleteMessage",
    "ec2messages:FailMessage", "ec2messages:GetEndpoint", "ec2messages:GetMessages", "ec2messages:SendReply",
]


@dataclass(frozen=True)
class HostFile:
    """A rendered MTA file: its content carries markers, never secrets; `fills` pairs each marker with the
    host's own SSM parameter whose value replaces it at boot."""

    path: str  # absolute on the host
    content: str
    mode: str = "0644"
    fills: tuple[tuple[str, str], ...] = ()  # (marker, SSM parameter name)
    postmap: str | None = None  # `type:path` when Postfix reads the file as an indexed map


@dataclass(frozen=True)
class HostSecret:
    """A secret the host fetches at boot: an SSM parameter of its own into a root-only file."""

    parameter: str
    path: str
    owner: str = "root:root"
    mode: str = "0600"
    directories: tuple[str, ...] = ()  # created 0700 and owned by `owner` (parents first)


@dataclass(frozen=True)
class PostfixInstance:
    """A postmulti instance of the host, as the plan names it."""

    name: str  # postfix-<pool>
    config_dir: str


@dataclass
class MtaHostArgs:
    host: HostPlan
    environment: str
    region: str
    allocation_ids: Mapping[str, pulumi.Input[str]]  # IP name -> EIP allocation id
    secret_parameters: Sequence[aws.ssm.Parameter]  # this host's own parameters, nobody else's
    config_bundle: ConfigBundle  # the stack's bucket: this host's rendered files become its object there
    secrets: Sequence[HostSecret] = ()
    files: Sequence[HostFile] = field(default_factory=list)
    # IP name -> the plan's address (a placeholder for a new EIP): what the rendered files bind.
    planned_addresses: Mapping[str, str] = field(default_factory=dict)
    # Planned address of another host's IP -> that EIP's public address (peers of a `hosts` route).
    peer_addresses: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    # Planned address of a bounce host's feed IP -> its private address (feed_private_address).
    feed_addresses: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    # IP name -> address key (mailinfra.plan.private_addresses) of every IP in this host's subnet: the
    # set its IPs' private addresses are allocated among. Defaults to this host's own IPs.
    subnet_address_keys: Mapping[str, str] = field(default_factory=dict)
    previous_names: Mapping[str, Sequence[str]] = field(default_factory=dict)  # IP name -> former names
    postfix_instances: Sequence[PostfixInstance] = ()  # registered and given queues at boot
    # The security group's rules (mailinfra.mta.network.plan_host_network); none given: no traffic at all.
    network: HostNetwork | None = None
    # More role policies (name -> policy document), e.g. the suppression table and queues (components/suppression.py).
    policies: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class SpoolDirectory:
    """A directory whose content is mail (a queue, a bounce mailbox): kept on the spool volume."""

    path: str
    owner: str = "root:root"
    mode: str = "0755"


def spool_directories(host: HostPlan, instances: Sequence[PostfixInstance]) -> tuple[SpoolDirectory, ...]:
    """Where the host's rendered configs put mail: Postfix's queues (the primary's, which receives the
    bounces, and each postmulti instance's: `queue_directory = /var/spool/<instance>` in
    instance-main.cf) and the bounce processor's store (mailinfra.mta.intake); PowerMTA's spool (its default
    /var/spool/pmta: config.j2 sets no `spool`) and its accounting files, the record of each bounce."""
    if host.mta == "powermta":
        return (SpoolDirectory("/var/spool/pmta", "pmta:pmta"), SpoolDirectory("/var/log/pmta", "pmta:pmta"))
    directories = [SpoolDirectory("/var/spool/postfix")]
    directories += [SpoolDirectory(f"/var/spool/{i.name}") for i in instances]
    if host.accepts_bounces:
        # The suppression store and the processor's ledger of reports already counted (mailinfra.mta.intake).
        directories.append(SpoolDirectory(intake.STATE_DIRECTORY, "postfix:postfix", "0700"))
    return tuple(directories)


class MtaHost(pulumi.ComponentResource):
    def __init__(self, name: str, args: MtaHostArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mailinfra:mta_host:MtaHost", name, None, opts)
        host = args.host
        if len(host.ips) > host.max_ips:
            # One ENI carries every sending IP; AWS caps private IPv4 addresses per ENI by instance type.
            raise pulumi.RunError(
                f"mailinfra:hosts.{host.name}.instance_type: received {host.instance_type!r} for "
                f"{len(host.ips)} IPs, expected a type whose ENI holds at least {len(host.ips)} addresses")
        readable = {s.parameter for s in args.secrets}
        unreadable = sorted({p for f in args.files for _, p in f.fills} - readable)
        if unreadable:
            # The role reads only the parameters delivered to this host: a fill from any other would fail at boot.
            raise pulumi.RunError(f"host {host.name}: rendered files need SSM parameters {', '.join(unreadable)}, "
                                  "expected each among the host's own secrets")
        tags = stack_tags(args.environment, Name=host.fqdn, host=host.name, mta=host.mta)
        subnet = host_subnet(host)
        group = self._security_group(name, args, subnet.vpc_id, tags)
        # IP name -> its private address, derived from the IP's name inside the subnet's CIDR (not from its
        # position in the ENI's list, which shifted when an IP was added or removed and replaced every
        # later EipAssociation). One mapping feeds the ENI, the associations and the rendered files' bind
        # addresses, so they cannot disagree. The CIDR comes from the subnet lookup the program already
        # makes (for its id and VPC) rather than from config: a configured CIDR could disagree with the
        # real subnet, and AWS would refuse addresses outside it only at `pulumi up`.
        keys = dict(args.subnet_address_keys) or {ip: ip for ip in host.ips}
        ip_names = tuple(host.ips)
        salt = address_salt(args)
        private = subnet.cidr_block.apply(lambda cidr: private_addresses(cidr, keys, ip_names, salt))
        interface = aws.ec2.NetworkInterface(
            f"{name}-eni",
            subnet_id=subnet.id,
            security_groups=[group.id],
            # `private_ips` is a set: the provider assigns and unassigns only the addresses that differ.
            # Not `private_ip_list`: on any change the provider unassigns every secondary address and
            # assigns the list again in order (terraform-provider-aws resourceNetworkInterfaceUpdate), and
            # unassigning a secondary address disassociates its Elastic IP — every IP would stop sending.
            private_ips=private.apply(lambda by_ip: sorted(by_ip.values(), key=ipaddress.IPv4Address)),
            description=f"sending addresses of {host.fqdn}",
            tags=tags,
            # Its addresses cannot be held by two ENIs: a replacement ENI can only follow the old one.
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True),
        )
        associations = []
        for ip_name in host.ips:
            associations.append(aws.ec2.EipAssociation(
                f"{name}-{ip_name}",
                allocation_id=args.allocation_ids[ip_name],
                network_interface_id=interface.id,
                private_ip_address=private.apply(itemgetter(ip_name)),
                # A renamed IP keeps its association (STYLE rule 2): same EIP, same private address.
                # Delete before replace: an EIP has one association at a time, and AssociateAddress for
                # an EIP already associated fails unless reassociation is allowed.
                opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True, aliases=[
                    pulumi.Alias(name=f"{name}-{old}") for old in args.previous_names.get(ip_name, ())]),
            ))
        # Queues and bounce mail: on a volume of their own in the host's AZ (a volume attaches only to an
        # instance of its AZ), protected and retained, so no instance replacement or `destroy` loses mail.
        spool = aws.ebs.Volume(
            f"{name}-spool",
            availability_zone=subnet.availability_zone,
            size=SPOOL_SIZE_GIB,
            type=VOLUME_TYPE,
            encrypted=True,
            tags={**tags, "Name": f"{host.fqdn} mail spool"},
            opts=pulumi.ResourceOptions(parent=self, protect=True, retain_on_delete=True),
        )
        # Only strings are computed inside apply (no resource): preview and up register the same resources.
        peers = sorted({a for f in args.files for a in _peer_positions(f.content)} & set(args.peer_addresses))
        feeds = sorted(args.feed_addresses)
        code_object = [args.config_bundle.code_object] if args.config_bundle.code_object is not None else []
        bundle = aws.s3.BucketObjectv2(
            f"{name}-bundle",
            bucket=args.config_bundle.bucket,
            key=bundle_key(host.name),
            content=pulumi.Output.all(private, spool.id, *(args.peer_addresses[a] for a in peers),
                                      *(args.feed_addresses[a] for a in feeds)).apply(
                lambda values: render_manifest(
                    args, values[0], dict(zip(peers, values[2:2 + len(peers)], strict=True)),
                    spool_volume_id=values[1], feeds=dict(zip(feeds, values[2 + len(peers):], strict=True)))),
            content_type="application/json",
            server_side_encryption="AES256",
            tags=tags,
            # The code object it names exists before any host can read the manifest.
            opts=pulumi.ResourceOptions(parent=self, depends_on=code_object),
        )
        object_arn = pulumi.Output.concat(args.config_bundle.arn, "/", bundle_key(host.name))
        profile, policies = self._instance_profile(name, args, object_arn, tags)
        ami = aws.ec2.get_ami_output(most_recent=True, owners=[DEBIAN_OWNER],
                                     filters=[aws.ec2.GetAmiFilterArgs(name="name", values=[DEBIAN_IMAGE])])
        # The bucket only (fixed for the stack's life): nothing the plan changes reaches the user data.
        user_data = args.config_bundle.bucket.apply(lambda bucket: render_user_data(host, args, bucket))
        bootstrap = user_data.apply(bootstrap_version)
        instance = aws.ec2.Instance(
            f"{name}-instance",
            ami=ami.id,
            instance_type=host.instance_type,
            primary_network_interface=aws.ec2.InstancePrimaryNetworkInterfaceArgs(
                network_interface_id=interface.id),
            iam_instance_profile=profile.name,
            # IMDSv2 only: a request forged through the MTA (SSRF) cannot read the role's credentials.
            metadata_options=aws.ec2.InstanceMetadataOptionsArgs(
                http_endpoint="enabled", http_tokens="required", http_put_response_hop_limit=1),
            # The root disk holds nothing that is not rebuilt at boot: mail is on the spool volume.
            root_block_device=aws.ec2.InstanceRootBlockDeviceArgs(
                encrypted=True, volume_type=VOLUME_TYPE, volume_size=ROOT_SIZE_GIB, delete_on_termination=True),
            disable_api_termination=True,
            # Only where a host follows the current bootstrap (its user data is not ignored): a new one is a
            # replacement (a fresh first boot that runs it), never a stop/start that cloud-init ignores.
            user_data_replace_on_change=host.bootstrap == "current",
            # No key pair: operators reach the host through SSM Session Manager, audited and keyless.
            user_data=user_data.apply(lambda text: None if _too_large(text) else text),
            user_data_base64=user_data.apply(lambda text: _gzip_b64(text) if _too_large(text) else None),
            tags=bootstrap.apply(lambda version: {**tags, BOOTSTRAP_TAG: version}),
            opts=pulumi.ResourceOptions(
                parent=self,
                # The primary ENI cannot move to a new instance while the old one runs (module docstring).
                delete_before_replace=True,
                # EC2 stops and starts an instance to change its user data, and cloud-init would not run
                # the new one anyway: a bootstrap change must not touch running hosts (both MX hosts at
                # once). The tag keeps the version the host was launched with (ignored too), so review
                # compares it with the `bootstrap` output. The engine replaces a resource from its ignored
                # inputs' old values too (pulumi/pulumi#2657), so a plain `--replace` relaunches the old
                # bootstrap: `bootstrap: current` on one host lifts the ignore for it and its change
                # replaces that host alone (user_data_replace_on_change).
                ignore_changes=(["ami", "userData", "userDataBase64", f'tags["{BOOTSTRAP_TAG}"]']
                                if host.bootstrap == "launched" else ["ami"]),
                # The first boot reads the bundle and the host's SSM parameters with the role (its policies
                # must exist) and reaches S3/SSM through its EIPs, the ENI's only way out.
                depends_on=[bundle, *policies, *args.secret_parameters, *associations, *code_object]),
        )
        # After the instance runs (a volume attaches to a running or stopped instance); the boot program
        # waits for the device before it starts the MTA. The instance declares no ebs_block_device: the
        # provider would then manage every non-root volume and see this attachment as drift
        # (terraform-provider-aws, volume_attachment docs).
        aws.ec2.VolumeAttachment(
            f"{name}-spool-attachment",
            device_name=SPOOL_DEVICE_NAME,
            volume_id=spool.id,
            instance_id=instance.id,
            # Stop the instance (a clean MTA shutdown and unmount) before detaching a mounted volume.
            stop_instance_before_detaching=True,
            # A volume attaches to one instance at a time.
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True),
        )
        self.instance_id = instance.id
        # What the monitoring host needs (components/monitoring_host.py): the group its scrape rule goes in and
        # the private address the exporter listens on (mailinfra.metrics.labels.listen_address: the first IP's).
        self.security_group_id = group.id
        self.exporter_address = private.apply(itemgetter(host.ips[0])) if host.ips else None
        self.security_group_id = group.id
        self.bootstrap_version = bootstrap
        self.spool_volume_id = spool.id
        self.register_outputs({"instance_id": instance.id, "security_group_id": group.id,
                               "network_interface_id": interface.id, "config_bundle_key": bundle.key,
                               "bootstrap_version": bootstrap, "spool_volume_id": spool.id})

    def _security_group(self, name: str, args: MtaHostArgs, vpc_id: pulumi.Input[str],
                        tags: dict[str, str]) -> aws.ec2.SecurityGroup:
        """The host's group: exactly the plan's rules (mailinfra.mta.network), one resource per rule."""
        child = pulumi.ResourceOptions(parent=self)
        host = args.host
        # The provider removes AWS's default allow-all egress rule: egress is exactly the rules below.
        group = aws.ec2.SecurityGroup(f"{name}-sg", vpc_id=vpc_id, description=f"MTA {host.fqdn}",
                                      tags=tags, opts=child)
        if args.network and (over := check_rule_quota(args.network)):
            raise pulumi.RunError(f"host {host.name}: security group rules over AWS's default quota per group "
                                  f"({'; '.join(over)}; a prefix list counts as its max entries), expected at "
                                  f"most {RULES_PER_DIRECTION} per direction: split the host's routes or streams")
        for rule in args.network.rules if args.network else ():
            kind = aws.vpc.SecurityGroupIngressRule if rule.direction == "ingress" else aws.vpc.SecurityGroupEgressRule
            listed = self._peer_list(name, args, rule, tags).id if rule.peers else None
            kind(f"{name}-{rule.key}", security_group_id=group.id, ip_protocol=rule.protocol,
                 from_port=rule.port, to_port=rule.port, description=rule.description, opts=child,
                 prefix_list_id=listed, cidr_ipv4=None if rule.peers else self._rule_cidr(args, rule))
        return group

    def _peer_list(self, name: str, args: MtaHostArgs, rule: NetworkRule,
                   tags: dict[str, str]) -> aws.ec2.ManagedPrefixList:
        """The peers' EIPs (/32 each) as one customer-managed prefix list, referenced by one rule.

        `max_entries` is exactly the plan's peer count: a referenced list counts as its max entries against
        the group's rule quota (VPC User Guide, prefix list quotas), so headroom would be quota spent on
        nothing; the provider resizes a list in place when a peer is added (ModifyManagedPrefixList
        MaxEntries; terraform-provider-aws managed_prefix_list update)."""
        for ip, address in rule.peers:
            if address not in args.peer_addresses:
                raise PlanError(f"host {args.host.name}: rule {rule.key} names IP {ip}, expected an IP of "
                                "another host (its Elastic IP)")
        entries = [pulumi.Output.from_input(args.peer_addresses[address]).apply(_prefix_list_entry(ip))
                   for ip, address in rule.peers]
        return aws.ec2.ManagedPrefixList(
            f"{name}-{rule.key}", name=f"{args.environment}-{args.host.name}-{rule.key}", address_family="IPv4",
            max_entries=len(rule.peers), entries=entries, tags=tags, opts=pulumi.ResourceOptions(parent=self))

    @staticmethod
    def _rule_cidr(args: MtaHostArgs, rule: NetworkRule) -> pulumi.Input[str]:
        if rule.cidr is not None:
            return rule.cidr
        if rule.address is None or rule.address not in args.peer_addresses:
            raise PlanError(f"host {args.host.name}: rule {rule.key} names IP {rule.ip}, expected an IP of "
                            "another host (its Elastic IP)")
        # Another host's EIP: its public address is known once allocated.
        return pulumi.Output.from_input(args.peer_addresses[rule.address]).apply(lambda a: f"{a}/32")

    def _instance_profile(self, name: str, args: MtaHostArgs, object_arn: pulumi.Output[str],
                          tags: dict[str, str]) -> tuple[aws.iam.InstanceProfile, list[aws.iam.RolePolicy]]:
        child = pulumi.ResourceOptions(parent=self)
        role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=json.dumps({"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}),
            tags=tags,
            opts=child,
        )
        policies = [aws.iam.RolePolicy(f"{name}-ssm-agent", role=role.id, policy=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": SSM_AGENT_ACTIONS, "Resource": "*"}]}), opts=child)]
        if args.secret_parameters:
            arns = pulumi.Output.all(*(p.arn for p in args.secret_parameters))
            policies.append(aws.iam.RolePolicy(
                f"{name}-own-secrets", role=role.id,
                policy=arns.apply(lambda a: _own_secrets_policy(a, args.region)), opts=child))
        # Its own bundle only (like its own SSM parameters): no s3:ListBucket, no other host's files.
        # And the host services' code (the same for every host, no secret in it).
        code = args.config_bundle.code_key
        bundle_read = aws.iam.RolePolicy(f"{name}-own-config", role=role.id, policy=pulumi.Output.all(
            object_arn, args.config_bundle.arn).apply(lambda arns: json.dumps({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "s3:GetObject",
                 "Resource": arns[0] if not code else [arns[0], f"{arns[1]}/{code}"]}]})), opts=child)
        policies += [aws.iam.RolePolicy(f"{name}-{key}", role=role.id, policy=document, opts=child)
                     for key, document in sorted(args.policies.items())]
        profile = aws.iam.InstanceProfile(f"{name}-profile", role=role.name, tags=tags, opts=child)
        return profile, [*policies, bundle_read]


def _prefix_list_entry(ip: str) -> Callable[[str], aws.ec2.ManagedPrefixListEntryArgs]:
    """An EIP's public address -> its prefix list entry (a /32, described by the IP's name)."""
    return lambda address: aws.ec2.ManagedPrefixListEntryArgs(cidr=f"{address}/32", description=ip)


def address_salt(args: MtaHostArgs) -> str:
    """What tells this stack's private addresses from another stack's in the same subnet: the host's
    `address_salt` when set ("" for a host deployed with the unsalted derivation), else project/stack."""
    return host_address_salt(args.host)


def host_address_salt(host: HostPlan) -> str:
    if host.address_salt is not None:
        return host.address_salt
    return f"{pulumi.get_project()}/{pulumi.get_stack()}"


def host_subnet(host: HostPlan) -> Any:
    """The subnet lookup of a host (its configured subnet, else the default subnet of its AZ)."""
    return (aws.ec2.get_subnet_output(id=host.subnet_id) if host.subnet_id else
            aws.ec2.get_subnet_output(default_for_az=True, availability_zone=host.availability_zone))


def feed_private_address(host: HostPlan, subnet_address_keys: Mapping[str, str]) -> pulumi.Output[str]:
    """The private address of a bounce host's feed IP (its first), by the derivation MtaHost gives its ENI
    (the same subnet lookup, keys and salt): another host's manifest polls its feed there."""
    keys = dict(subnet_address_keys) or {ip: ip for ip in host.ips}
    ip, salt = host.ips[0], host_address_salt(host)
    return pulumi.Output.from_input(host_subnet(host).cidr_block).apply(
        lambda cidr: private_addresses(cidr, keys, (ip,), salt)[ip])


def bootstrap_version(user_data: str) -> str:
    """A short digest of the user data: the instance's tag (as launched) and the `bootstrap` output (as
    the program renders it now); a host whose tag differs runs an older bootstrap."""
    return hashlib.sha256(user_data.encode()).hexdigest()[:16]


def _own_secrets_policy(arns: Sequence[str], region: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "ssm:GetParameter", "Resource": sorted(arns)},
        # SecureStrings are encrypted with the account's aws/ssm key; decrypt only through SSM.
        {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*",
         "Condition": {"StringEquals": {"kms:ViaService": f"ssm.{region}.amazonaws.com"}}},
    ]})


def _too_large(text: str) -> bool:
    return len(text.encode()) > USER_DATA_LIMIT


def _peer_positions(content: str) -> set[str]:
    return {m[2] for m in PEER_POSITION.finditer(content)}


def bind_private_addresses(content: str, private: Mapping[str, str], peers: Mapping[str, str],
                           feeds: Mapping[str, str] | None = None) -> str:
    """`content` with each address the MTA binds replaced by the private address of the same IP, and each
    peer address replaced by that peer EIP's public address.

    `private`: planned address -> private address, this host's IPs only. An address in a bind position that
    is not one of them would never bind on this host: a PlanError, not a silent mistake.
    `peers`: planned address -> public address. Peers stay PUBLIC: a `hosts` route targets this host by its
    fqdn (its EIP), and traffic to an EIP leaves the VPC through the internet gateway, which rewrites the
    sender's private source to its own EIP — so this host sees the peer's public address, never its private one.
    `feeds`: planned address -> private address of a bounce host's feed IP (FEED_POSITION); a feed at any
    other non-loopback address would be polled over the Internet, which its group does not admit: a PlanError.
    """
    def bind(match: re.Match[str]) -> str:
        if match[2] not in private:
            raise PlanError(f"rendered file binds {match[2]}, expected an address of this host "
                            f"({', '.join(sorted(private))})")
        return match[1] + private[match[2]]

    def feed(match: re.Match[str]) -> str:
        if match[2] == "127.0.0.1":
            return match[0]
        if feeds is None or match[2] not in feeds:
            raise PlanError(f"rendered file polls a change feed at {match[2]}, expected the planned address of a "
                            f"bounce host's feed IP ({', '.join(sorted(feeds or ())) or 'none given'})")
        return match[1] + feeds[match[2]] + match[3]

    for position in BIND_POSITIONS:
        content = position.sub(bind, content)
    content = FEED_POSITION.sub(feed, content)
    return PEER_POSITION.sub(lambda m: m[1] + peers.get(m[2], m[2]) + m[3], content)


def _gzip_b64(text: str) -> str:
    # mtime=0: the same user data always compresses to the same bytes, so no spurious diff.
    return base64.b64encode(gzip.compress(text.encode(), mtime=0)).decode()


@cache
def _template() -> Any:
    import jinja2

    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=False,  # noqa: S701 - YAML, not HTML
                                     undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return environment.get_template("user-data.yaml.j2")


@cache
def apply_program() -> str:
    """The on-host program that applies a manifest; static, so the user data does not change with the plan."""
    return (TEMPLATES / "mailinfra-apply-config.py").read_text(encoding="utf-8")


def render_manifest(args: MtaHostArgs, private: Mapping[str, str], peers: Mapping[str, str] | None = None,
                    spool_volume_id: str | None = None, feeds: Mapping[str, str] | None = None) -> str:
    """The host's config manifest (a JSON object; mailinfra-apply-config applies it): every rendered file
    bound to the private addresses paired with its EIPs (and its peers' public ones), with its secret
    marker fills and postmap type; the secrets to fetch (SSM parameter names, never values); the private
    addresses to put on the interface; the postmulti instances; the services; the spool volume to mount
    before the MTA starts and the directories kept on it. `private`: IP name -> address."""
    by_planned = {args.planned_addresses[name]: address for name, address in private.items()}
    manifest = {
        "format": MANIFEST_FORMAT,
        "host": args.host.name,
        # The host services' code is shipped as it is: no address of it is the plan's.
        "files": [{"path": f.path, "mode": f.mode,
                   "content": f.content if f.path.startswith(f"{HOST_PYTHON_PATH}/")
                   else bind_private_addresses(f.content, by_planned, peers or {}, feeds or {}),
                   "fills": [list(fill) for fill in f.fills], "postmap": f.postmap} for f in args.files],
        "secrets": [{"parameter": s.parameter, "path": s.path, "owner": s.owner, "mode": s.mode,
                     "directories": list(s.directories)} for s in args.secrets],
        # In the host's IP order (stable): the EIPs are NAT-mapped to these addresses of the ENI.
        "addresses": [private[name] for name in args.host.ips],
        "postfix_instances": [{"name": i.name, "config_dir": i.config_dir} for i in args.postfix_instances],
        # The suppression services first: Postfix refers to their sockets (it defers while they are absent).
        # The metrics exporter after the MTA (it reads its logs and queues); the automatic response last:
        # it edits and reloads the running instances (mailinfra.shaping).
        "services": [*enforcement.host_services(args.host), *SERVICES[args.host.mta],
                     *metrics_services(args.host), *placement_units(f.path for f in args.files),
                     *shaping_services(args.host)],
        # The host services' code (mailinfra.mta.host_code), one object of the bucket for every host:
        # applied with the manifest, so a release reaches a running host with its next refresh, and a
        # dropped module is removed like any dropped file.
        **({"code": {"key": args.config_bundle.code_key, "sha256": args.config_bundle.code_sha256}}
           if args.config_bundle.code_key else {}),
        # Generated on the host when missing (the bounce MX's STARTTLS key stays there).
        "certificates": [{"path": c.path, "names": list(c.names), "days": c.days}
                         for c in postfix.plan_host_certificates(args.host)],
    }
    if spool_volume_id is not None:
        manifest["spool"] = {
            "volume_id": spool_volume_id, "device_name": SPOOL_DEVICE_NAME, "mount": SPOOL_MOUNT,
            "directories": [{"path": d.path, "owner": d.owner, "mode": d.mode}
                            for d in spool_directories(args.host, args.postfix_instances)]}
    return json.dumps(manifest, indent=1) + "\n"


def render_user_data(host: HostPlan, args: MtaHostArgs, bucket: str) -> str:
    """The cloud-config for one host: packages, the apply program, its boot run against the host's manifest
    in `bucket`, the warmup limits service. Only what needs a new instance to change is in it."""
    key = bundle_key(host.name)
    return str(_template().render(
        environment=args.environment, host=host, region=args.region,
        # DEBIAN_PACKAGES: the third-party imports of the host services' code the manifest ships.
        packages=[*PACKAGES[host.mta], *DEBIAN_PACKAGES, *resolver_packages(host)],
        bucket=bucket, bundle_key=key,
        apply_program=apply_program(), apply_args=f"--region {args.region} --bucket {bucket} --key {key}",
        install=INSTALL[host.mta], dkim_socket_group=opendkim.SOCKET_GROUP,
        mta_units=MTA_UNITS[host.mta], accounts=SERVICE_ACCOUNTS[host.mta]))


def dkim_key_path(host: HostPlan, key: DkimKeyPlan) -> tuple[str, str]:
    """Where the host's MTA reads a private key (the path its rendered config names) and the signer's user."""
    if host.mta == "powermta":
        return powermta.dkim_key_file(key.domain, key.selector), "pmta:pmta"
    return opendkim.dkim_key_file(key.domain, key.selector), "opendkim:opendkim"


def dkim_host_secret(parameter: str, host: HostPlan, key: DkimKeyPlan) -> HostSecret:
    """The boot-time fetch of one DKIM key into the file the MTA reads."""
    path, owner = dkim_key_path(host, key)
    key_dir = powermta.KEY_DIR if host.mta == "powermta" else opendkim.KEY_DIR
    # The signer reads keys after dropping root: it must own the 0700 key directories (notes/mta.md).
    return HostSecret(parameter, path, owner, directories=(key_dir, str(PurePosixPath(path).parent)))


def rendered_files(plan_at: Callable[[dt.date], Plan], host: HostPlan, today: Plan) -> list[HostFile]:
    """The MTA's rendered files at their absolute paths, each secret marker paired with the host's own
    SSM parameter that replaces it at boot.

    A host's files are rendered as of a fixed date (its warmup day 0, limits_anchor) and carry the calendar
    the host applies day by day (Postfix: limits.json; PowerMTA: the whole config of each date it changes),
    so the config bundle does not change with the date of the run (it would be updated every day of a warmup).
    """
    files = render_host(plan_at(limits_anchor(today, host)), host.name)
    if host.mta == "postfix":
        files += render_limits_files(plan_limits_calendar(plan_at, host.name))
    else:
        files += render_config_calendar_files(plan_config_calendar(plan_at, host.name))
    maps = _hashed_maps(files)
    return [
        HostFile(path=f"/{f.path}", content=f.content, mode=f"{f.mode:04o}",
                 fills=tuple((secret_placeholder(name), secret_parameter(today, host, name))
                             for name in f.secret_placeholders),
                 postmap=maps.get(f"/{f.path}"))
        for f in files
    ]


def postfix_instances(plan: Plan, host: HostPlan) -> tuple[PostfixInstance, ...]:
    """The host's postmulti instances from the plan (the same list its default main.cf registers)."""
    if host.mta != "postfix":
        return ()
    return tuple(PostfixInstance(i.name, i.config_dir) for i in postfix.plan_instances(plan, host))


def secret_parameter(plan: Plan, host: HostPlan, name: str) -> str:
    """The SSM parameter (SecondaryRoute's, of this host) holding the secret a rendered file names `name`."""
    route_item = re.fullmatch(r"routes\.([^.]+)\.smtp_(username|password)", name)
    if route_item:
        return route_parameter_name(plan.stack, host.name, route_item[1], route_item[2])
    if name.startswith(f"{NAMESPACE}:"):
        key = name.removeprefix(f"{NAMESPACE}:")
        route = next((r for r in plan.routes if r.kind == "relay" and r.password_secret == key), None)
        if route is not None:
            return route_parameter_name(plan.stack, host.name, route.name, "password")
    raise PlanError(f"host {host.name}: rendered file names secret {name!r}, expected a route credential "
                    "(routes.<route>.smtp_username|smtp_password or the password_secret of a relay route)")


def _hashed_maps(files: Sequence[RenderedFile]) -> dict[str, str]:
    """Absolute path -> `type:path` of the rendered files a Postfix main.cf uses as indexed maps (they need
    postmap after every change; texthash/regexp maps are read as text and need none)."""
    maps: dict[str, str] = {}
    for file in (f for f in files if f.path.endswith("main.cf")):
        for kind, path in INDEXED_MAP.findall(file.content):
            maps[path] = f"{kind}:{path}"
    return maps
