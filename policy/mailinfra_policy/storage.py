"""Where mail, keys and configs rest: EBS volumes, SSM parameters, the config bucket."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from .values import UNKNOWN, items_of, mapping_of

INSTANCE = "aws:ec2/instance:Instance"
VOLUME = "aws:ebs/volume:Volume"
SSM_PARAMETER = "aws:ssm/parameter:Parameter"
BUCKETS = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
BUCKET_ENCRYPTION = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
)
# S3 User Guide, "Setting default server-side encryption behavior": the algorithms S3 accepts.
SSE_ALGORITHMS = ("AES256", "aws:kms", "aws:kms:dsse")
# Words in a parameter's name or purpose tag that say it holds a credential.
SECRET_WORDS = frozenset({"dkim", "password", "passwd", "secret", "token", "key", "private", "credential",
                          "credentials"})
_WORD = re.compile(r"[/_.\-\s]+")


def check_ebs_encryption(resource_type: str, props: dict[str, Any]) -> Iterator[str]:
    """Root and data volumes encrypted. Encryption is fixed when a volume is created (changing it
    replaces the volume), so preview is the moment to catch it; the root disk holds the DKIM keys the
    host fetched and the queues hold message bodies."""
    if resource_type == VOLUME:
        if props.get("encrypted") is not UNKNOWN and props.get("encrypted") is not True:
            yield f"EBS volume encrypted is {props.get('encrypted')!r}; set encrypted=True"
        return
    if resource_type != INSTANCE:
        return
    root = mapping_of(props.get("rootBlockDevice"))
    if root is not UNKNOWN and root.get("encrypted") is not UNKNOWN and root.get("encrypted") is not True:
        yield (f"rootBlockDevice.encrypted is {root.get('encrypted')!r}; set it to True (without it the AMI's "
               "snapshot decides, and public AMIs are unencrypted)")
    devices = items_of(props.get("ebsBlockDevices"))
    for device in [] if devices is UNKNOWN else devices:
        entry = mapping_of(device)
        if entry is UNKNOWN or entry.get("encrypted") is UNKNOWN or entry.get("encrypted") is True:
            continue
        yield f"ebsBlockDevices {entry.get('deviceName')}: encrypted is {entry.get('encrypted')!r}; set it to True"


def holds_secret(props: dict[str, Any]) -> bool | None:
    """Whether a parameter holds a key or password, from its name and purpose tag; None if unknown yet."""
    name = props.get("name")
    tags = mapping_of(props.get("tags"))
    purpose = UNKNOWN if tags is UNKNOWN else tags.get("purpose")
    words: set[str] = set()
    for text in (name, purpose):
        if isinstance(text, str):
            words.update(w.lower() for w in _WORD.split(text) if w)
    if words & SECRET_WORDS:
        return True
    if name is UNKNOWN or purpose is UNKNOWN:
        return None
    return False


def check_secure_parameters(resource_type: str, props: dict[str, Any]) -> Iterator[str]:
    """Parameters holding keys are SecureString: a String parameter is stored unencrypted and any
    principal with ssm:GetParameter reads it without kms:Decrypt (SSM User Guide, "SecureString
    parameters")."""
    if resource_type != SSM_PARAMETER:
        return
    kind = props.get("type")
    if kind is UNKNOWN or kind == "SecureString" or not holds_secret(props):
        return
    yield f"parameter {props.get('name')} holds a key or password but its type is {kind!r}; use SecureString"


def bucket_encrypted(bucket: Any, configs: list[Any]) -> bool:
    """Whether a bucket (a PolicyResource) has default encryption, inline or by a configuration resource.

    A configuration belongs to the bucket when its `bucket` input depends on it (during preview the
    bucket's name is unknown when it comes from bucketPrefix) or names it.
    """
    from .values import plain

    props = plain(bucket.props)
    inline = mapping_of(props.get("serverSideEncryptionConfiguration"))
    if inline is UNKNOWN or inline:
        return True
    name = props.get("bucket")
    for config in configs:
        linked = config.property_dependencies.get("bucket") or config.dependencies or []
        config_props = plain(config.props)
        named = isinstance(name, str) and config_props.get("bucket") == name
        if not (named or any(d.urn == bucket.urn for d in linked)):
            continue
        rules = items_of(config_props.get("rules"))
        if rules is UNKNOWN:
            return True  # not known yet: judged at `pulumi up`
        for rule in rules:
            entry = mapping_of(rule)
            default = UNKNOWN if entry is UNKNOWN else mapping_of(entry.get("applyServerSideEncryptionByDefault"))
            if default is UNKNOWN or default.get("sseAlgorithm") in (*SSE_ALGORITHMS, UNKNOWN):
                return True
    return False
