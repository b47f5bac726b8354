"""Suppression: what the hosts' bounce processor and lookup services need from AWS.

- The stack secret (HMAC key of the VERP tokens, Pulumi secret config `mailinfra:<bounces.suppression.
  verp_secret>`) as an SSM SecureString of each Postfix host's own, fetched at boot into
  mailinfra.mta.intake.VERP_SECRET_FILE: bounce hosts verify tokens with it, every host derives the change
  feed's key from it.
- With `bounces.suppression.store: dynamodb`, the table (mailinfra.suppression.dynamodb_store's schema:
  partition key `pk` (S), no sort key): on-demand (PAY_PER_REQUEST: bounce storms are bursty), TTL on
  `expires_at` (soft entries lapse without a sweeper; DynamoDB deletes expired items within days, so readers
  still check the expiry), point-in-time recovery (35 days of restores), server-side encryption, protected
  and retained (the list is the sender's memory of who must not be mailed: no `destroy` deletes it).
- IAM, as role-policy documents the hosts' roles attach (components/mta_host.py): a bounce host may read and
  write the table and drain its SES event queues; any other host may only read the table. Nothing more:
  no dynamodb:* and no other table, no sqs:SendMessage.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.tags import stack_tags
from mailinfra.errors import MailinfraError
from mailinfra.mta.intake import VERP_SECRET_FILE, suppression_table_name
from mailinfra.mta.network import FeedAccess
from mailinfra.plan.model import HostPlan, Plan

# What the processor's store calls (mailinfra.suppression.dynamodb_store: reads, conditional writes,
# transactions of those, the change feed's and the CLI's scans). TransactWriteItems is authorized per
# item action (the DynamoDB developer guide, "Using IAM with transactions"), so it needs no action of its own.
PROCESSOR_TABLE_ACTIONS = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
                           "dynamodb:ConditionCheckItem", "dynamodb:Query", "dynamodb:Scan")
# A sending host's lookup only reads (its replica's first load and later deltas).
LOOKUP_TABLE_ACTIONS = ("dynamodb:GetItem", "dynamodb:Query", "dynamodb:Scan")
# Draining a queue: receive, delete after applying, extend the visibility of a slow one; the URL by name.
QUEUE_ACTIONS = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility",
                 "sqs:GetQueueAttributes", "sqs:GetQueueUrl")
VERP_SECRET_OWNER = "root:postfix"  # noqa: S105 - an owner; the processor and lookup run as postfix


def verp_parameter_name(stack: str, host: str) -> str:
    """Per Pulumi stack and host, beside the host's other secrets (each role reads its own only)."""
    return f"/mailinfra/{stack}/{host}/suppression/verp-secret"


@dataclass
class SuppressionArgs:
    plan: Plan
    # The SES routes' event queues (ARNs), drained by the bounce hosts.
    event_queue_arns: Sequence[pulumi.Input[str]] = ()


