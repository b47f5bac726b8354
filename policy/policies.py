"""Resource policies: the audit rules that are visible on resources, enforced at `pulumi preview`.

The audit (mailinfra.audit) checks the plan before any program runs; these check what the program
actually asks the providers to create, so a hand-written resource or a component bug is caught too.
Each policy is testable without the CLI: `policy.validate(ResourceValidationArgs(...), report)`.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from mailinfra.dns.dkim import public_key_bits
from mailinfra.dns.dmarc import parse_dmarc
from mailinfra.dns.spf import MAX_LOOKUPS, count_lookup_terms
from mailinfra.dns.txt import join_txt

EIP = "aws:ec2/eip:Eip"
INSTANCE = "aws:ec2/instance:Instance"
SG = "aws:ec2/securityGroup:SecurityGroup"
SG_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
SG_INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
ROUTE53_RECORD = "aws:route53/record:Record"
CLOUDFLARE_RECORD = "cloudflare:index/dnsRecord:DnsRecord"

MIN_DKIM_RSA_BITS = 2048
STRONG_DMARC = ("quarantine", "reject")
# Bounces and FBL reports arrive on port 25 from anywhere (RFC 5321 §4.5.5); every other port
# (587 injection, 22 SSH) open to the world makes an open relay or an attack surface.
PUBLIC_SMTP_PORT = 25
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')
_ESCAPE = re.compile(r"\\(\d{3}|.)")


# --------------------------------------------------------------------------- EIPs and instances


def validate_eip_protected(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """A warmed IP is reputation that cannot be bought back: a change that deletes it must fail."""
    if args.resource_type == EIP and not args.opts.protect:
        report(
            f"Elastic IP {args.name} is not protected: set protect=True (and retain_on_delete=True) so no "
            "update or removal from the stack can release a warmed address",
            None,
        )


def validate_imdsv2(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """IMDSv1 lets any SSRF on the host read its credentials; IMDSv2 (httpTokens=required) needs a token."""
    if args.resource_type != INSTANCE:
        return
    options = args.props.get("metadataOptions") or {}
    if options.get("httpTokens") != "required":
        report(
            f"instance {args.name}: metadataOptions.httpTokens is {options.get('httpTokens')!r}; "
            "set it to 'required' (IMDSv2)",
            None,
        )


# --------------------------------------------------------------------------- security groups


def _ingress_rules(args: ResourceValidationArgs) -> Iterator[Mapping[str, Any]]:
    props = args.props
    if args.resource_type == SG:
        yield from props.get("ingress") or []
    elif args.resource_type == SG_RULE and props.get("type") == "ingress":
        yield props
    elif args.resource_type == SG_INGRESS:
        yield {
            "fromPort": props.get("fromPort"),
            "toPort": props.get("toPort"),
            "protocol": props.get("ipProtocol"),
            "cidrBlocks": [props.get("cidrIpv4")],
            "ipv6CidrBlocks": [props.get("cidrIpv6")],
        }


def _is_world(cidr: object) -> bool:
    if not isinstance(cidr, str):
        return False
    try:
        return ipaddress.ip_network(cidr, strict=False).prefixlen == 0
    except ValueError:
        return False


def validate_smtp_ingress(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """Only SMTP port 25 (bounces, FBL) may be open to the internet; injection stays on its CIDRs."""
    for rule in _ingress_rules(args):
        cidrs = [*(rule.get("cidrBlocks") or []), *(rule.get("ipv6CidrBlocks") or [])]
        if not any(_is_world(c) for c in cidrs):
            continue
        protocol = str(rule.get("protocol", "")).lower()
        ports = (rule.get("fromPort"), rule.get("toPort"))
        if protocol not in ("tcp", "6") or ports != (PUBLIC_SMTP_PORT, PUBLIC_SMTP_PORT):
            report(
                f"{args.name}: ingress {protocol or '?'} ports {ports[0]}-{ports[1]} is open to the internet; "
                f"only tcp/{PUBLIC_SMTP_PORT} (inbound bounces) may be, injection ports take the "
                "hosts' injection_cidrs",
                None,
            )


# --------------------------------------------------------------------------- DNS records


def _txt_texts(args: ResourceValidationArgs) -> Iterator[tuple[str, str]]:
    """(owner name, logical TXT text) for each value of a Route53 or Cloudflare TXT record."""
    props = args.props
    if args.resource_type not in (ROUTE53_RECORD, CLOUDFLARE_RECORD) or props.get("type") != "TXT":
        return
    name = str(props.get("name", "")).lower().rstrip(".")
    route53 = args.resource_type == ROUTE53_RECORD
    values = props.get("records") if route53 else [props.get("content")]
    for value in values or []:
        if isinstance(value, str):  # an unknown (computed) value is judged at `pulumi up`, not here
            # The AWS provider wraps each entry in quotes before Route53 reads it (terraform-provider-aws
            # record.go flattenTxtEntry: `"%s"`); Cloudflare's content is already quoted strings.
            yield name, unquote_txt(f'"{value}"' if route53 else value)


def unquote_txt(value: str) -> str:
    """Master-file TXT rdata (`"a" "b"`, RFC 1035 §5.1 escapes) to the logical text; bare text as is."""
    strings = _QUOTED.findall(value)
    if not strings:
        return value
    unescaped = [
        _ESCAPE.sub(lambda m: chr(int(m.group(1))) if m.group(1).isdigit() else m.group(1), s) for s in strings
    ]
    return join_txt(unescaped)


def validate_dmarc(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """DMARC at quarantine or reject for the domain and its subdomains, with aggregate reports."""
    for name, text in _txt_texts(args):
        if not name.startswith("_dmarc.") or not text.lower().startswith("v=dmarc1"):
            continue
        tags = parse_dmarc(text)
        for tag in ("p", "sp"):
            value = tags.get(tag, tags.get("p", "")) if tag == "sp" else tags.get("p", "")
            if value not in STRONG_DMARC:
                report(f"{name}: DMARC {tag}={value or '(missing)'}; this project requires quarantine or reject", None)
        if not tags.get("rua"):
            report(f"{name}: DMARC has no rua, so nobody receives aggregate reports", None)


def validate_spf(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """SPF within the RFC 7208 §4.6.4 limit of 10 DNS-querying terms."""
    for name, text in _txt_texts(args):
        if text.lower().startswith("v=spf1") and count_lookup_terms(text) > MAX_LOOKUPS:
            report(
                f"{name}: SPF has {count_lookup_terms(text)} DNS-querying terms, over {MAX_LOOKUPS} "
                "(receivers return permerror)",
                None,
            )


def validate_dkim_key_size(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """RSA DKIM keys of at least 2048 bits (project rule; RFC 8301 forbids < 1024)."""
    for name, text in _txt_texts(args):
        if not text.lower().startswith("v=dkim1"):
            continue
        tags = parse_dmarc(text)  # same tag=value list syntax (RFC 6376 §3.2)
        key = "".join(tags.get("p", "").split())
        if tags.get("k", "rsa").lower() != "rsa" or not key:
            continue  # Ed25519 is fixed-size; an empty p= is a deliberate revocation
        try:
            bits = public_key_bits(key)
        except ValueError as error:
            report(f"{name}: DKIM p= is not a public key ({error})", None)
            continue
        if bits < MIN_DKIM_RSA_BITS:
            report(f"{name}: DKIM RSA key is {bits} bits; publish at least {MIN_DKIM_RSA_BITS}", None)


def _policy(name: str, description: str, validate: Any) -> ResourceValidationPolicy:
    return ResourceValidationPolicy(
        name=name, description=description, validate=validate, enforcement_level=EnforcementLevel.MANDATORY
    )


POLICIES = [
    _policy("eip-protected", "Elastic IPs are protected from deletion", validate_eip_protected),
    _policy("instance-imdsv2", "Instances require IMDSv2", validate_imdsv2),
    _policy("smtp-ingress", "Only tcp/25 is open to the internet", validate_smtp_ingress),
    _policy("dmarc-policy", "DMARC is quarantine or reject, with rua", validate_dmarc),
    _policy("spf-lookups", "SPF needs at most 10 DNS lookups", validate_spf),
    _policy("dkim-key-size", "RSA DKIM keys are at least 2048 bits", validate_dkim_key_size),
]
