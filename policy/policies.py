"""The mailinfra policy pack's rules: what `pulumi preview --policy-pack policy` enforces, and why.

The audit (mailinfra.audit) checks the plan before any program runs; these check what the program
actually asks the providers to create, so a hand-written resource or a component bug is caught too.

Levels, as an operator expects them: MANDATORY where the resource would be unsafe or would fail at the
provider or the receiver (a deleted warm IP, an open relay, plaintext keys, a wildcard grant, a DMARC
record receivers discard); ADVISORY where the choice is the operator's to stage (p=none while a DMARC
rollout collects reports) or where AWS already covers the risk (S3 encrypts every new object).

Every rule reads the props through `plain`, so a value Pulumi cannot know during preview (an id, an
ARN, a JSON document built from them) is "cannot judge yet" and the known rest is still judged; at
`pulumi up` the values are known and the rule judges them all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from mailinfra_policy import hosts, iam, network, records, storage
from mailinfra_policy.values import UNKNOWN, plain
from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

MANDATORY = EnforcementLevel.MANDATORY
ADVISORY = EnforcementLevel.ADVISORY
Check = Callable[[str, dict[str, Any]], Iterable[str]]


@dataclass(frozen=True)
class Rule:
    """One policy: `reason` says why it has its level (shown with the description)."""

    name: str
    level: EnforcementLevel
    summary: str
    reason: str


def resource_policy(rule: Rule, check: Check) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        for message in check(args.resource_type, plain(args.props)):
            report(f"{args.name}: {message}", None)

    return ResourceValidationPolicy(name=rule.name, description=f"{rule.summary}. {rule.reason}",
                                    validate=validate, enforcement_level=rule.level)


def stack_policy(rule: Rule, check: Callable[[list[Any]], Iterator[tuple[str, str]]]) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report: ReportViolation) -> None:
        for urn, message in check(list(args.resources)):
            report(message, urn)

    return StackValidationPolicy(name=rule.name, description=f"{rule.summary}. {rule.reason}",
                                 validate=validate, enforcement_level=rule.level)


def validate_eip_protected(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for message in hosts.check_eip_protected(args.resource_type, bool(args.opts.protect)):
        report(f"{args.name}: {message}", None)


def check_smtp_ingress_on_mail_hosts(resources: list[Any]) -> Iterator[tuple[str, str]]:
    """tcp/25 from the internet only on hosts an MX record names (they take bounces and FBL reports);
    elsewhere the world reaching port 25 is one MTA misconfiguration away from an open relay."""
    props = {r.urn: plain(r.props) for r in resources}
    receivers = network.mail_hosts([(r.resource_type, props[r.urn]) for r in resources])
    if receivers is None:
        return  # an MX target is not known yet: judged at `pulumi up`
    for resource in resources:
        if resource.resource_type not in network.RULE_TYPES:
            continue
        if not any(rule.direction == "ingress" and rule.opens_to_world() and rule.covers(network.SMTP_PORT)
                   for rule in network.sg_rules(resource.resource_type, props[resource.urn])):
            continue
        group = _guarded_group(resource)
        host = UNKNOWN if group is None else network.group_host(props.get(group.urn) or plain(group.props))
        if host is UNKNOWN and group is not None:
            continue
        if host in receivers:
            continue
        if group is None:
            where = "a security group it cannot be traced to (it depends on no single aws:ec2 SecurityGroup)"
        elif host is None:
            where = "a security group with no Name tag"
        else:
            where = f"{host}, which no MX names"
        yield resource.urn, (f"{resource.name}: tcp/25 is open to the internet on {where}; only bounce/MX hosts "
                             "take mail from anywhere, a sending host takes it from its injection_cidrs")


def _guarded_group(resource: Any) -> Any:
    if resource.resource_type == network.SG:
        return resource
    linked = resource.property_dependencies.get("securityGroupId") or resource.dependencies or []
    groups = [d for d in linked if d.resource_type == network.SG]
    return groups[0] if len(groups) == 1 else None


def check_bucket_encryption(resources: list[Any]) -> Iterator[tuple[str, str]]:
    configs = [r for r in resources if r.resource_type in storage.BUCKET_ENCRYPTION]
    for bucket in resources:
        if bucket.resource_type in storage.BUCKETS and not storage.bucket_encrypted(bucket, configs):
            yield bucket.urn, (f"{bucket.name}: no default encryption configuration; add a "
                               "BucketServerSideEncryptionConfiguration (AES256 or aws:kms)")


RULES = {
    "eip-protected": Rule("eip-protected", MANDATORY, "Elastic IPs are protected from deletion",
                          "A released warmed address cannot be bought back"),
    "instance-imdsv2": Rule("instance-imdsv2", MANDATORY, "Instances require IMDSv2",
                            "IMDSv1 hands the instance role's credentials to any SSRF"),
    "smtp-ingress": Rule("smtp-ingress", MANDATORY, "Only tcp/25 is open to the internet",
                         "Any other public port is an open relay (injection) or an attack surface (SSH)"),
    "smtp-ingress-mx-hosts": Rule(
        "smtp-ingress-mx-hosts", MANDATORY, "tcp/25 from the internet only on bounce/MX hosts",
        "The security group is the second line against an open relay when an MTA's own rules are wrong"),
    "egress-open": Rule("egress-open", MANDATORY, "No egress to the internet on all protocols or ports",
                        "A compromised host must not reach anything but the SMTP/HTTPS ports its routes use"),
    "iam-wildcards": Rule(
        "iam-wildcards", MANDATORY, 'No Action "*", and no Resource "*" with write or secret-reading actions',
        "A wildcard grant lets one host read every host's DKIM keys or change the account; the SSM agent's "
        "own actions and kms:Decrypt limited by kms:ViaService are the documented exceptions"),
    "ebs-encrypted": Rule("ebs-encrypted", MANDATORY, "EBS root and data volumes are encrypted",
                          "They hold DKIM keys and queued mail; encryption is fixed at creation"),
    "ssm-secure-string": Rule("ssm-secure-string", MANDATORY, "SSM parameters holding keys are SecureString",
                              "A String parameter is stored and returned in clear"),
    "s3-bucket-encryption": Rule(
        "s3-bucket-encryption", ADVISORY, "Buckets declare default encryption",
        "Advisory: since 2023-01-05 S3 encrypts every new object with SSE-S3 anyway; the declaration keeps "
        "the choice explicit and reviewable"),
    "dmarc-record": Rule("dmarc-record", MANDATORY, "DMARC records are well-formed (v=DMARC1 first, valid p=)",
                         "Receivers discard a malformed record, leaving the domain without DMARC"),
    "dmarc-policy": Rule(
        "dmarc-policy", ADVISORY, "DMARC is quarantine or reject, with rua",
        "Advisory: p=none is a legitimate stage of a rollout and meets Google/Yahoo bulk-sender rules; "
        "the project's audit asks for quarantine"),
    "spf-lookups": Rule("spf-lookups", MANDATORY, "SPF needs at most 10 DNS lookups",
                        "The 11th lookup is a permerror: SPF fails for every message"),
    "dkim-key-size": Rule("dkim-key-size", MANDATORY, "RSA DKIM keys are at least 2048 bits",
                          "RFC 8301 forbids < 1024 and receivers distrust 1024"),
}

POLICIES: list[ResourceValidationPolicy | StackValidationPolicy] = [
    ResourceValidationPolicy(name="eip-protected",
                             description=f"{RULES['eip-protected'].summary}. {RULES['eip-protected'].reason}",
                             validate=validate_eip_protected, enforcement_level=RULES["eip-protected"].level),
    resource_policy(RULES["instance-imdsv2"], hosts.check_imdsv2),
    resource_policy(RULES["smtp-ingress"], network.check_public_ingress),
    stack_policy(RULES["smtp-ingress-mx-hosts"], check_smtp_ingress_on_mail_hosts),
    resource_policy(RULES["egress-open"], network.check_open_egress),
    resource_policy(RULES["iam-wildcards"], iam.check_wildcards),
    resource_policy(RULES["ebs-encrypted"], storage.check_ebs_encryption),
    resource_policy(RULES["ssm-secure-string"], storage.check_secure_parameters),
    stack_policy(RULES["s3-bucket-encryption"], check_bucket_encryption),
    resource_policy(RULES["dmarc-record"], records.check_dmarc_record),
    resource_policy(RULES["dmarc-policy"], records.check_dmarc_strength),
    resource_policy(RULES["spf-lookups"], records.check_spf_lookups),
    resource_policy(RULES["dkim-key-size"], records.check_dkim_key_size),
]
