"""The config bucket answers only over TLS and keeps old manifest versions long enough to roll back."""

from __future__ import annotations

import fnmatch
import json
from typing import Any

import pytest

from components.config_bundle import bundle_key
from tests.pulumi.conftest import resources_of

BUCKET = "aws:s3/bucket:Bucket"
POLICY = "aws:s3/bucketPolicy:BucketPolicy"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"


@pytest.fixture(scope="module")
def run(mock_runs) -> dict[str, Any]:
    return mock_runs("dev")


def _only(run: dict[str, Any], type_token: str) -> dict[str, Any]:
    [resource] = resources_of(run, type_token)
    return resource


def _denied(policy: dict[str, Any], action: str, resource: str, context: dict[str, str]) -> bool:
    """IAM policy evaluation, as far as an explicit Deny goes (IAM User Guide, "Policy evaluation logic"):
    a Deny statement applies when its action and resource patterns match (`*` and `?` wildcards) and every
    condition holds; `Bool` compares the request's key as the strings "true"/"false"."""
    for statement in policy["Statement"]:
        if statement["Effect"] != "Deny" or statement.get("Principal") not in ("*", {"AWS": "*"}):
            continue
        actions = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        resources = [statement["Resource"]] if isinstance(statement["Resource"], str) else statement["Resource"]
        if not any(fnmatch.fnmatchcase(action, a) for a in actions):
            continue
        if not any(fnmatch.fnmatchcase(resource, r) for r in resources):
            continue
        conditions = statement.get("Condition", {})
        assert set(conditions) <= {"Bool"}, conditions  # the only operator this evaluator knows
        if all(context.get(key) == str(value).lower() for key, value in conditions.get("Bool", {}).items()):
            return True
    return False


def test_a_request_without_tls_is_denied_and_one_with_tls_is_not(run):
    inputs = _only(run, POLICY)["inputs"]
    # A bucket's ARN is arn:aws:s3:::<name> (no region, no account); the policy names the bucket by name.
    arn = f"arn:aws:s3:::{inputs['bucket']}"
    assert inputs["bucket"].startswith(_only(run, BUCKET)["inputs"]["bucketPrefix"])
    policy = json.loads(inputs["policy"])
    manifest = f"{arn}/{bundle_key('mta1')}"
    for action, resource in (("s3:GetObject", manifest), ("s3:PutObject", manifest), ("s3:ListBucket", arn),
                             ("s3:DeleteObjectVersion", manifest)):
        assert _denied(policy, action, resource, {"aws:SecureTransport": "false"}), (action, resource)
        assert not _denied(policy, action, resource, {"aws:SecureTransport": "true"}), (action, resource)


def test_the_policy_waits_for_the_public_access_block(run):
    """S3 aborts concurrent changes to one bucket's access configuration (OperationAborted)."""
    public_access = _only(run, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    assert public_access["name"] in _only(run, POLICY)["depends_on"]


def test_old_versions_expire_after_a_quarter_and_stale_uploads_are_aborted(run):
    lifecycle = _only(run, LIFECYCLE)
    [rule] = lifecycle["inputs"]["rules"]
    assert rule["status"] == "Enabled"
    # No prefix, tag or size predicate: the rule covers every manifest (an empty filter = all objects).
    assert not {k: v for k, v in (rule.get("filter") or {}).items() if v not in (None, "", {})}
    expiration = rule["noncurrentVersionExpiration"]
    # S3 expires a noncurrent version only once it is older than noncurrentDays AND more than
    # newerNoncurrentVersions newer noncurrent versions exist (S3 User Guide, NoncurrentVersionExpiration).
    assert expiration["noncurrentDays"] >= 30 and expiration["newerNoncurrentVersions"] >= 1
    assert rule["abortIncompleteMultipartUpload"]["daysAfterInitiation"] >= 1
    assert "expiration" not in rule  # the current manifest, which hosts apply, never expires
    assert _only(run, "aws:s3/bucketVersioning:BucketVersioning")["name"] in lifecycle["depends_on"]
