"""Each rule of the policy pack on hand-made resources, judged through pulumi-policy's own servicer.

Resource shapes are the AWS/Cloudflare providers' input names (wire form, camelCase), as the engine
hands them to an analyzer.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import policies
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pulumi_policy import EnforcementLevel

from mailinfra.dns.txt import quote_txt
from tests.policy.conftest import POLICY_DIR, analyze, analyze_stack

ROUTE53 = "aws:route53/record:Record"
CLOUDFLARE = "cloudflare:index/dnsRecord:DnsRecord"
EIP = "aws:ec2/eip:Eip"
INSTANCE = "aws:ec2/instance:Instance"
SG = "aws:ec2/securityGroup:SecurityGroup"
SG_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
SG_INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
SG_EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ROLE = "aws:iam/role:Role"
VOLUME = "aws:ebs/volume:Volume"
PARAMETER = "aws:ssm/parameter:Parameter"
BY_NAME = {p.name: p for p in policies.POLICIES}


def violations(policy: str, resource_type: str, props: dict[str, Any], *, protect: bool = False) -> list[str]:
    return [f.message for f in analyze(resource_type, props, name="r", protect=protect) if f.policy == policy]


def route53_txt(name: str, text: str) -> dict[str, Any]:
    # The provider quotes each value itself; "" inside a value splits it into 255-byte strings
    # (terraform-provider-aws flattenTxtEntry; the SDK's `records` docstring).
    chunks = [text[i:i + 255] for i in range(0, len(text), 255)]
    return {"name": name, "type": "TXT", "ttl": 300, "records": ['""'.join(chunks)]}


def cloudflare_txt(name: str, text: str) -> dict[str, Any]:
    return {"name": name, "type": "TXT", "content": quote_txt(text)}  # presentation form


def rsa_spki(bits: int) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits).public_key()
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def iam(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"role": "host-a-role", "policy": json.dumps({"Version": "2012-10-17", "Statement": list(statements)})}


def world(port_from: int, port_to: int, protocol: str = "tcp") -> dict[str, Any]:
    return {"ipProtocol": protocol, "fromPort": port_from, "toPort": port_to, "cidrIpv4": "0.0.0.0/0"}


SPF_11 = "v=spf1 " + " ".join(f"include:s{i}.example.org" for i in range(11)) + " -all"
DMARC_OK = "v=DMARC1; p=quarantine; rua=mailto:d@example.com"
ROOT_OK = {"rootBlockDevice": {"encrypted": True}, "metadataOptions": {"httpTokens": "required"}}

CASES: list[tuple[str, str, dict[str, Any], int]] = [
    ("instance-imdsv2", INSTANCE, {"instanceType": "t3.large"}, 1),
    ("instance-imdsv2", INSTANCE, {"metadataOptions": {"httpTokens": "optional"}}, 1),
    ("instance-imdsv2", INSTANCE, {"metadataOptions": {"httpTokens": "required"}}, 0),
    ("smtp-ingress", SG, {"ingress": [{"protocol": "tcp", "fromPort": 25, "toPort": 25, "cidrBlocks": ["0.0.0.0/0"]},
                                      {"protocol": "tcp", "fromPort": 587, "toPort": 587,
                                       "cidrBlocks": ["10.20.0.0/16"]}]}, 0),
    ("smtp-ingress", SG, {"ingress": [{"protocol": "tcp", "fromPort": 587, "toPort": 587,
                                       "cidrBlocks": ["0.0.0.0/0"]}]}, 1),
    ("smtp-ingress", SG, {"ingress": [{"protocol": "-1", "fromPort": 0, "toPort": 0, "cidrBlocks": ["0.0.0.0/0"]}]}, 1),
    ("smtp-ingress", SG_INGRESS, {"ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "cidrIpv6": "::/0"}, 1),
    ("smtp-ingress", SG_INGRESS, world(25, 25), 0),
    ("smtp-ingress", SG_RULE, {"type": "ingress", "protocol": "tcp", "fromPort": 20, "toPort": 30,
                               "cidrBlocks": ["0.0.0.0/0"]}, 1),
    # AWS: protocol -1 is all traffic whatever the ports say (EC2 User Guide, security group rules).
    ("egress-open", SG_EGRESS, world(25, 25, protocol="-1"), 1),
    ("egress-open", SG_EGRESS, world(0, 65535), 1),
    ("egress-open", SG_EGRESS, world(25, 25), 0),
    ("egress-open", SG_EGRESS, {"ipProtocol": "-1", "cidrIpv4": "10.0.0.0/8"}, 0),
    ("egress-open", SG, {"egress": [{"protocol": "-1", "fromPort": 0, "toPort": 0, "cidrBlocks": ["0.0.0.0/0"]}]}, 1),
    ("egress-open", SG_RULE, {"type": "egress", "protocol": "all", "fromPort": 0, "toPort": 0,
                              "ipv6CidrBlocks": ["::/0"]}, 1),
    ("ebs-encrypted", INSTANCE, ROOT_OK, 0),
    ("ebs-encrypted", INSTANCE, {"rootBlockDevice": {"encrypted": False}}, 1),
    ("ebs-encrypted", INSTANCE, {"metadataOptions": {"httpTokens": "required"}}, 1),  # the AMI's snapshot decides
    ("ebs-encrypted", INSTANCE, {**ROOT_OK, "ebsBlockDevices": [{"deviceName": "/dev/sdf"}]}, 1),
    ("ebs-encrypted", VOLUME, {"size": 50, "availabilityZone": "us-east-1a"}, 1),
    ("ebs-encrypted", VOLUME, {"size": 50, "encrypted": True}, 0),
    ("ssm-secure-string", PARAMETER, {"name": "/mailinfra/dev/a/dkim/example.com/s1", "type": "String",
                                      "value": "k"}, 1),
    ("ssm-secure-string", PARAMETER, {"name": "/mailinfra/dev/a/route/relay/password", "type": "String"}, 1),
    ("ssm-secure-string", PARAMETER, {"name": "/x/y", "type": "String", "tags": {"purpose": "dkim"}}, 1),
    ("ssm-secure-string", PARAMETER, {"name": "/mailinfra/dev/a/dkim/example.com/s1", "type": "SecureString"}, 0),
    ("ssm-secure-string", PARAMETER, {"name": "/mailinfra/dev/release", "type": "String"}, 0),
    ("iam-wildcards", ROLE_POLICY, iam({"Effect": "Allow", "Action": "*", "Resource": "arn:aws:s3:::b/*"}), 1),
    ("iam-wildcards", ROLE_POLICY, iam({"Effect": "Allow", "Action": "ssm:GetParameter", "Resource": "*"}), 1),
    ("iam-wildcards", ROLE_POLICY, iam({"Effect": "Allow", "Action": ["s3:PutObject"], "Resource": ["*"]}), 1),
    ("iam-wildcards", ROLE_POLICY, iam({"Effect": "Allow", "Action": "s3:*", "Resource": "*"}), 1),
    ("iam-wildcards", ROLE_POLICY, iam({"Effect": "Allow", "NotAction": "iam:*", "Resource": "arn:aws:s3:::b"}), 1),
    ("iam-wildcards", ROLE_POLICY, iam({"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"}), 1),
    ("iam-wildcards", ROLE_POLICY, iam({"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*", "Condition": {
        "StringLike": {"kms:ViaService": "*.amazonaws.com"}}}), 1),
    ("iam-wildcards", ROLE_POLICY, iam({"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*", "Condition": {
        "StringEquals": {"kms:ViaService": "ssm.us-east-1.amazonaws.com"}}}), 0),
    ("iam-wildcards", ROLE_POLICY, iam({"Effect": "Allow", "Action": ["ec2:DescribeInstances", "ec2:Describe*"],
                                        "Resource": "*"}), 0),
    ("iam-wildcards", ROLE_POLICY, iam({"Effect": "Allow", "Action": ["ssm:UpdateInstanceInformation",
                                                                      "ssmmessages:OpenDataChannel"],
                                        "Resource": "*"}), 0),
    ("iam-wildcards", ROLE_POLICY, iam({"Effect": "Deny", "Action": "*", "Resource": "*"}), 0),
    ("iam-wildcards", ROLE_POLICY, {"role": "r", "policy": "{not json"}, 1),
    ("iam-wildcards", ROLE, {"inlinePolicies": [{"name": "all", "policy": json.dumps(
        {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})}]}, 1),
    ("iam-wildcards", "aws:iam/rolePolicyAttachment:RolePolicyAttachment", {
        "role": "r", "policyArn": "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"}, 1),
    ("iam-wildcards", "aws:iam/rolePolicyAttachment:RolePolicyAttachment", {
        "role": "r", "policyArn": "arn:aws:iam::123456789012:policy/mailinfra-own"}, 0),
    ("iam-wildcards", ROLE, {"managedPolicyArns": ["arn:aws:iam::aws:policy/AdministratorAccess"]}, 1),
    ("iam-wildcards", "aws:iam/userPolicyAttachment:UserPolicyAttachment", {
        "user": "u", "policyArn": "arn:aws:iam::aws:policy/AmazonSESFullAccess"}, 1),
    ("dmarc-record", ROUTE53, route53_txt("_dmarc.example.com", DMARC_OK), 0),
    ("dmarc-record", ROUTE53, route53_txt("_dmarc.example.com", "v=DMARC1; p=none"), 0),
    ("dmarc-record", ROUTE53, route53_txt("_dmarc.example.com", "v=DMARC1; rua=mailto:d@example.com"), 1),
    ("dmarc-record", ROUTE53, route53_txt("_dmarc.example.com", "p=reject; v=DMARC1"), 1),
    ("dmarc-record", CLOUDFLARE, cloudflare_txt("_dmarc.example.com", "v=DMARC1; p=block; sp=nothing"), 2),
    ("dmarc-policy", ROUTE53, route53_txt("_dmarc.example.com", "v=DMARC1; p=none; rua=mailto:d@example.com"), 1),
    ("dmarc-policy", ROUTE53, route53_txt("_dmarc.example.com", "v=DMARC1; p=reject; sp=none; rua=mailto:d@x.com"), 1),
    ("dmarc-policy", CLOUDFLARE, cloudflare_txt("_dmarc.example.com", "v=DMARC1; p=quarantine"), 1),
    ("dmarc-policy", CLOUDFLARE, cloudflare_txt("_dmarc.example.com", DMARC_OK), 0),
    ("dmarc-policy", CLOUDFLARE, cloudflare_txt("_dmarc", "v=DMARC1; p=none; rua=mailto:d@example.com"), 1),
    ("dmarc-record", CLOUDFLARE, cloudflare_txt("_dmarc", "v=DMARC1"), 1),
    ("spf-lookups", ROUTE53, route53_txt("bounce.example.com", SPF_11), 1),
    ("spf-lookups", CLOUDFLARE, cloudflare_txt("b.example.com", SPF_11.replace("include:s10.example.org ", "")), 0),
    ("spf-lookups", ROUTE53, route53_txt("b.example.com", "v=spf1 a mx ptr exists:%{i}.x.org " + " ".join(
        f"include:s{i}.example.org" for i in range(6)) + " redirect=r.example.org"), 1),
    ("dkim-key-size", ROUTE53, route53_txt("s._domainkey.example.com", f"v=DKIM1; k=rsa; p={rsa_spki(1024)}"), 1),
    ("dkim-key-size", ROUTE53, route53_txt("s._domainkey.example.com", f"v=DKIM1; k=rsa; p={rsa_spki(2048)}"), 0),
    ("dkim-key-size", ROUTE53, route53_txt("s._domainkey.example.com", "v=DKIM1; k=rsa; p="), 0),
    ("dkim-key-size", CLOUDFLARE, cloudflare_txt("s._domainkey.example.com", "v=DKIM1; k=rsa; p=bm90LWEta2V5"), 1),
    ("dkim-key-size", CLOUDFLARE, cloudflare_txt("s._domainkey", f"k=rsa; p={rsa_spki(1024)}"), 1),
]


@pytest.mark.parametrize(("policy", "resource_type", "props", "count"), CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_policy_reports_each_violation(policy: str, resource_type: str, props: dict[str, Any], count: int) -> None:
    found = violations(policy, resource_type, props)
    assert len(found) == count, found
    assert not any("can't run policy" in m for m in found)


def test_an_unprotected_eip_is_refused() -> None:
    assert len(violations("eip-protected", EIP, {"domain": "vpc"}, protect=False)) == 1
    assert violations("eip-protected", EIP, {"domain": "vpc"}, protect=True) == []


def test_long_dkim_key_is_read_across_its_strings() -> None:
    """A 3072-bit key spans several 255-byte strings, split by "" on Route53 and quoted on Cloudflare."""
    key = f"v=DKIM1; k=rsa; p={rsa_spki(3072)}"
    route53 = route53_txt("s._domainkey.example.com", key)
    assert route53["records"][0].count('""') >= 2
    assert violations("dkim-key-size", ROUTE53, route53) == []
    assert violations("dkim-key-size", CLOUDFLARE, cloudflare_txt("s._domainkey.example.com", key)) == []


def test_a_staged_dmarc_rollout_is_advised_not_blocked() -> None:
    """p=none while reports are collected: Google's and Yahoo's bulk-sender rules (2024) accept p=none,
    so the pack warns (ADVISORY) and `pulumi up` goes on; the old MANDATORY rule blocked it."""
    found = analyze(ROUTE53, route53_txt("_dmarc.example.com", "v=DMARC1; p=none; rua=mailto:d@example.com"))
    assert [(f.policy, f.level) for f in found] == [("dmarc-policy", "advisory")]


def test_other_resources_are_not_judged() -> None:
    assert analyze("aws:sns/topic:Topic", {"name": "t"}) == []


def test_levels_are_the_ones_an_operator_expects() -> None:
    """ADVISORY only where the operator stages the choice or AWS covers the risk; the rest blocks."""
    levels = {p.name: p.enforcement_level for p in policies.POLICIES}
    advisory = {n for n, level in levels.items() if level == EnforcementLevel.ADVISORY}
    assert advisory == {"dmarc-policy", "s3-bucket-encryption"}
    assert all(level in (EnforcementLevel.ADVISORY, EnforcementLevel.MANDATORY) for level in levels.values())
    assert len(levels) == len(policies.POLICIES) == len(policies.RULES)
    assert all(rule.reason for rule in policies.RULES.values())


def test_pack_entry_point_and_project_file() -> None:
    main = (POLICY_DIR / "__main__.py").read_text()
    assert "PolicyPack(" in main and "sys.path" not in main.split('"""', 2)[2]
    project = (POLICY_DIR / "PulumiPolicy.yaml").read_text()
    assert "name: python" in project and "virtualenv: venv" in project and "../" not in project


