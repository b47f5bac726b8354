"""ConfigBundle: the private S3 bucket that holds each host's config manifest (one object per host).

EC2 accepts at most 16 KB of user data, and changing it stops and starts the instance (cloud-init then does
not even re-run). So everything a plan change touches on a host — its rendered files, the secrets it fetches,
its private addresses, its postmulti instances — is its manifest, `hosts/<host>/bundle.json` here; the host's
user data is a static bootstrap that applies its own object with its role (which can read that object and
nothing else), and `mailinfra-refresh-config` applies it again after `pulumi up`.

The manifest holds no secret (only SSM parameter names and markers); the bucket is private anyway:
public access blocked, encrypted at rest, reachable over TLS only, versioned (a bad config can be rolled
back object by object), old versions expired after NONCURRENT_DAYS.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.tags import stack_tags

# A manifest version stays restorable for a quarter after it was replaced: a bad change can show only in
# weekly reputation data or late in a warmup (the schedules run 4-6 weeks), and restoring it means copying an
# old version back. The newest NONCURRENT_KEEP old versions stay whatever their age, so a stack that rarely
# changes keeps its last good configs. Manifests are a few KB: the cost is nil.
NONCURRENT_DAYS = 90
NONCURRENT_KEEP = 10
# The hosts PUT nothing and the program writes small objects in one PUT: parts left by an interrupted
# multipart upload are only storage nobody sees (S3 User Guide, "Configuring a bucket lifecycle configuration
# to delete incomplete multipart uploads").
ABORT_MULTIPART_DAYS = 7


def bundle_key(host: str) -> str:
    """The object key of a host's manifest (components/mta_host.py:render_manifest, a JSON object).
    Kept from when it was a list of files: the key is in every instance's user data."""
    return f"hosts/{host}/bundle.json"


@dataclass
class ConfigBundleArgs:
    environment: str
    # The host services' code (mailinfra.mta.host_code.render_host_code_object): key, sha256, JSON text.
    host_code: tuple[str, str, str] | None = None


class ConfigBundle(pulumi.ComponentResource):
    def __init__(self, name: str, args: ConfigBundleArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mailinfra:config_bundle:ConfigBundle", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        bucket = aws.s3.Bucket(
            f"{name}-bucket",
            # Bucket names are global: a prefix and the provider's suffix cannot collide with another account's.
            bucket_prefix=f"mailinfra-{args.environment}-config-",
            # A non-empty bucket is never deleted with its objects: hosts still running re-fetch from it.
            force_destroy=False,
            tags=stack_tags(args.environment, purpose="mta-config"),
            opts=child,
        )
        public_access = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access", bucket=bucket.id, block_public_acls=True, block_public_policy=True,
            ignore_public_acls=True, restrict_public_buckets=True, opts=child)
        aws.s3.BucketPolicy(
            f"{name}-tls-only", bucket=bucket.id, policy=bucket.arn.apply(tls_only_policy),
            # S3 refuses concurrent changes to one bucket's access settings (OperationAborted): one after the other.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[public_access]))
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption", bucket=bucket.id,
            # SSE-S3: the hosts need no kms:Decrypt grant to read their object.
            rules=[aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                apply_server_side_encryption_by_default=aws.s3.
                BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                    sse_algorithm="AES256"))],
            opts=child)
        versioning = aws.s3.BucketVersioning(
            f"{name}-versioning", bucket=bucket.id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
            opts=child)
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle", bucket=bucket.id,
            rules=[aws.s3.BucketLifecycleConfigurationRuleArgs(
                id="expire-old-manifests",
                status="Enabled",
                # An empty filter: the rule applies to every object of the bucket (provider docs).
                filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(),
                noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                    noncurrent_days=NONCURRENT_DAYS, newer_noncurrent_versions=NONCURRENT_KEEP),
                abort_incomplete_multipart_upload=aws.s3.
                BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                    days_after_initiation=ABORT_MULTIPART_DAYS),
            )],
            # Noncurrent-version rules act on a versioned bucket: the provider's own example waits for it.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[versioning]))
        self.bucket: pulumi.Output[str] = bucket.bucket
        self.arn: pulumi.Output[str] = bucket.arn
        # One object for every host (not a copy in each manifest): the hosts' manifests name it by key and
        # digest, mailinfra-apply-config checks the digest before writing a file of it.
        self.code_key: str | None = None
        self.code_sha256: str | None = None
        self.code_object: aws.s3.BucketObjectv2 | None = None
        if args.host_code is not None:
            self.code_key, self.code_sha256, text = args.host_code
            self.code_object = aws.s3.BucketObjectv2(
                f"{name}-host-code", bucket=bucket.bucket, key=self.code_key, content=text,
                content_type="application/json", server_side_encryption="AES256",
                tags=stack_tags(args.environment, purpose="host-code"), opts=child)
        self.register_outputs({"bucket": bucket.bucket, "arn": bucket.arn})


def tls_only_policy(bucket_arn: str) -> str:
    """Deny every request that did not come over TLS (S3 User Guide, "Security best practices": a Deny on
    `aws:SecureTransport` false). An explicit Deny wins over any Allow, the hosts' roles included."""
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [bucket_arn, f"{bucket_arn}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }],
    })
