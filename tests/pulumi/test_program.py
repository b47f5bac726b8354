"""The whole Pulumi program (__main__.py) for each reference stack, under the mock runtime."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from components.dkim_keys import delivered_keys, public_half
from components.dns_records import forward_records
from components.secondary_route import route_hosts
from mailinfra.deployment import cloudflare, route53
from mailinfra.deployment.mock_runtime import SECRET_MARKER
from mailinfra.deployment.program import resources_from_json
from mailinfra.deployment.published import txt_strings
from mailinfra.dns.dkim import build_dkim_ed25519, build_dkim_rsa, dkim_record_name, dkim_secret_key
from mailinfra.dns.records import RecordType
from mailinfra.dns.txt import join_txt, split_txt
from mailinfra.placement.render import reader_host
from tests.pulumi.conftest import STACKS, generate_keys, preview_config, resources_of, run_mock

EIP = "aws:ec2/eip:Eip"
PTR = "aws:ec2/eipDomainName:EipDomainName"
R53 = "aws:route53/record:Record"
CF = "cloudflare:index/dnsRecord:DnsRecord"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
INSTANCE = "aws:ec2/instance:Instance"
PARAMETER = "aws:ssm/parameter:Parameter"
BUCKET = "aws:s3/bucket:Bucket"
BUNDLE = "aws:s3/bucketObjectv2:BucketObjectv2"


def _published_txt(resource: dict[str, Any]) -> list[list[str]]:
    """The character-strings the provider would publish for a record resource's TXT values: Route53 as
    terraform-provider-aws sends them (record.go flattenTxtEntry wraps each entry in quotes), Cloudflare
    as its API reads `content` (quoted RFC 1035 strings); see mailinfra/deployment/route53.py, cloudflare.py."""
    entry = resources_from_json([resource])[0]
    rrset = (route53.published_rrset(entry) if resource["type"] == R53 else cloudflare.published_rrset(entry))
    return [[s.decode() for s in txt_strings(rdata)] for rdata in rrset.rdatas]


def _children(run: dict[str, Any], parent_type: str) -> list[dict[str, Any]]:
    parents = {r["name"] for r in run["resources"] if r["type"] == parent_type}
    return [r for r in run["resources"] if r["parent"] in parents]


@pytest.mark.parametrize("stack", STACKS)
def test_resource_counts_follow_the_plan(stack, mock_runs, plans):
    """One EIP, PTR and association per IP; one instance and config bundle per host; one DNS resource per
    planned RRset/value; one config bucket per stack."""
    run, plan = mock_runs(stack), plans(stack)
    counts = Counter(r["type"] for r in run["resources"])
    assert counts[EIP] == counts[PTR] == counts["aws:ec2/eipAssociation:EipAssociation"] == len(plan.ips)
    assert counts[INSTANCE] == counts["aws:ec2/networkInterface:NetworkInterface"] == len(plan.hosts)
    assert counts[BUNDLE] == len(plan.hosts) + 1  # and the host services' code object, one for all hosts
    assert counts[BUCKET] == counts["aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"] == 1
    assert counts["aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"] == 1
    assert counts["aws:s3/bucketVersioning:BucketVersioning"] == 1
    forward = forward_records(plan, set())
    if plan.dns_provider == "cloudflare":
        assert counts[CF] == sum(len(r.values) for r in forward) and counts[R53] == 0
    else:
        assert counts[R53] == len(forward) and counts[CF] == 0
    dkim = sum(len(delivered_keys(plan, h)) for h in plan.hosts)
    relay = sum(len(route_hosts(plan, r)) for r in plan.routes if r.kind == "relay" and r.password_secret)
    ses = sum(2 * len(route_hosts(plan, r)) for r in plan.routes if r.kind == "ses")
    verp = sum(1 for h in plan.hosts if h.mta == "postfix")  # the VERP/feed secret (components/suppression.py)
    # One IMAP password per seed, on the seed reader's host only (components/placement.py).
    seeds = len(plan.seeds) if reader_host(plan) else 0
    assert counts[PARAMETER] == dkim + relay + ses + verp + seeds
    assert counts["aws:sesv2/emailIdentity:EmailIdentity"] == sum(
        len(r.streams) for r in plan.routes if r.kind == "ses")


@pytest.mark.parametrize("stack", STACKS)
def test_every_eip_is_protected_retained_and_adopted_ones_imported(stack, mock_runs, plans):
    run, plan = mock_runs(stack), plans(stack)
    eips = {r["inputs"]["tags"]["ip"]: r for r in resources_of(run, EIP)}
    assert set(eips) == {ip.name for ip in plan.ips}
    for ip in plan.ips:
        eip = eips[ip.name]
        assert eip["protect"] and eip["retain_on_delete"], ip.name
        assert eip["inputs"]["domain"] == "vpc"
        assert eip["import_id"] == (ip.allocation_id if ip.adopted else None), ip.name
        assert eip["inputs"]["tags"] == {"Name": ip.helo, "stream": ip.stream, "pool": ip.pool, "ip": ip.name,
                                         "environment": plan.environment, "stack": stack}


@pytest.mark.parametrize("stack", STACKS)
def test_every_ptr_depends_on_its_own_a_record(stack, mock_runs):
    run = mock_runs(stack)
    a_records = {r["name"]: r for r in run["resources"] if r["type"] in (R53, CF) and r["inputs"]["type"] == "A"}
    for ptr in resources_of(run, PTR):
        own = [name for name in ptr["depends_on"]
               if name in a_records and a_records[name]["inputs"]["name"] == ptr["inputs"]["domainName"]]
        assert own, f"{ptr['name']} does not depend on the A record of {ptr['inputs']['domainName']}"


@pytest.mark.parametrize("stack", STACKS)
def test_instances_require_imdsv2_encrypt_root_and_have_no_key_pair(stack, mock_runs):
    for instance in resources_of(mock_runs(stack), INSTANCE):
        inputs = instance["inputs"]
        assert inputs["metadataOptions"]["httpTokens"] == "required"
        assert inputs["rootBlockDevice"]["encrypted"] is True
        assert "keyName" not in inputs
        assert inputs.get("userData") or inputs.get("userDataBase64")


@pytest.mark.parametrize("stack", STACKS)
def test_hosts_read_only_their_own_parameters(stack, mock_runs, plans):
    """The role policy names exactly the host's parameters; nothing grants ssm:GetParameter on '*'."""
    run, plan = mock_runs(stack), plans(stack)
    for host in plan.hosts:
        prefix = f"/mailinfra/{plan.environment}/{host.name}/"
        own = sorted(p["inputs"]["name"] for p in resources_of(run, PARAMETER)
                     if p["inputs"]["name"].startswith(prefix))
        policies = [r for r in resources_of(run, "aws:iam/rolePolicy:RolePolicy")
                    if r["name"].startswith(f"host-{host.name}-")]
        statements = [s for p in policies for s in json.loads(p["inputs"]["policy"])["Statement"]]
        reads = [s for s in statements if any(str(a).startswith("ssm:GetParameter") for a in
                                              ([s["Action"]] if isinstance(s["Action"], str) else s["Action"]))]
        arns = sorted(a for s in reads for a in s["Resource"])
        assert [a.split(":parameter", 1)[1] for a in arns] == own
        assert "*" not in arns
    assert not resources_of(run, "aws:iam/rolePolicyAttachment:RolePolicyAttachment")


