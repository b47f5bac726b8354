"""The pack on the resources the real program registers (run under the SDK's mocks, as preview does).

Our own stacks pass every rule; a deliberately broken copy of one real resource makes exactly the
rule meant for it fire, at the level the pack declares.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import policies
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mailinfra.dns.txt import quote_txt
from tests.policy.conftest import STACKS, analyze, analyze_all, analyze_stack

Resources = list[dict[str, Any]]


@pytest.mark.parametrize("stack", STACKS)
def test_our_stacks_pass_every_policy(stack: str, stack_resources: Callable[[str], Resources]) -> None:
    resources = stack_resources(stack)
    assert len(resources) > 50
    assert analyze_all(resources) == []


def pick(resources: Resources, name: str) -> dict[str, Any]:
    return next(r for r in resources if r["name"] == name)


def policy_of(resource: dict[str, Any]) -> dict[str, Any]:
    return json.loads(resource["inputs"]["policy"])


def set_policy(resource: dict[str, Any], document: dict[str, Any]) -> None:
    resource["inputs"]["policy"] = json.dumps(document)


def retext(resource: dict[str, Any], change: Callable[[str], str]) -> None:
    """Change a real TXT record's text, keeping the form the program gave its value (quoted or bare)."""
    from mailinfra_policy.dns import unquote_txt

    value = resource["inputs"]["records"][0]
    quoted = value.startswith('"')
    text = change(unquote_txt(value) if quoted else value.replace('""', ""))
    chunks = [text[i:i + 255] for i in range(0, len(text), 255)]
    resource["inputs"]["records"] = [quote_txt(text) if quoted else '""'.join(chunks)]


def rsa_1024() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def unprotect_eip(rs: Resources) -> str:
    pick(rs, "ip-com-tx1")["protect"] = False
    return "ip-com-tx1"


def imdsv1(rs: Resources) -> str:
    pick(rs, "host-tx-a-instance")["inputs"]["metadataOptions"]["httpTokens"] = "optional"
    return "host-tx-a-instance"


def public_submission(rs: Resources) -> str:
    rule = pick(rs, "host-pmta1-inject-10.20.0.0/16")["inputs"]
    rule.update(fromPort=587, toPort=587, cidrIpv4="0.0.0.0/0")
    return "host-pmta1-inject-10.20.0.0/16"


def public_smtp_on_a_sender(rs: Resources) -> str:
    # tcp/25 from anywhere is fine on tx-a (an MX target), not on pmta1, which no MX names.
    pick(rs, "host-pmta1-inject-10.20.0.0/16")["inputs"]["cidrIpv4"] = "0.0.0.0/0"
    return "host-pmta1-inject-10.20.0.0/16"


def egress_all(rs: Resources) -> str:
    pick(rs, "host-tx-a-egress-25")["inputs"]["ipProtocol"] = "-1"
    return "host-tx-a-egress-25"


def secrets_on_any_resource(rs: Resources) -> str:
    resource = pick(rs, "host-pmta1-own-secrets")
    document = policy_of(resource)
    document["Statement"][0]["Resource"] = "*"
    set_policy(resource, document)
    return resource["name"]


def agent_reads_every_parameter(rs: Resources) -> str:
    # AmazonSSMManagedInstanceCore grants ssm:GetParameters on "*"; our agent policy must not.
    resource = pick(rs, "host-tx-a-ssm-agent")
    document = policy_of(resource)
    document["Statement"][0]["Action"].append("ssm:GetParameters")
    set_policy(resource, document)
    return resource["name"]


def decrypt_anything(rs: Resources) -> str:
    resource = pick(rs, "host-pmta1-own-secrets")
    document = policy_of(resource)
    del document["Statement"][1]["Condition"]
    set_policy(resource, document)
    return resource["name"]


def send_as_anyone(rs: Resources) -> str:
    resource = pick(rs, "route-ses-smtp-send")
    document = policy_of(resource)
    document["Statement"][0]["Action"] = "*"
    set_policy(resource, document)
    return resource["name"]


def plain_root_disk(rs: Resources) -> str:
    pick(rs, "host-tx-a-instance")["inputs"]["rootBlockDevice"]["encrypted"] = False
    return "host-tx-a-instance"


def dkim_key_in_clear(rs: Resources) -> str:
    name = "dkim-tx-a-example.com-s2026b"
    pick(rs, name)["inputs"]["type"] = "String"
    return name


def unencrypted_bucket(rs: Resources) -> str:
    rs.remove(pick(rs, "config-encryption"))
    return "config-bucket"


def dmarc_without_p(rs: Resources) -> str:
    name = "dns-txt-_dmarc.example.com"
    retext(pick(rs, name), lambda t: "; ".join(p for p in t.split("; ") if not p.startswith("p=")))
    return name


def dmarc_monitoring(rs: Resources) -> str:
    name = "dns-txt-_dmarc.example.com"
    retext(pick(rs, name), lambda t: t.replace("p=reject", "p=none").replace("p=quarantine", "p=none"))
    return name


def spf_too_many_lookups(rs: Resources) -> str:
    name = "dns-txt-bounce.mail.example.com"
    extra = " ".join(f"include:s{i}.example.org" for i in range(10))
    retext(pick(rs, name), lambda t: t.replace("v=spf1 ", f"v=spf1 {extra} "))
    return name


def short_dkim_key(rs: Resources) -> str:
    name = next(r["name"] for r in rs if r["name"].startswith("dns-txt-s") and "._domainkey." in r["name"])
    retext(pick(rs, name), lambda t: t.split("p=")[0] + f"p={rsa_1024()}")
    return name


BROKEN = [
    ("eip-protected", unprotect_eip),
    ("instance-imdsv2", imdsv1),
    ("smtp-ingress", public_submission),
    ("smtp-ingress-mx-hosts", public_smtp_on_a_sender),
    ("egress-open", egress_all),
    ("iam-wildcards", secrets_on_any_resource),
    ("iam-wildcards", agent_reads_every_parameter),
    ("iam-wildcards", decrypt_anything),
    ("iam-wildcards", send_as_anyone),
    ("ebs-encrypted", plain_root_disk),
    ("ssm-secure-string", dkim_key_in_clear),
    ("s3-bucket-encryption", unencrypted_bucket),
    ("dmarc-record", dmarc_without_p),
    ("dmarc-policy", dmarc_monitoring),
    ("spf-lookups", spf_too_many_lookups),
    ("dkim-key-size", short_dkim_key),
]


@pytest.mark.parametrize(("rule", "breaks"), BROKEN, ids=[b.__name__ for _, b in BROKEN])
def test_each_rule_fires_on_a_broken_copy_of_a_real_resource(
    rule: str, breaks: Callable[[Resources], str], stack_resources: Callable[[str], Resources]
) -> None:
    resources = stack_resources("prod")
    name = breaks(resources)
    broken = pick(resources, name)
    found = analyze(broken["type"], broken["inputs"], name=name, protect=broken["protect"], urn=broken["urn"])
    found += analyze_stack(resources)
    assert {f.policy for f in found} == {rule}, found
    level = policies.RULES[rule].level.name.lower()
    assert all(f.level == level for f in found)
    assert any(name in f.message for f in found)


def test_every_rule_has_a_broken_case() -> None:
    assert {rule for rule, _ in BROKEN} == set(policies.RULES)
