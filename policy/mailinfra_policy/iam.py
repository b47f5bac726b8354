"""IAM wildcards in the policies the program attaches to roles and users.

IAM evaluation (IAM User Guide, "Policy evaluation logic"): an Allow statement grants every action
its Action matches on every resource its Resource matches; "*" matches all, NotAction/NotResource
grant everything not listed. Deny statements only take away, so they are not judged.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterator
from typing import Any

from .values import UNKNOWN, items_of, mapping_of

ROLE = "aws:iam/role:Role"
ATTACHMENT_TYPES = {
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": "policyArn",
    "aws:iam/userPolicyAttachment:UserPolicyAttachment": "policyArn",
    "aws:iam/groupPolicyAttachment:GroupPolicyAttachment": "policyArn",
    "aws:iam/policyAttachment:PolicyAttachment": "policyArn",
}
# AWS-managed policies that grant wildcards (their documents in the AWS Managed Policy Reference): attaching
# one is the usual shortcut around the statements judged below. AmazonSSMManagedInstanceCore is the one a
# host is most likely to get: it adds ssm:GetParameter(s) on "*", i.e. every host's secrets.
WILDCARD_MANAGED_POLICIES = re.compile(
    r"^arn:aws[a-z-]*:iam::aws:policy/(?:.*/)?(AdministratorAccess|PowerUserAccess|IAMFullAccess|[A-Za-z0-9]+FullAccess"
    r"|AmazonSSMManagedInstanceCore|AmazonEC2RoleforSSM|AmazonSSMReadOnlyAccess|AmazonS3ReadOnlyAccess"
    r"|ReadOnlyAccess|SecretsManagerReadWrite)$")
POLICY_TYPES = (
    "aws:iam/rolePolicy:RolePolicy",
    "aws:iam/userPolicy:UserPolicy",
    "aws:iam/groupPolicy:GroupPolicy",
    "aws:iam/policy:Policy",
)

# Actions that only read metadata. Anything else (Put, Update, Create, Delete, Send, Decrypt, ...) is
# treated as a write: the Service Authorization Reference gives each action an access level, and
# every read-level action of the services we use has one of these prefixes.
READ_PREFIXES = ("Get", "List", "Describe", "BatchGet")
# Reads that hand out secrets or another host's data: on Resource "*" a host could read every host's
# DKIM keys and relay passwords (ssm), or every config bundle (s3). Judged like writes.
SECRET_READS = (
    "ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath", "ssm:GetParameterHistory",
    "secretsmanager:GetSecretValue", "s3:GetObject", "s3:GetObjectVersion",
)
# The SSM agent's own calls, as AWS grants them in the managed policy AmazonSSMManagedInstanceCore (v2),
# on Resource "*": the agent calls them for its own instance (the service checks the caller's
# instance identity) and the ssmmessages/ec2messages actions have no resource types to scope by
# (Service Authorization Reference). Deliberately NOT the managed policy's ssm:GetParameter(s): on "*"
# that reads every host's secrets; our hosts get their own parameters' ARNs instead.
SSM_AGENT_ACTIONS = frozenset({
    "ssm:DescribeAssociation", "ssm:GetDeployablePatchSnapshotForInstance", "ssm:GetDocument",
    "ssm:DescribeDocument", "ssm:GetManifest", "ssm:ListAssociations", "ssm:ListInstanceAssociations",
    "ssm:PutInventory", "ssm:PutComplianceItems", "ssm:PutConfigurePackageResult",
    "ssm:UpdateAssociationStatus", "ssm:UpdateInstanceAssociationStatus", "ssm:UpdateInstanceInformation",
    "ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel", "ssmmessages:OpenControlChannel",
    "ssmmessages:OpenDataChannel", "ec2messages:AcknowledgeMessage", "ec2messages:DeleteMessage",
    "ec2messages:FailMessage", "ec2messages:GetEndpoint", "ec2messages:GetMessages", "ec2messages:SendReply",
})


def policy_documents(resource_type: str, props: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """(label, document) for each permission policy a resource declares; unknown documents are skipped.

    A role's assumeRolePolicy is a trust policy (who may assume it), not permissions, so not judged here.
    """
    if resource_type in POLICY_TYPES:
        documents = [("policy", props.get("policy"))]
    elif resource_type == ROLE:
        inline = items_of(props.get("inlinePolicies"))
        if inline is UNKNOWN:
            return
        documents = []
        for entry in inline:
            policy = mapping_of(entry)
            if policy is not UNKNOWN:
                documents.append((f"inline policy {policy.get('name')}", policy.get("policy")))
    else:
        return
    for label, document in documents:
        if document is UNKNOWN or document is None:
            continue  # built from ARNs not known until `pulumi up`: judged then
        yield label, document


def check_wildcards(resource_type: str, props: dict[str, Any]) -> Iterator[str]:
    yield from _check_managed(resource_type, props)
    for label, given in policy_documents(resource_type, props):
        document = given
        if isinstance(given, str):
            try:
                document = json.loads(given)
            except ValueError as error:
                yield f"{label} is not valid JSON ({error}); IAM rejects it (MalformedPolicyDocument)"
                continue
        statements = items_of(document.get("Statement")) if isinstance(document, dict) else []
        if statements is UNKNOWN:
            continue
        for index, raw in enumerate(statements):
            statement = mapping_of(raw)
            if statement is UNKNOWN or statement.get("Effect") != "Allow":
                continue
            yield from (f"{label} statement {statement.get('Sid') or index}: {p}" for p in _judge(statement))


def _check_managed(resource_type: str, props: dict[str, Any]) -> Iterator[str]:
    if resource_type in ATTACHMENT_TYPES:
        arns = [props.get(ATTACHMENT_TYPES[resource_type])]
    elif resource_type == ROLE:
        listed = items_of(props.get("managedPolicyArns"))
        arns = [] if listed is UNKNOWN else listed
    else:
        return
    for arn in arns:
        match = WILDCARD_MANAGED_POLICIES.match(arn) if isinstance(arn, str) else None
        if match:
            yield (f"attaches the AWS-managed policy {match.group(1)}, which grants wildcards; write a policy "
                   "naming the actions and resources instead")


def _judge(statement: dict[str, Any]) -> Iterator[str]:
    if "NotAction" in statement:
        yield "Allow with NotAction grants every action not listed; list the actions instead"
    if "NotResource" in statement:
        yield "Allow with NotResource grants every resource not listed; list the resources instead"
    actions = [a for a in _strings(statement.get("Action")) if a is not UNKNOWN]
    if "*" in actions:
        yield 'Action "*" grants every action of every service; list the actions the principal calls'
        return
    resources = _strings(statement.get("Resource"))
    if "*" not in resources:
        return
    condition = mapping_of(statement.get("Condition"))
    broad = [a for a in actions if _is_sensitive(str(a)) and not _scoped_anyway(str(a), condition)]
    if broad:
        yield (f'Resource "*" with {", ".join(sorted(broad))}: write or secret-reading actions must name '
               "their resources (ARNs)")


def _strings(value: Any) -> list[Any]:
    items = items_of(value)
    return [] if items is UNKNOWN else items


def _is_sensitive(action: str) -> bool:
    service, _, name = action.partition(":")
    if any(fnmatch.fnmatchcase(secret.lower(), action.lower()) for secret in SECRET_READS):
        return True
    if "*" in name or "?" in name:
        # A pattern is a read only if every action it can match is one: its literal prefix is a read verb.
        literal = name.split("*")[0].split("?")[0]
        return not any(literal.startswith(prefix) for prefix in READ_PREFIXES)
    return not name.startswith(READ_PREFIXES) or not service


def _scoped_anyway(action: str, condition: dict[str, Any] | Any) -> bool:
    """Actions that are acceptable on Resource "*" (see SSM_AGENT_ACTIONS and kms:ViaService)."""
    if action in SSM_AGENT_ACTIONS:
        return True
    if action.lower() == "kms:decrypt" and isinstance(condition, dict):
        # AWS KMS developer guide, kms:ViaService: the key can then only be used in requests that the
        # named service makes on the principal's behalf. SSM decrypts a SecureString only for a caller
        # allowed ssm:GetParameter on it, so the reach is that of the (ARN-scoped) parameter grant;
        # and the AWS-managed aws/ssm key's id is account-specific, not known to the program.
        for operator in condition.values():
            values = mapping_of(operator)
            if values is UNKNOWN:
                continue
            for key, wanted in values.items():
                services = _strings(wanted)
                if key.lower() == "kms:viaservice" and services and all(
                    isinstance(s, str) and "*" not in s and "?" not in s for s in services
                ):
                    return True
    return False
