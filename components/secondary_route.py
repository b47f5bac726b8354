"""SecondaryRoute: where a stream's mail goes when its own IPs are throttled or down.

- `ses`: an SESv2 identity per sending domain signing with *our* DKIM key and selector (BYODKIM), so
  the DKIM record the plan already publishes serves SES too; a custom MAIL FROM on
  `ses.<return_path>` (its MX and SPF are in the plan); an IAM user that may only call
  ses:SendRawEmail, whose SMTP password goes to the hosts as a secret.
- `relay`: the password is the Pulumi secret the route names; the hosts get a copy.
- `hosts`: other MtaHosts of ours; nothing extra to create.

Credentials reach a host only as SSM SecureStrings under `/mailinfra/<stack>/<host>/route/<route>/`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.aws_provider import regional_provider
from mailinfra.dns.plan import ses_mail_from
from mailinfra.plan.model import HostPlan, Plan, RoutePlan

# SES BYODKIM accepts 1024- or 2048-bit RSA keys only (SES Developer Guide, "Provide your own DKIM").
SES_BYODKIM_ALGORITHMS = ("rsa-2048",)


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
                    tags={"environment": environment, "host": host.name, "purpose": f"route-{route.name}"},
                    opts=pulumi.ResourceOptions(parent=self),
                )
                for item, value in sorted(credentials.items())
            ]
            self.deliveries[host.name] = [
                (route_parameter_name(stack, host.name, route.name, item),
                 f"/etc/mailinfra/routes/{route.name}/{item}")
                for item in sorted(credentials)
            ]
        self.register_outputs({"kind": route.kind, "smtp_host": route.smtp_host})

    def _create_ses(self, name: str, args: SecondaryRouteArgs) -> dict[str, pulumi.Output[str]]:
        plan, route = args.plan, args.route
        child = pulumi.ResourceOptions(parent=self)
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
                            tags={"environment": plan.environment, "route": route.name}, opts=child)
        aws.iam.UserPolicy(
            f"{name}-smtp-send",
            user=user.name,
            policy=pulumi.Output.all(*(i.arn for i in identities)).apply(_send_only_policy),
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


def _pem_body(pem: str) -> str:
    return "".join(line for line in pem.strip().splitlines() if not line.startswith("-----"))


def _send_only_policy(identity_arns: Sequence[str]) -> str:
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "ses:SendRawEmail", "Resource": list(identity_arns)}],
    })