@pytest.mark.parametrize("stack", STACKS)
def test_config_bucket_is_private_encrypted_and_versioned(stack, mock_runs):
    """Public access blocked on all four counts, SSE by default, versioning on, never force-destroyed."""
    run = mock_runs(stack)
    (bucket,) = resources_of(run, BUCKET)
    name = bucket["inputs"]["bucketPrefix"]
    assert bucket["inputs"]["forceDestroy"] is False
    (block,) = resources_of(run, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    assert block["inputs"]["bucket"].startswith(name)
    assert all(block["inputs"][k] is True for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls",
                                                     "restrictPublicBuckets"))
    (sse,) = resources_of(run, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
    assert sse["inputs"]["bucket"] == block["inputs"]["bucket"]
    algorithms = {r["applyServerSideEncryptionByDefault"]["sseAlgorithm"] for r in sse["inputs"]["rules"]}
    assert algorithms and algorithms <= {"AES256", "aws:kms"}
    (versioning,) = resources_of(run, "aws:s3/bucketVersioning:BucketVersioning")
    assert versioning["inputs"]["bucket"] == block["inputs"]["bucket"]
    assert versioning["inputs"]["versioningConfiguration"]["status"] == "Enabled"
    assert all(o["inputs"]["bucket"] == block["inputs"]["bucket"] for o in resources_of(run, BUNDLE))


@pytest.mark.parametrize("stack", STACKS)
def test_hosts_read_only_their_own_config_bundle(stack, mock_runs, plans):
    """Each role may s3:GetObject exactly its host's bundle object and the host services' code object (the
    one its manifest names), and no other S3 action or resource; its user data fetches that object."""
    run, plan = mock_runs(stack), plans(stack)
    bundles = {o["parent"]: o["inputs"] for o in resources_of(run, BUNDLE)}
    instances = {i["parent"]: i["inputs"] for i in resources_of(run, INSTANCE)}
    for host in plan.hosts:
        bundle = bundles[f"host-{host.name}"]
        assert bundle["key"] == f"hosts/{host.name}/bundle.json"
        policies = [r for r in resources_of(run, "aws:iam/rolePolicy:RolePolicy")
                    if r["name"].startswith(f"host-{host.name}-")]
        statements = [s for p in policies for s in json.loads(p["inputs"]["policy"])["Statement"]]
        s3 = [s for s in statements if any(str(a).startswith("s3:") for a in
                                           ([s["Action"]] if isinstance(s["Action"], str) else s["Action"]))]
        code = json.loads(bundle["content"])["code"]["key"]
        assert [(s["Action"], s["Resource"]) for s in s3] == [
            ("s3:GetObject", [f"arn:aws:s3:::{bundle['bucket']}/{bundle['key']}",
                              f"arn:aws:s3:::{bundle['bucket']}/{code}"])], host.name
        user_data = _user_data(instances[f"host-{host.name}"])
        assert f"s3://{bundle['bucket']}/{bundle['key']}" in user_data, host.name


def _user_data(inputs: dict[str, Any]) -> str:
    """The instance's cloud-config, raw or gzipped (mta_host sends it gzipped above 16 KB)."""
    if inputs.get("userDataBase64"):
        return gzip.decompress(base64.b64decode(inputs["userDataBase64"])).decode()
    return str(inputs.get("userData") or "")


@pytest.mark.parametrize("stack", STACKS)
def test_txt_records_are_split_at_255_bytes_in_the_providers_format(stack, mock_runs, plans):
    run, plan = mock_runs(stack), plans(stack)
    planned = {r.key: r for r in plan.records}
    dns_type = CF if plan.dns_provider == "cloudflare" else R53
    long_seen = False
    for resource in resources_of(run, dns_type):
        inputs = resource["inputs"]
        record = planned[f"{inputs['type']}:{inputs['name']}"]
        if record.type is RecordType.TXT:
            # What the provider publishes (it raises where the provider would refuse the value).
            published = _published_txt(resource)
            for strings in published:
                assert all(len(s.encode()) <= 255 for s in strings)
                assert strings == list(split_txt(join_txt(strings)))
                long_seen |= len(strings) > 1
            if not record.placeholder or "spf1" not in record.values[0]:
                assert [join_txt(s) for s in published] == list(record.values) or dns_type == CF
        if dns_type == CF and record.type is RecordType.MX:
            assert f"{int(inputs['priority'])} {inputs['content']}" in record.values
    assert long_seen, "an RSA-2048 DKIM record is longer than 255 bytes and must be split"


def test_cloudflare_has_one_record_per_value_and_route53_one_per_rrset(mock_runs, plans):
    """MX with two bounce hosts: Route53 one Record with both values, Cloudflare two records."""
    for stack in STACKS:
        run, plan = mock_runs(stack), plans(stack)
        for record in forward_records(plan, set()):
            matching = [r for r in run["resources"] if r["type"] in (R53, CF)
                        and r["inputs"]["name"] == record.name and r["inputs"]["type"] == str(record.type)]
            assert len(matching) == (len(record.values) if plan.dns_provider == "cloudflare" else 1), record.key


@pytest.mark.parametrize("stack", STACKS)
def test_no_secret_in_a_plain_output(stack, mock_runs):
    run = mock_runs(stack)
    outputs = json.dumps(run["outputs"])
    for resource in run["resources"]:
        for path, digest in resource.get("secret_sha256", {}).items():
            assert digest not in outputs, path
        for path in resource["secret_inputs"]:
            assert path.split(".")[0] in resource["inputs"]
    for parameter in resources_of(run, PARAMETER):
        assert parameter["inputs"]["type"] == "SecureString"
        assert parameter["inputs"]["value"] == SECRET_MARKER, parameter["name"]
    for user_data in (_user_data(i["inputs"]) for i in resources_of(run, INSTANCE)):
        assert "PRIVATE KEY" not in user_data and SECRET_MARKER not in user_data
    for bundle in (o["inputs"]["content"] for o in resources_of(run, BUNDLE)):
        assert "PRIVATE KEY" not in bundle and SECRET_MARKER not in bundle


# ----------------------------------------------------------------- `pulumi up` with real key material


def _with_keys(stack, plan, keys, *, swap=False):
    config, secret_keys = preview_config(stack)
    domains = json.loads(config["mailinfra:domains"])
    for (domain, selector), (pem, public) in keys.items():
        domains[domain]["dkim"]["selectors"][selector]["public_key"] = public
        secret = f"mailinfra:{dkim_secret_key(domain, selector)}"
        config[secret] = pem
        secret_keys.append(secret)
    if swap:  # give every key's secret the private half of another key of its algorithm (not the published one)
        # Same algorithm for every key: each refusal is "another key", whichever check the runtime reaches first.
        for (domain, selector), (pem, _) in generate_keys(plan).items():
            config[f"mailinfra:{dkim_secret_key(domain, selector)}"] = pem
    config["mailinfra:domains"] = json.dumps(domains)
    for route in plan.routes:
        if route.password_secret:
            config[f"mailinfra:{route.password_secret}"] = "relay-test-password-" + route.name
            secret_keys.append(f"mailinfra:{route.password_secret}")
    return config, sorted(set(secret_keys))


@pytest.fixture(scope="module")
def keyed_dev(plans, tmp_path_factory):
    plan = plans("dev")
    keys = generate_keys(plan)
    config, secret_keys = _with_keys("dev", plan, keys)
    run = run_mock("dev", tmp_path_factory.mktemp("keyed"), config, secret_keys, up=True)
    assert "error" not in run, run.get("error")
    return plan, keys, run


def test_dkim_txt_is_the_public_half_of_the_key_the_host_receives(keyed_dev):
    plan, keys, run = keyed_dev
    by_hash = {hashlib.sha256(pem.encode()).hexdigest(): pem for pem, _ in keys.values()}
    txt = {r["inputs"]["name"]: join_txt(_published_txt(r)[0])
           for r in resources_of(run, R53) if r["inputs"]["type"] == "TXT"}
    checked = 0
    for host in plan.hosts:
        for key in delivered_keys(plan, host):
            parameter = next(p for p in resources_of(run, PARAMETER)
                             if p["inputs"]["name"] == f"/mailinfra/dev/{host.name}/dkim/{key.domain}/{key.selector}")
            pem = by_hash[parameter["secret_sha256"]["value"]]
            public = public_half(pem, key.algorithm)
            build = build_dkim_ed25519 if key.algorithm == "ed25519" else build_dkim_rsa
            for domain in key.signing_domains:
                assert txt[dkim_record_name(key.selector, domain)] == build(public)
                checked += 1
    assert checked >= 2


def test_ses_identity_signs_with_our_selector_and_the_smtp_password_is_secret(keyed_dev):
    plan, keys, run = keyed_dev
    identities = resources_of(run, "aws:sesv2/emailIdentity:EmailIdentity")
    assert identities
    for identity in identities:
        stream = next(s for s in plan.streams if s.sending_domain == identity["inputs"]["emailIdentity"])
        # The private key makes the whole attribute block secret (Pulumi marks the enclosing input).
        assert identity["inputs"]["dkimSigningAttributes"] == SECRET_MARKER
        assert identity["secret_sha256"]["dkimSigningAttributes.domainSigningSelector"] == \
            hashlib.sha256(stream.dkim_selector.encode()).hexdigest()
        pem = keys[(stream.org_domain, stream.dkim_selector)][0]
        body = "".join(line for line in pem.splitlines() if not line.startswith("-----"))
        assert identity["secret_sha256"]["dkimSigningAttributes.domainSigningPrivateKey"] == \
            hashlib.sha256(body.encode()).hexdigest()
        base64.b64decode(body)  # SES takes the base64 DER body
    mail_from = {r["inputs"]["mailFromDomain"] for r in
                 resources_of(run, "aws:sesv2/emailIdentityMailFromAttributes:EmailIdentityMailFromAttributes")}
    planned_mx = {r.name for r in plan.records if r.type is RecordType.MX and r.name.startswith("ses.")}
    assert mail_from == planned_mx
    passwords = [p for p in resources_of(run, PARAMETER) if p["inputs"]["name"].endswith("/route/ses/password")]
    assert passwords and all(p["inputs"]["value"] == SECRET_MARKER for p in passwords)
    policy = json.loads(resources_of(run, "aws:iam/userPolicy:UserPolicy")[0]["inputs"]["policy"])
    assert [s["Action"] for s in policy["Statement"]] == ["ses:SendRawEmail"]


def test_up_refuses_a_private_key_that_is_not_the_published_one(plans, tmp_path):
    plan = plans("dev")
    config, secret_keys = _with_keys("dev", plan, generate_keys(plan), swap=True)
    run = run_mock("dev", tmp_path, config, secret_keys, up=True)
    assert "received the private half of another key" in run["error"]
    assert "\n" not in run["error"]


def test_up_refuses_the_preview_placeholder_dkim_key(tmp_path):
    config, secret_keys = preview_config("dev")
    run = run_mock("dev", tmp_path, config, secret_keys, up=True)
    assert "public_key: received nothing" in run["error"]


# ----------------------------------------------------------------- renames and bad config


def test_renamed_stream_keeps_its_eips_and_renamed_ip_aliases_the_old_one(mock_runs, tmp_path):
    """GIVEN dev WHEN stream `transactional` becomes `tx-mail` (previous_names) and IP tx1 becomes tx9
    THEN every other EIP keeps its URN (tags change in place) and tx9 aliases tx1's name."""
    before = {r["urn"]: r for r in resources_of(mock_runs("dev"), EIP)}
    config, secret_keys = preview_config("dev")
    streams = json.loads(config["mailinfra:streams"])
    streams["tx-mail"] = {**streams.pop("transactional"), "previous_names": ["transactional"]}
    pools = json.loads(config["mailinfra:pools"])
    pools["tx"]["ips"]["tx9"] = {**pools["tx"]["ips"].pop("tx1"), "previous_names": ["tx1"],
                                 "helo": "tx1.mail.example.com"}
    config["mailinfra:streams"], config["mailinfra:pools"] = json.dumps(streams), json.dumps(pools)
    after = run_mock("dev", tmp_path, config, secret_keys)
    assert "error" not in after, after.get("error")
    renamed = {r["urn"]: r for r in resources_of(after, EIP)}
    moved = [r for urn, r in renamed.items() if urn not in before]
    assert [r["name"] for r in moved] == ["ip-tx9"]
    # Its first alias is its own old name; the `pool-<pool>-<ip>` ones are for deployments made before
    # EIPs were named by their IP (tests/pulumi/test_pool_identity.py).
    assert moved[0]["aliases"][0] == "ip-tx1" and "pool-tx-tx1" in moved[0]["aliases"]
    assert "ip-tx1" in {r["name"] for r in before.values()}
    tx_streams = {r["inputs"]["tags"]["stream"] for r in renamed.values() if r["inputs"]["tags"]["pool"] == "tx"}
    assert tx_streams == {"tx-mail"}


def test_bad_config_is_one_line_naming_the_key(tmp_path):
    config, secret_keys = preview_config("dev")
    hosts = json.loads(config["mailinfra:hosts"])
    hosts["mta1"]["instance_type"] = "t3.nano-typo"
    config["mailinfra:hosts"] = json.dumps(hosts)
    run = run_mock("dev", tmp_path, config, secret_keys)
    assert "mailinfra:hosts.mta1.instance_type" in run["error"]
    assert "Traceback" not in run["error"]


def test_relay_password_in_plain_text_is_refused(tmp_path):
    config, secret_keys = preview_config("dev")
    secret_keys.remove("mailinfra:relay_password")
    config["mailinfra:relay_password"] = "hunter2"
    run = run_mock("dev", tmp_path, config, secret_keys)
    assert "relay_password" in run["error"] and "hunter2" not in run["error"]


def test_preview_of_a_stack_without_cloudflare_never_imports_it():
    import subprocess
    import sys

    code = ("import sys; from mailinfra.deployment.mock_runtime import collect_resources; collect_resources('dev'); "
            "print('pulumi_cloudflare' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2],
                          capture_output=True, text=True, check=True, timeout=180)
    assert done.stdout.strip().splitlines()[-1] == "False"
