"""ConfigBundle: the private S3 bucket that holds each host's config manifest (one object per host).

EC2 accepts at most 16 KB of user data, and changing it stops and starts the instance (cloud-init then does
not even re-run). So everything a plan change touches on a host — its rendered files, the secrets it fetches,
its private addresses, its postmulti instances — is its manifest, `hosts/<host>/bundle.json` here; the host's
user data is a static bootstrap that applies its own object with its role (which can read that object and
nothing else), and `mailinfra-refresh-config` applies it again after `pulumi up`.

The manifest holds no secret (only SSM parameter names and markers); the bucket is private anyway:
public access blocked, encrypted at rest, versioned (a bad config can be rolled back object by object).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws


def bundle_key(host: str) -> str:
    """The object key of a host's manifest (components/mta_host.py:render_manifest, a JSON object).
    Kept from when it was a list of files: the key is in every instance's user data."""
    return f"hosts/{host}/bundle.json"


@dataclass
class ConfigBundleArgs:
    environment: str


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
            tags={"environment": args.environment, "purpose": "mta-config"},
            opts=child,
        )
        aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access", bucket=bucket.id, block_public_acls=True, block_public_policy=True,
            ignore_public_acls=True, restrict_public_buckets=True, opts=child)
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption", bucket=bucket.id,
            # SSE-S3: the hosts need no kms:Decrypt grant to read their object.
            rules=[aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                apply_server_side_encryption_by_default=aws.s3.
                BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                    sse_algorithm="AES256"))],
            opts=child)
        aws.s3.BucketVersioning(
            f"{name}-versioning", bucket=bucket.id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
            opts=child)
        self.bucket: pulumi.Output[str] = bucket.bucket
        self.arn: pulumi.Output[str] = bucket.arn
        self.register_outputs({"bucket": bucket.bucket, "arn": bucket.arn})
