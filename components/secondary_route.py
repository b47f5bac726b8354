"""SecondaryRoute: where a stream's mail goes when its own IPs are throttled or down.

- `ses`: an SESv2 identity per sending domain signing with *our* DKIM key and selector (BYODKIM), so
  the DKIM record the plan already publishes serves SES too; a custom MAIL FROM on
  `ses.<return_path>` (its MX and SPF are in the plan); an IAM user that may only call
  ses:SendRawEmail, whose SMTP password goes to the hosts as a secret. A configuration set per route
  (reputation metrics, SES suppression of bounced/complaining addresses) is every identity's *default*
  configuration set, and publishes bounces, complaints, deliveries, rejects and delays to an SNS topic
  that an encrypted SQS queue (with a dead-letter queue) subscribes: the bounce processor drains it.
- `relay`: the password is the Pulumi secret the route names; the hosts get a copy.
- `hosts`: other MtaHosts of ours; nothing extra to create.

Credentials reach a host only as SSM SecureStrings under `/mailinfra/<stack>/<host>/route/<route>/`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.aws_provider import regional_provider
from components.tags import stack_tags
from mailinfra.dns.plan import ses_mail_from
from mailinfra.plan.model import HostPlan, Plan, RoutePlan

# SES BYODKIM accepts 1024- or 2048-bit RSA keys only (SES Developer Guide, "Provide your own DKIM").
SES_BYODKIM_ALGORITHMS = ("rsa-2048",)

# What the bounce processor needs to know of a relayed message (SESv2 EventDestination MatchingEventTypes;
# the provider's valid values: SEND, REJECT, BOUNCE, COMPLAINT, DELIVERY, OPEN, CLICK, RENDERING_FAILURE,
# DELIVERY_DELAY, SUBSCRIPTION). SEND/OPEN/CLICK would only add volume: no tracking on relayed mail.
SES_EVENT_TYPES = ("BOUNCE", "COMPLAINT", "DELIVERY", "REJECT", "DELIVERY_DELAY")
# SES adds an address to the suppression list after a hard bounce or a complaint (SES Developer Guide,
# "Using the Amazon SES account-level suppression list"; valid reasons: BOUNCE, COMPLAINT).
SES_SUPPRESSED_REASONS = ("BOUNCE", "COMPLAINT")
# SQS keeps a message at most 14 days (1,209,600 s): the longest a stopped bounce processor can catch up.
EVENT_RETENTION_SECONDS = 14 * 24 * 3600
# An event the processor fails on 5 times is parked in the dead-letter queue instead of blocking the rest.
EVENT_MAX_RECEIVES = 5
SES_NAME_MAX = 64


def ses_configuration_set_name(stack: str, route: str) -> str:
    """Per Pulumi stack (configuration sets are account-wide per region), and at most 64 letters, digits, `-`
    and `_` (SESv2 CreateConfigurationSet): a longer name keeps its start and gets a digest of the whole. The
    topic and queues add `-events` / `-events-dlq` (SQS allows 80 characters, SNS 256)."""
    name = f"mailinfra-{stack}-{route}"
    if len(name) <= SES_NAME_MAX:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[:SES_NAME_MAX - len(digest) - 1]}-{digest}"


def route_parameter_name(stack: str, host: str, route: str, item: str) -> str:
    """Per Pulumi stack, not per `environment` (a label a copied stack keeps): SSM names are account-wide."""
    return f"/mailinfra/{stack}/{host}/route/{route}/{item}"


def smtp_user_name(stack: str, route: str) -> str:
    """IAM user names are unique per account: the stack name keeps two stacks of one account apart."""
    return f"mailinfra-{stack}-{route}-smtp"


def route_hosts(plan: Plan, route: RoutePlan) -> list[HostPlan]:
    """The hosts that hand mail to this route: those carrying a stream that uses it."""
    return [h for h in plan.hosts if set(h.streams) & set(route.streams)]


@dataclass
class SecondaryRouteArgs:
    plan: Plan
    route: RoutePlan
    # (org domain, selector) -> private key PEM (secret), from DkimKeys
    dkim_private_keys: Mapping[tuple[str, str], pulumi.Output[str]]
    # The region of the stack's default provider (aws.get_region(): aws:region, AWS_REGION, ...).
    aws_region: str


class SecondaryRoute(pulumi.ComponentResource):
    def __init__(self, name: str, args: SecondaryRouteArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mailinfra:secondary_route:SecondaryRoute", name, None, opts)
        route = args.route
        environment = args.plan.environment
        stack = args.plan.stack
        self.parameters: dict[str, list[aws.ssm.Parameter]] = {}
        # host -> (parameter name, file the host writes it to)
        self.deliveries: dict[str, list[tuple[str, str]]] = {}
        credentials: dict[str, pulumi.Output[str]] = {}
        # The SES events queue the bounce processor drains (ses routes only).
        self.events_queue_url: pulumi.Output[str] | None = None
        self.events_queue_arn: pulumi.Output[str] | None = None
        if route.kind == "ses":
            credentials = self._create_ses(name, args)
        elif route.kind == "relay" and route.password_secret:
            credentials = {"password": pulumi.Config("mailinfra").require_secret(route.password_secret)}
        for host in route_hosts(args.plan, route) if credentials else []:
            self.parameters[host.name] = [
                aws.ssm.Parameter(
                    f"{name}-{host.name}-{item}",
                    name=route_parameter_name(stack, host.name, route.name, item),
                    type="SecureString",
                    value=value,
                    description=f"{route.kind} route {route.name}: {item} for host {host.name}",
                    tags=stack_tags(environment, host=host.name, purpose=f"route-{route.name}"),
                    opts=pulumi.ResourceOptions(parent=self),
                )
                for item, value in sorted(credentials.items())
            ]
            self.deliveries[host.name] = [
                (route_parameter_name(stack, host.name, route.name, item),
                 f"/etc/mailinfra/routes/{route.name}/{item}")
                for item in sorted(credentials)
            ]
        self.register_outputs({"kind": route.kind, "smtp_host": route.smtp_host,
                               "events_queue_url": self.events_queue_url})

    def _create_ses(self, name: str, args: SecondaryRouteArgs) -> dict[str, pulumi.Output[str]]:
        plan, route = args.plan, args.route
        child = pulumi.ResourceOptions(parent=self)
        configuration_set = self._create_event_pipeline(name, plan.stack, plan.environment, route)
        identities = []
        for stream in (plan.stream(s) for s in route.streams):
            key = next(k for k in plan.dkim_keys
                       if k.domain == stream.org_domain and k.selector == stream.dkim_selector)
            if key.algorithm not in SES_BYODKIM_ALGORITHMS:
                raise pulumi.RunError(
                    f"mailinfra:domains.{key.domain}.dkim.selectors.{key.selector}.algorithm: received "
                    f"{key.algorithm!r}, expected rsa-2048 for a stream on SES route {route.name} (SES BYODKIM)")
            private = args.dkim_private_keys[(key.domain, key.selector)]
            identity = aws.sesv2.EmailIdentity(
                f"{name}-{stream.sending_domain}",
                email_identity=stream.sending_domain,
                region=route.region,
                # The identity's default configuration set applies to every message sent from it (SES
                # Developer Guide, "Managing default configuration sets"): no host has to add an
                # X-SES-CONFIGURATION-SET header, so none can forget it and send without bounce events.
                configuration_set_name=configuration_set.configuration_set_name,
                dkim_signing_attributes=aws.sesv2.EmailIdentityDkimSigningAttributesArgs(
                    domain_signing_selector=key.selector,
                    # SES wants the base64 DER body of the key, without the PEM armour lines.
                    domain_signing_private_key=private.apply(_pem_body),
                ),
                opts=child,
            )
            aws.sesv2.EmailIdentityMailFromAttributes(
                f"{name}-{stream.sending_domain}-mail-from",
                email_identity=identity.email_identity,
                mail_from_domain=ses_mail_from(stream),
                # Keep sending (from amazonses.com) if our MX is missing, rather than rejecting.
                behavior_on_mx_failure="USE_DEFAULT_VALUE",
                region=route.region,
                opts=child,
            )
            identities.append(identity)
        user = aws.iam.User(f"{name}-smtp", name=smtp_user_name(plan.stack, route.name),
                            tags=stack_tags(plan.environment, route=route.name), opts=child)
        aws.iam.UserPolicy(
            f"{name}-smtp-send",
            user=user.name,
            # Mail from an identity with a configuration set is authorized against both resources: without the
            # set's ARN every send fails "not authorized to perform ses:SendRawEmail on resource
            # ...:configuration-set/..." (Service Authorization Reference, SES: SendRawEmail takes
            # configuration-set and identity; seen in aws/aws-cdk#34402, medplum/medplum#10102).
            policy=pulumi.Output.all(configuration_set.arn, *(i.arn for i in identities)).apply(_send_only_policy),
            opts=child,
        )
        key_opts = child
        if route.region and args.aws_region != route.region:
            # The SMTP password is derived for one region (SES "Obtaining SMTP credentials"): the one
            # of the provider that creates the access key (terraform-provider-aws internal/service/iam/access_key.go:
            # sesSMTPPasswordFromSecretKeySigV4(secret, meta.(*conns.AWSClient).Region)). It carries every aws:
            # setting of the stack (profile, assumeRoles, allowedAccountIds...), only the region differs.
            regional = regional_provider(f"{name}-region", route.region, child)
            key_opts = pulumi.ResourceOptions(parent=self, provider=regional)
        access_key = aws.iam.AccessKey(f"{name}-smtp-key", user=user.name, opts=key_opts)
        # ses_smtp_password_v4 is a secret output in the provider schema; wrap it anyway so the
        # guarantee does not depend on it (the mock runtime, for one, does not apply that marking).
        return {"username": pulumi.Output.secret(access_key.id),
                "password": pulumi.Output.secret(access_key.ses_smtp_password_v4)}

    def _create_event_pipeline(self, name: str, stack: str, environment: str,
                               route: RoutePlan) -> aws.sesv2.ConfigurationSet:
        """Configuration set -> SNS topic -> SQS queue (+ DLQ), all in the route's SES region: an event
        destination publishes only to a topic of its own region (SES Developer Guide, event destinations)."""
        child = pulumi.ResourceOptions(parent=self)
        region = route.region
        tags = stack_tags(environment, route=route.name, purpose="ses-events")
        physical = ses_configuration_set_name(stack, route.name)
        configuration_set = aws.sesv2.ConfigurationSet(
            f"{name}-configuration-set",
            configuration_set_name=physical,
            region=region,
            reputation_options=aws.sesv2.ConfigurationSetReputationOptionsArgs(reputation_metrics_enabled=True),
            sending_options=aws.sesv2.ConfigurationSetSendingOptionsArgs(sending_enabled=True),
            suppression_options=aws.sesv2.ConfigurationSetSuppressionOptionsArgs(
                suppressed_reasons=list(SES_SUPPRESSED_REASONS)),
            tags=tags,
            opts=child,
        )
        # Bounce and complaint events name recipients: encrypted at rest with a key of our own. SNS's AWS managed
        # key (alias/aws/sns) cannot be used here: its policy cannot be changed, and SES may publish to an
        # encrypted topic only when the key policy lets ses.amazonaws.com kms:GenerateDataKey* and kms:Decrypt
        # (SES Developer Guide, "Set up an Amazon SNS event destination for event publishing"; SNS Developer
        # Guide, "Encryption at rest").
        key = aws.kms.Key(
            f"{name}-events-key", description=f"SES events of {physical}", region=region,
            enable_key_rotation=True,  # yearly rotation of the key material (KMS Developer Guide, "Rotating keys")
            policy=configuration_set.arn.apply(_events_key_policy), tags=tags, opts=child)
        topic = aws.sns.Topic(f"{name}-events", name=f"{physical}-events", kms_master_key_id=key.arn,
                              region=region, tags=tags, opts=child)
        # SES publishes to the topic as the service principal: the topic's policy must grant it SNS:Publish,
        # new topic or existing (SES Developer Guide, "Set up an Amazon SNS event destination for event
        # publishing"), scoped to this configuration set (aws:SourceArn) so no other sender can use it.
        aws.sns.TopicPolicy(
            f"{name}-events-topic-policy", arn=topic.arn, region=region,
            policy=pulumi.Output.all(topic.arn, configuration_set.arn).apply(lambda arns: _ses_publish_policy(*arns)),
            opts=child)
        # SSE-SQS, not SSE-KMS: SNS can deliver to a KMS-encrypted queue only with a customer managed key whose
        # policy grants it (SQS Developer Guide, "Key management"); SSE-SQS needs no key policy at all.
        dead_letters = aws.sqs.Queue(
            f"{name}-events-dlq", name=f"{physical}-events-dlq",
            region=region, sqs_managed_sse_enabled=True, message_retention_seconds=EVENT_RETENTION_SECONDS,
            tags=tags, opts=child)
        queue = aws.sqs.Queue(
            f"{name}-events-queue", name=f"{physical}-events",
            region=region, sqs_managed_sse_enabled=True, message_retention_seconds=EVENT_RETENTION_SECONDS,
            redrive_policy=dead_letters.arn.apply(_redrive_policy), tags=tags, opts=child)
        aws.sqs.QueuePolicy(
            f"{name}-events-queue-policy", queue_url=queue.url, region=region,
            policy=pulumi.Output.all(queue.arn, topic.arn).apply(lambda arns: _topic_only_policy(*arns)),
            opts=child)
        aws.sns.TopicSubscription(
            f"{name}-events-subscription", topic=topic.arn, protocol="sqs", endpoint=queue.arn, region=region,
            # The SES event JSON itself in the message body, not wrapped in an SNS envelope.
            raw_message_delivery=True, opts=child)
        aws.sesv2.ConfigurationSetEventDestination(
            f"{name}-events-destination",
            configuration_set_name=configuration_set.configuration_set_name,
            event_destination_name="bounce-processor",
            region=region,
            event_destination=aws.sesv2.ConfigurationSetEventDestinationEventDestinationArgs(
                # The provider's default is false: a destination created without it publishes nothing.
                enabled=True,
                matching_event_types=list(SES_EVENT_TYPES),
                sns_destination=aws.sesv2.ConfigurationSetEventDestinationEventDestinationSnsDestinationArgs(
                    topic_arn=topic.arn),
            ),
            opts=child,
        )
        self.events_queue_url = queue.url
        self.events_queue_arn = queue.arn
        return configuration_set


def _redrive_policy(dead_letter_arn: str) -> str:
    return json.dumps({"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": EVENT_MAX_RECEIVES})


def _events_key_policy(configuration_set_arn: str) -> str:
    """The events topic's key: the account administers it (KMS's default key policy statement; without it
    the key could not be managed any more), SES uses it only for our configuration set in our account."""
    account = configuration_set_arn.split(":")[4]
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "AccountAdministers", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
             "Action": "kms:*", "Resource": "*"},
            {"Sid": "SesEventsEncrypt", "Effect": "Allow", "Principal": {"Service": "ses.amazonaws.com"},
             "Action": ["kms:GenerateDataKey*", "kms:Decrypt"], "Resource": "*",
             "Condition": {"StringEquals": {"aws:SourceAccount": account},
                           "ArnLike": {"aws:SourceArn": configuration_set_arn}}},
        ],
    })


def _ses_publish_policy(topic_arn: str, configuration_set_arn: str) -> str:
    """Only SES, and only for our configuration set in our account, may publish to the events topic."""
    account = configuration_set_arn.split(":")[4]
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "SesEventsPublish",
            "Effect": "Allow",
            "Principal": {"Service": "ses.amazonaws.com"},
            "Action": "SNS:Publish",
            "Resource": topic_arn,
            "Condition": {"StringEquals": {"AWS:SourceAccount": account},
                          "ArnEquals": {"AWS:SourceArn": configuration_set_arn}},
        }],
    })


def _topic_only_policy(queue_arn: str, topic_arn: str) -> str:
    """Only SNS, and only for our topic, may send to the queue (SNS Developer Guide, "Subscribing an
    Amazon SQS queue to an Amazon SNS topic": sqs:SendMessage with aws:SourceArn = the topic)."""
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "SesEventsTopicOnly",
            "Effect": "Allow",
            "Principal": {"Service": "sns.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": queue_arn,
            "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}},
        }],
    })


def _pem_body(pem: str) -> str:
    return "".join(line for line in pem.strip().splitlines() if not line.startswith("-----"))


def _send_only_policy(resource_arns: Sequence[str]) -> str:
    """ses:SendRawEmail on the route's configuration set and identities, nothing else."""
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "ses:SendRawEmail", "Resource": list(resource_arns)}],
    })