def test_a_bucket_without_encryption_is_advised() -> None:
    bucket = {"type": "aws:s3/bucket:Bucket", "name": "b", "urn": "urn:pulumi:dev::m::aws:s3/bucket:Bucket::b",
              "inputs": {"bucketPrefix": "b-"}}
    config = {"type": "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
              "name": "c", "urn": "urn:pulumi:dev::m::aws:s3/x::c", "depends_on": ["b"],
              "inputs": {"bucket": "b-123", "rules": [{"applyServerSideEncryptionByDefault": {
                  "sseAlgorithm": "aws:kms"}}]}}
    assert analyze_stack([bucket, config]) == []
    found = analyze_stack([bucket])
    assert [(f.policy, f.level, f.urn) for f in found] == [("s3-bucket-encryption", "advisory", bucket["urn"])]


def test_public_smtp_is_judged_by_the_host_the_group_guards() -> None:
    """GIVEN an MX naming mx.example.com, WHEN tcp/25 is open to the world on its group, THEN nothing;
    on another host's group, or on a rule traced to no group, THEN the MANDATORY stack rule fires."""
    def sg(name: str, host: str | None) -> dict[str, Any]:
        return {"type": SG, "name": name, "urn": f"urn:pulumi:dev::m::{SG}::{name}",
                "inputs": {"tags": {"Name": host}} if host else {}}

    def public_25(name: str, group: str | None) -> dict[str, Any]:
        return {"type": SG_INGRESS, "name": name, "urn": f"urn:pulumi:dev::m::{SG_INGRESS}::{name}",
                "inputs": world(25, 25), "depends_on": [group] if group else []}

    mx = {"type": ROUTE53, "name": "mx", "urn": "urn:pulumi:dev::m::mx",
          "inputs": {"name": "bounce.example.com", "type": "MX", "records": ["10 mx.example.com."]}}
    ok = [mx, sg("mx-sg", "mx.example.com"), public_25("mx-25", "mx-sg")]
    assert analyze_stack(ok) == []
    for resources in ([mx, sg("tx-sg", "tx.example.com"), public_25("tx-25", "tx-sg")],
                      [mx, sg("anon-sg", None), public_25("anon-25", "anon-sg")],
                      [mx, public_25("loose-25", None)]):
        found = analyze_stack(resources)
        assert [(f.policy, f.level) for f in found] == [("smtp-ingress-mx-hosts", "mandatory")], found
