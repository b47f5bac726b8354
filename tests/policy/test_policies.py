"""The policy pack judges resources as the Pulumi CLI would hand them over, without the CLI."""

from __future__ import annotations

import base64
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from mailinfra.dns.records import RecordType
from mailinfra.dns.txt import quote_txt, route53_txt_value
from mailinfra.model.load import load_stack
from mailinfra.plan.build import build_plan

POLICY_DIR = Path(__file__).resolve().parents[2] / "policy"
sys.path.insert(0, str(POLICY_DIR))
import policies  # noqa: E402

BY_NAME: dict[str, ResourceValidationPolicy] = {p.name: p for p in policies.POLICIES}


def resource(
    resource_type: str, props: Mapping[str, Any], *, name: str = "r", protect: bool = False
) -> ResourceValidationArgs:
    opts = PolicyResourceOptions(protect, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])
    return ResourceValidationArgs(
        resource_type, props, f"urn:pulumi:dev::mailinfra::{resource_type}::{name}", name, opts, None
    )


def violations(policy: str, args: ResourceValidationArgs) -> list[str]:
    found: list[str] = []
    BY_NAME[policy].validate(args, lambda message, urn=None: found.append(message))
    return found


def route53_txt(name: str, text: str) -> ResourceValidationArgs:
    # The provider's form: unquoted, chunks joined by `""` (it adds the outer quotes itself).
    return resource(policies.ROUTE53_RECORD,
                    {"name": name, "type": "TXT", "ttl": 300, "records": [route53_txt_value(text)]})


def cloudflare_txt(name: str, text: str) -> ResourceValidationArgs:
    return resource(policies.CLOUDFLARE_RECORD, {"name": name, "type": "TXT", "content": quote_txt(text)})


def rsa_spki(bits: int) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits).public_key()
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


SPF_11 = "v=spf1 " + " ".join(f"include:s{i}.example.org" for i in range(11)) + " -all"
SG_PROPS = {
    "ingress": [
        {"protocol": "tcp", "fromPort": 25, "toPort": 25, "cidrBlocks": ["0.0.0.0/0"]},
        {"protocol": "tcp", "fromPort": 587, "toPort": 587, "cidrBlocks": ["10.20.0.0/16"]},
    ]
}

CASES = [
    ("eip-protected", resource(policies.EIP, {"domain": "vpc"}, protect=False), 1),
    ("eip-protected", resource(policies.EIP, {"domain": "vpc"}, protect=True), 0),
    ("instance-imdsv2", resource(policies.INSTANCE, {"instanceType": "t3.large"}), 1),
    ("instance-imdsv2", resource(policies.INSTANCE, {"metadataOptions": {"httpTokens": "optional"}}), 1),
    ("instance-imdsv2", resource(policies.INSTANCE, {"metadataOptions": {"httpTokens": "required"}}), 0),
    ("smtp-ingress", resource(policies.SG, SG_PROPS), 0),
    (
        "smtp-ingress",
        resource(
            policies.SG, {"ingress": [{"protocol": "tcp", "fromPort": 587, "toPort": 587, "cidrBlocks": ["0.0.0.0/0"]}]}
        ),
        1,
    ),
    (
        "smtp-ingress",
        resource(
            policies.SG, {"ingress": [{"protocol": "-1", "fromPort": 0, "toPort": 0, "cidrBlocks": ["0.0.0.0/0"]}]}
        ),
        1,
    ),
    (
        "smtp-ingress",
        resource(policies.SG_INGRESS, {"ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "cidrIpv6": "::/0"}),
        1,
    ),
    (
        "smtp-ingress",
        resource(policies.SG_INGRESS, {"ipProtocol": "tcp", "fromPort": 25, "toPort": 25, "cidrIpv4": "0.0.0.0/0"}),
        0,
    ),
    (
        "smtp-ingress",
        resource(
            policies.SG_RULE,
            {"type": "ingress", "protocol": "tcp", "fromPort": 20, "toPort": 30, "cidrBlocks": ["0.0.0.0/0"]},
        ),
        1,
    ),
    ("dmarc-policy", route53_txt("_dmarc.example.com", "v=DMARC1; p=none; rua=mailto:d@example.com"), 2),
    ("dmarc-policy", route53_txt("_dmarc.example.com", "v=DMARC1; p=reject; sp=none; rua=mailto:d@example.com"), 1),
    ("dmarc-policy", cloudflare_txt("_dmarc.example.com", "v=DMARC1; p=quarantine"), 1),
    ("dmarc-policy", cloudflare_txt("_dmarc.example.com", "v=DMARC1; p=quarantine; rua=mailto:d@example.com"), 0),
    ("spf-lookups", route53_txt("bounce.example.com", SPF_11), 1),
    ("spf-lookups", cloudflare_txt("bounce.example.com", SPF_11.replace("include:s10.example.org ", "")), 0),
    ("dkim-key-size", route53_txt("s._domainkey.example.com", f"v=DKIM1; k=rsa; p={rsa_spki(1024)}"), 1),
    ("dkim-key-size", route53_txt("s._domainkey.example.com", f"v=DKIM1; k=rsa; p={rsa_spki(2048)}"), 0),
    ("dkim-key-size", route53_txt("s._domainkey.example.com", "v=DKIM1; k=rsa; p="), 0),
    ("dkim-key-size", cloudflare_txt("s._domainkey.example.com", "v=DKIM1; k=rsa; p=bm90LWEta2V5"), 1),
]


@pytest.mark.parametrize(("policy", "args", "count"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_policy_reports_each_violation(policy: str, args: ResourceValidationArgs, count: int) -> None:
    found = violations(policy, args)
    assert len(found) == count, found
    assert all(args.name in m or "example.com" in m for m in found)


def test_long_dkim_key_is_read_across_its_quoted_strings() -> None:
    """Route53 splits a 4096-bit key into several 255-byte strings; the policy joins them first."""
    args = route53_txt("s._domainkey.example.com", f"v=DKIM1; k=rsa; p={rsa_spki(4096)}")
    assert args.props["records"][0].count('""') >= 2
    assert violations("dkim-key-size", args) == []


def test_unquote_inverts_the_zone_file_formatter() -> None:
    text = 'v=spf1 exp=%{d} "odd\\quote" ' + "x" * 300
    assert policies.unquote_txt(quote_txt(text)) == text


def test_other_resources_are_not_judged() -> None:
    args = resource("aws:s3/bucket:Bucket", {"bucket": "b"})
    assert all(violations(name, args) == [] for name in BY_NAME)


def test_every_record_the_dev_plan_publishes_passes() -> None:
    """The planner's own output, as Route53 records, satisfies every DNS policy."""
    plan = build_plan(load_stack("dev"))
    for record in plan.records:
        values = [route53_txt_value(v) if record.type is RecordType.TXT else v for v in record.values]
        args = resource(policies.ROUTE53_RECORD, {"name": record.name, "type": str(record.type), "records": values})
        for name in ("dmarc-policy", "spf-lookups", "dkim-key-size"):
            assert violations(name, args) == [], (name, record.key)


def test_pack_policies_are_mandatory_and_uniquely_named() -> None:
    assert len(BY_NAME) == len(policies.POLICIES)
    assert all(p.enforcement_level == EnforcementLevel.MANDATORY for p in policies.POLICIES)
    assert "PolicyPack(" in (POLICY_DIR / "__main__.py").read_text()
    assert "name: python" in (POLICY_DIR / "PulumiPolicy.yaml").read_text()
