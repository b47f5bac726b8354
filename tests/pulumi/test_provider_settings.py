"""The SES route's regional provider is the stack's AWS provider in another region; the region is the one the
default provider uses, wherever it comes from (config, environment, ESC)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pulumi_aws
import pytest

from components.aws_provider import provider_setting_names
from tests.pulumi.conftest import preview_config, resources_of, run_mock

PROVIDER = "pulumi:providers:aws"
ROLE = {"roleArn": "arn:aws:iam::111122223333:role/mailinfra-deploy", "sessionName": "mailinfra"}


def test_every_provider_argument_is_a_config_key_of_the_aws_provider():
    """The settings carried are exactly the aws: config keys the pulumi-aws SDK reads for its default provider
    (pulumi_aws/config/vars.py), so none is dropped and none is invented."""
    source = (Path(pulumi_aws.__file__).parent / "config" / "vars.py").read_text()
    config_keys = set(re.findall(r"__config__\.get\w*\('(\w+)'\)", source))
    assert {"profile", "assumeRoles", "allowedAccountIds", "region"} <= config_keys
    assert set(provider_setting_names().values()) == config_keys


def _dev_in(region_from: str, monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, str], list[str]]:
    """dev with the stack's default region eu-west-1 given by config or by the environment, and the
    settings a real stack carries: a profile, a role to assume, an account guard, a secret key pair."""
    config, secret_keys = preview_config("dev")
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    del config["aws:region"]
    if region_from == "config":
        config["aws:region"] = "eu-west-1"
    else:
        monkeypatch.setenv("AWS_REGION", "eu-west-1")  # e.g. ESC environmentVariables or CI
    hosts = json.loads(config["mailinfra:hosts"])
    hosts["mta1"]["availability_zone"] = "eu-west-1a"
    config["mailinfra:hosts"] = json.dumps(hosts)
    config["aws:profile"] = "mailinfra-deploy"
    config["aws:assumeRoles"] = json.dumps([ROLE])
    config["aws:allowedAccountIds"] = json.dumps(["111122223333"])
    config["aws:skipMetadataApiCheck"] = "true"
    config["aws:secretKey"] = "test-secret-key-value"
    return config, [*secret_keys, "aws:secretKey"]


@pytest.mark.parametrize("region_from", ["config", "environment"])
def test_ses_route_in_another_region_gets_the_stacks_provider_settings(region_from, monkeypatch, tmp_path):
    """GIVEN dev (SES route in us-east-1) on a stack whose default region is eu-west-1 WHEN previewed THEN the
    access key that derives the SES SMTP password uses a provider in us-east-1 with every aws: setting of the
    stack, as the default provider gets them (the password is derived for the provider's region)."""
    config, secret_keys = _dev_in(region_from, monkeypatch)
    run = run_mock("dev", tmp_path, config, secret_keys)
    assert "error" not in run, run.get("error")
    providers = resources_of(run, PROVIDER)
    assert [p["name"] for p in providers] == ["route-ses-region"]
    inputs = providers[0]["inputs"]
    assert inputs["region"] == "us-east-1"
    assert inputs["profile"] == "mailinfra-deploy"
    # The SDK sends object and list settings as JSON, the form the engine gives the default provider.
    assert json.loads(inputs["assumeRoles"]) == [ROLE]
    assert json.loads(inputs["allowedAccountIds"]) == ["111122223333"]
    assert json.loads(inputs["skipMetadataApiCheck"]) is True
    assert inputs["secretKey"] == "[secret]"
    assert providers[0]["secret_sha256"]["secretKey"] == hashlib.sha256(b"test-secret-key-value").hexdigest()
    key = next(r for r in run["resources"] if r["type"] == "aws:iam/accessKey:AccessKey")
    assert key["provider"].startswith(providers[0]["urn"] + "::")


def test_hosts_decrypt_through_ssm_in_the_region_the_provider_uses(monkeypatch, tmp_path):
    """With the region from AWS_REGION only, the hosts' KMS condition names that region (kms:ViaService
    ssm.<region>.amazonaws.com), not a hard-coded us-east-1."""
    config, secret_keys = _dev_in("environment", monkeypatch)
    run = run_mock("dev", tmp_path, config, secret_keys)
    policies = [json.loads(p["inputs"]["policy"]) for p in resources_of(run, "aws:iam/rolePolicy:RolePolicy")
                if p["name"].endswith("-own-secrets")]
    assert policies
    services = {s["Condition"]["StringEquals"]["kms:ViaService"] for p in policies for s in p["Statement"]
                if "Condition" in s}
    assert services == {"ssm.eu-west-1.amazonaws.com"}


def test_no_region_anywhere_is_one_line_naming_the_stack_file(monkeypatch, tmp_path):
    config, secret_keys = preview_config("dev")
    del config["aws:region"]
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    run = run_mock("dev", tmp_path, config, secret_keys)
    assert run["error"].startswith("stacks/Pulumi.dev.yaml: aws:region: received nothing")
    assert "expected the stack's region" in run["error"] and "\n" not in run["error"]


def test_zones_are_checked_against_the_region_from_the_environment(monkeypatch, tmp_path):
    """dev's host in us-east-1a on a stack whose provider region is eu-west-1 (AWS_REGION): refused, one line."""
    config, secret_keys = preview_config("dev")
    del config["aws:region"]
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    run = run_mock("dev", tmp_path, config, secret_keys)
    assert run["error"] == ("stacks/Pulumi.dev.yaml: mailinfra:hosts.mta1.availability_zone: received 'us-east-1a', "
                            "expected an availability zone of the stack's region eu-west-1 (aws:region), "
                            "such as eu-west-1a")