class Suppression(pulumi.ComponentResource):
    def __init__(self, name: str, args: SuppressionArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mailinfra:suppression:Suppression", name, None, opts)
        plan = args.plan
        child = pulumi.ResourceOptions(parent=self)
        secret = verp_secret(plan)
        self.parameters: dict[str, list[aws.ssm.Parameter]] = {}
        self.deliveries: dict[str, list[tuple[str, str, str, str]]] = {}  # host -> (parameter, path, owner, mode)
        for host in (h for h in plan.hosts if h.mta == "postfix"):
            parameter = aws.ssm.Parameter(
                f"{name}-{host.name}-verp-secret", name=verp_parameter_name(plan.stack, host.name),
                type="SecureString", value=secret, description=f"VERP/feed secret of {host.fqdn}",
                tags=stack_tags(plan.environment, host=host.name), opts=child)
            self.parameters[host.name] = [parameter]
            self.deliveries[host.name] = [(verp_parameter_name(plan.stack, host.name), VERP_SECRET_FILE,
                                           VERP_SECRET_OWNER, "0640")]
        self.table: aws.dynamodb.Table | None = None
        if plan.intake.store == "dynamodb":
            self.table = aws.dynamodb.Table(
                f"{name}-table",
                name=suppression_table_name(plan.stack),
                billing_mode="PAY_PER_REQUEST",
                hash_key="pk",
                attributes=[aws.dynamodb.TableAttributeArgs(name="pk", type="S")],
                ttl=aws.dynamodb.TableTtlArgs(attribute_name="expires_at", enabled=True),
                point_in_time_recovery=aws.dynamodb.TablePointInTimeRecoveryArgs(enabled=True),
                server_side_encryption=aws.dynamodb.TableServerSideEncryptionArgs(enabled=True),
                tags=stack_tags(plan.environment),
                opts=pulumi.ResourceOptions(parent=self, protect=True, retain_on_delete=True),
            )
        table_arn = self.table.arn if self.table is not None else None
        queues = pulumi.Output.all(*args.event_queue_arns)
        # host -> the policy document its role attaches (only hosts that need one).
        self.host_policies: dict[str, pulumi.Output[str]] = {}
        for host in plan.hosts:
            if table_arn is None and not (host.accepts_bounces and args.event_queue_arns):
                continue
            self.host_policies[host.name] = pulumi.Output.all(table_arn, queues).apply(_policy_of(host))
        self.register_outputs({"table": self.table.name if self.table is not None else None})


def _policy_of(host: HostPlan) -> Callable[[list[Any]], str]:
    return lambda values: host_policy(host, values[0], values[1])


def host_policy(host: HostPlan, table_arn: str | None, queue_arns: Sequence[str]) -> str:
    """The suppression permissions of one host's role (see the module docstring)."""
    statements: list[dict[str, object]] = []
    if table_arn is not None:
        actions = PROCESSOR_TABLE_ACTIONS if host.accepts_bounces else LOOKUP_TABLE_ACTIONS
        statements.append({"Sid": "SuppressionTable", "Effect": "Allow", "Action": list(actions),
                           "Resource": table_arn})
    if host.accepts_bounces and queue_arns:
        statements.append({"Sid": "SesEventQueues", "Effect": "Allow", "Action": list(QUEUE_ACTIONS),
                           "Resource": sorted(queue_arns)})
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def verp_secret(plan: Plan) -> pulumi.Output[str]:
    """The stack secret from its Pulumi config key; at `pulumi up` it must be set (16 bytes at least)."""
    policy: Mapping[str, object] = dict(plan.intake.policy)
    key = str(policy.get("verp_secret") or "verp_secret")
    value = pulumi.Config("mailinfra").get(key)
    if value is None or len(value.encode()) < MIN_SECRET_BYTES:
        if pulumi.runtime.is_dry_run():
            # preview only: nothing is delivered for real
            return pulumi.Output.secret("preview-placeholder-not-a-secret")
        raise MailinfraError(
            f"{plan.source}: mailinfra:{key}: received {'nothing' if value is None else 'a shorter value'}, "
            f"expected a secret of at least {MIN_SECRET_BYTES} bytes "
            f"(pulumi config set --secret mailinfra:{key} \"$(openssl rand -hex 32)\")")
    return pulumi.Output.secret(value)


MIN_SECRET_BYTES = 16


@dataclass
class FeedAccessArgs:
    # Every (bounce host, polling host) pair (mailinfra.mta.network.plan_feed_access).
    access: Sequence[FeedAccess]
    # Host name -> its security group id (MtaHost.security_group_id).
    groups: Mapping[str, pulumi.Input[str]]


class FeedAccessRules(pulumi.ComponentResource):
    """The change feed's port between the hosts' groups: an ingress rule on each bounce host's group from each
    polling host's group, and the egress rule on the poller's group (egress is exactly its rules). A group
    reference admits the members' private addresses only (VPC User Guide, "Security group rules"), so the
    feed is reachable inside the VPC from the stack's own sending hosts and from nothing else."""

    def __init__(self, name: str, args: FeedAccessArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mailinfra:suppression:FeedAccessRules", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        for access in args.access:
            bounce, client = args.groups[access.bounce_host], args.groups[access.client_host]
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-{access.bounce_host}-from-{access.client_host}", security_group_id=bounce,
                referenced_security_group_id=client, ip_protocol="tcp", from_port=access.port, to_port=access.port,
                description=f"suppression feed polled by {access.client_host}", opts=child)
            aws.vpc.SecurityGroupEgressRule(
                f"{name}-{access.client_host}-to-{access.bounce_host}", security_group_id=client,
                referenced_security_group_id=bounce, ip_protocol="tcp", from_port=access.port, to_port=access.port,
                description=f"suppression feed of {access.bounce_host}", opts=child)
        self.register_outputs({"rules": len(args.access) * 2})
