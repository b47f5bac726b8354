"""Pulumi resources added, replaced, updated, renamed or removed between two runs of the program (pure).

The runs come from `mailinfra.review.program` (the real __main__.py under Pulumi's mock runtime, one
subprocess per side). Resources are matched by URN, and a head resource whose alias resolves to a base
URN is that resource renamed: Pulumi moves its state, it is neither created nor deleted.

`pulumi preview` with the CLI and the real providers remains the authority; this table is what a
reviewer can see without credentials. Whether a changed input replaces a resource is taken from
`REPLACE_ON_CHANGE`, a small table for the resource types this project creates.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mailinfra.review.files import redact_secrets

# Inputs whose change makes the provider delete and re-create the resource: the provider schema's
# ForceNew (terraform-provider-aws / terraform-provider-cloudflare, which pulumi-aws 7.x and
# pulumi-cloudflare 6.x bridge) for the types this program creates. A dotted key also covers
# everything under it. Any other changed input is an in-place update. Not listed = no ForceNew
# input we set. Keep it small and check a new entry against the provider's schema.
REPLACE_ON_CHANGE: Mapping[str, frozenset[str]] = {
    # EIP: the allocation IS the address; a new domain or pool means a new allocation.
    "aws:ec2/eip:Eip": frozenset({"domain", "address", "publicIpv4Pool", "networkBorderGroup",
                                  "customerOwnedIpv4Pool", "ipamPoolId"}),
    # Reverse DNS belongs to one allocation; the domain name itself is updated in place.
    "aws:ec2/eipDomainName:EipDomainName": frozenset({"allocationId"}),
    # aws_eip_association has no update: every argument is ForceNew.
    "aws:ec2/eipAssociation:EipAssociation": frozenset({"allocationId", "networkInterfaceId", "privateIpAddress",
                                                        "instanceId", "publicIp", "allowReassociation"}),
    # instanceType and user data change in place (the provider stops and starts the instance;
    # user data replaces only with userDataReplaceOnChange, which we do not set).
    "aws:ec2/instance:Instance": frozenset({"ami", "availabilityZone", "subnetId", "privateIp", "keyName",
                                            "placementGroup", "primaryNetworkInterface",
                                            "rootBlockDevice.encrypted", "rootBlockDevice.kmsKeyId"}),
    "aws:ec2/networkInterface:NetworkInterface": frozenset({"subnetId", "interfaceType"}),
    # The hosts' spool volumes: size and type change in place (ModifyVolume); aws_volume_attachment has
    # no update, every argument we set is ForceNew.
    "aws:ebs/volume:Volume": frozenset({"availabilityZone", "encrypted", "kmsKeyId", "snapshotId", "outpostArn"}),
    "aws:ec2/volumeAttachment:VolumeAttachment": frozenset({"deviceName", "instanceId", "volumeId"}),
    "aws:ec2/securityGroup:SecurityGroup": frozenset({"name", "namePrefix", "description", "vpcId"}),
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": frozenset({"securityGroupId"}),
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": frozenset({"securityGroupId"}),
    "aws:route53/record:Record": frozenset({"name", "type", "zoneId"}),
    # zoneId is RequiresReplace in the v5 schema; name and type are taken as replacing too (the v4
    # record forced new on them) so a review errs towards showing a delete/create.
    "cloudflare:index/dnsRecord:DnsRecord": frozenset({"name", "type", "zoneId"}),
    "aws:ssm/parameter:Parameter": frozenset({"name"}),
    "aws:iam/role:Role": frozenset({"name", "namePrefix", "path"}),
    "aws:iam/rolePolicy:RolePolicy": frozenset({"name", "namePrefix", "role"}),
    "aws:iam/userPolicy:UserPolicy": frozenset({"name", "namePrefix", "user"}),
    "aws:iam/accessKey:AccessKey": frozenset({"user", "pgpKey"}),
    "aws:iam/instanceProfile:InstanceProfile": frozenset({"name", "namePrefix", "path"}),
    "aws:sesv2/emailIdentity:EmailIdentity": frozenset({"emailIdentity"}),
    # The config bucket and the hosts' bundles (components/config_bundle.py): content changes in place.
    "aws:s3/bucket:Bucket": frozenset({"bucket", "bucketPrefix"}),
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": frozenset({"bucket"}),
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": frozenset({"bucket"}),
    "aws:s3/bucketVersioning:BucketVersioning": frozenset({"bucket"}),
    "aws:s3/bucketObjectv2:BucketObjectv2": frozenset({"bucket", "key"}),
    "aws:sesv2/emailIdentityMailFromAttributes:EmailIdentityMailFromAttributes": frozenset({"emailIdentity"}),
    # The config bucket's TLS-only policy and lifecycle rule: changed in place, bound to their bucket.
    "aws:s3/bucketPolicy:BucketPolicy": frozenset({"bucket"}),
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": frozenset({"bucket", "expectedBucketOwner"}),
    # The SES event pipeline (components/secondary_route.py). An identity's configurationSetName changes in
    # place (PutEmailIdentityConfigurationSetAttributes); a set or destination is keyed by its name.
    "aws:sesv2/configurationSet:ConfigurationSet": frozenset({"configurationSetName"}),
    "aws:sesv2/configurationSetEventDestination:ConfigurationSetEventDestination": frozenset(
        {"configurationSetName", "eventDestinationName"}),
    "aws:sns/topic:Topic": frozenset({"name", "namePrefix", "fifoTopic"}),
    "aws:sns/topicSubscription:TopicSubscription": frozenset({"topic", "protocol", "endpoint"}),
    "aws:sqs/queue:Queue": frozenset({"name", "namePrefix", "fifoQueue"}),
    "aws:sqs/queuePolicy:QueuePolicy": frozenset({"queueUrl"}),
}

# In-place changes a reviewer should know interrupt service: EC2 stops and starts the instance.
STOP_START: Mapping[str, frozenset[str]] = {
    "aws:ec2/instance:Instance": frozenset({"instanceType", "userData", "userDataBase64"}),
}

# pulumi.runtime.rpc.UNKNOWN: an output not known until `pulumi up`.
_UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
_SHOWN_CHARS = 80
_REF = "\x00ref:"  # cannot occur in an input value


@dataclass(frozen=True, slots=True)
class InputChange:
    key: str  # dotted input path (tags.Name), or an option in parentheses: (protect)
    old: str  # shown value, secrets masked; "—" when absent
    new: str
    replaces: bool


@dataclass(frozen=True, slots=True)
class ResourceChange:
    type: str
    name: str
    change: str  # added | removed | replaced | updated | renamed
    protect: bool  # protected at base (removed, replaced, updated) or at head (added)
    old_name: str | None = None  # a rename through an alias
    inputs: tuple[InputChange, ...] = ()
    stop_start: bool = False
    adopts: str = ""  # a new DNS record that takes over a live one: how (dns.zones.<zone>.adopt)

    @property
    def destructive(self) -> bool:
        """Deleting a protected resource (an EIP: its address is reputation) cannot be undone."""
        return self.protect and self.change in {"removed", "replaced"}


def diff_resources(base: Sequence[Mapping[str, Any]] | None,
                   head: Sequence[Mapping[str, Any]]) -> list[ResourceChange]:
    """Custom resources only (components hold no state of their own); `base` None: all added."""
    old = {r["urn"]: r for r in base or () if not r.get("component")}
    new = {r["urn"]: r for r in head if not r.get("component")}
    matched = _match(old, new)
    renamed = {head_urn: base_urn for head_urn, base_urn in matched.items() if head_urn != base_urn}
    base_refs = _references([old[u] for u in renamed.values()], {u: u for u in renamed.values()})
    head_refs = _references([new[u] for u in renamed], renamed)
    changes = []
    for urn, after in new.items():
        before_urn = matched.get(urn)
        if before_urn is None:
            changes.append(ResourceChange(after["type"], after["name"], "added", bool(after.get("protect")),
                                          adopts=adoption(after)))
            continue
        before = old[before_urn]
        inputs = _diff_inputs(after["type"], _resolve(before, base_refs), _resolve(after, head_refs),
                              _ignored(after))
        old_name = before["name"] if before["name"] != after["name"] else None
        kind = ("replaced" if any(c.replaces for c in inputs) else "updated" if inputs
                else "renamed" if old_name else "")
        if kind:
            stop = STOP_START.get(after["type"], frozenset())
            changes.append(ResourceChange(after["type"], after["name"], kind, bool(before.get("protect")), old_name,
                                          inputs, kind == "updated" and any(c.key in stop for c in inputs)))
    gone = set(old) - set(matched.values())
    changes += [ResourceChange(old[u]["type"], old[u]["name"], "removed", bool(old[u].get("protect"))) for u in gone]
    order = {"removed": 0, "replaced": 1, "updated": 2, "renamed": 3, "added": 4}
    return sorted(changes, key=lambda c: (order[c.change], c.type, c.name))


def adoption(resource: Mapping[str, Any]) -> str:
    """How a new record resource treats a live record of the same name and type, if it takes one over.

    Route53 `allow_overwrite`: the create is an UPSERT that replaces whatever the live RRset holds
    (terraform-provider-aws record.go resourceRecordCreate); without it, CREATE fails on a live record.
    An import id: Pulumi adopts the live record and `up` fails if its state differs from the program's.
    """
    if resource.get("type") not in ("aws:route53/record:Record", "cloudflare:index/dnsRecord:DnsRecord"):
        return ""
    if resource.get("import_id"):
        return f"imports the live record `{resource['import_id']}` (up fails if it differs)"
    if (resource.get("inputs") or {}).get("allowOverwrite"):
        return "overwrites the live record set if one exists (allow_overwrite: UPSERT)"
    return ""


def _match(old: Mapping[str, Any], new: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """head URN -> base URN: the same URN, else the first alias that names a base resource."""
    matched = {}
    for urn, resource in new.items():
        if urn in old:
            matched[urn] = urn
            continue
        for alias in resource.get("aliases") or ():
            candidate = _alias_urn(urn, str(alias))
            if candidate in old and candidate not in new:
                matched[urn] = candidate
                break
    return matched


def _alias_urn(urn: str, alias: str) -> str:
    """An alias given as a full URN, or (pulumi.Alias(name=...)) a name under the same parent and type."""
    if alias.startswith("urn:pulumi:"):
        return alias
    if not alias:
        return ""  # an alias that changes only type or parent: the recorder does not keep those
    return f"{urn.rsplit('::', 1)[0]}::{alias}"


def _references(resources: Iterable[Mapping[str, Any]], canonical: Mapping[str, str]) -> dict[str, str]:
    """Id of a renamed resource -> a reference to it that is the same on both sides.

    The mock runtime derives ids from resource names, so a renamed (aliased) resource gets a new
    mock id although Pulumi keeps its real one; inputs holding that id (an EIP's allocation id in
    its PTR and association) compare by which resource they point to instead.
    """
    refs = {}
    for resource in resources:
        ident = resource.get("id")
        if isinstance(ident, str) and ident:
            refs[ident] = f"{_REF}{canonical[resource['urn']]}"
    return refs


def _resolve(resource: Mapping[str, Any], refs: Mapping[str, str]) -> dict[str, Any]:
    flat = _flatten(resource.get("inputs") or {})
    values = {key: refs.get(value, value) if isinstance(value, str) else value for key, value in flat.items()}
    # Options that change what `pulumi up` may do to the resource.
    values["(protect)"] = bool(resource.get("protect"))
    values["(retain_on_delete)"] = bool(resource.get("retain_on_delete"))
    values["(import)"] = resource.get("import_id")
    return values


def _flatten(inputs: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in inputs.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{path}."))
        else:
            flat[path] = value
    return flat


def _ignored(resource: Mapping[str, Any]) -> tuple[str, ...]:
    """The resource's ignore_changes as dotted input paths (`tags["a:b"]` -> `tags.a:b`)."""
    return tuple(re.sub(r'\["([^"]*)"\]', r".\1", path) for path in resource.get("ignore_changes") or ())


def _diff_inputs(type_token: str, before: Mapping[str, Any], after: Mapping[str, Any],
                 ignored: Sequence[str] = ()) -> tuple[InputChange, ...]:
    forcing = REPLACE_ON_CHANGE.get(type_token, frozenset())
    changes = []
    for key in sorted(before.keys() | after.keys()):
        old, new = before.get(key), after.get(key)
        # ignore_changes: Pulumi keeps the old value of these inputs, so `up` changes nothing for them.
        if _same(old, new) or any(key == i or key.startswith(f"{i}.") for i in ignored):
            continue
        replaces = any(key == f or key.startswith(f"{f}.") for f in forcing)
        shown_old, shown_new = _show(old), _show(new)
        if len(shown_old) > _SHOWN_CHARS or len(shown_new) > _SHOWN_CHARS:
            shown_old, shown_new = _window(key, shown_old, shown_new)
        changes.append(InputChange(key, shown_old, shown_new, replaces))
    return tuple(changes)


def _same(old: Any, new: Any) -> bool:
    # Under preview an output may be unknown on one side; that is not a change we can show.
    return old == new or _UNKNOWN in (old, new)


def _show(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, str) and value.startswith(_REF):
        return f"→ {value.rsplit('::', 1)[-1]}"
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # the wire format carries numbers as floats
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return redact_secrets(text)


def _window(key: str, old: str, new: str) -> tuple[str, str]:
    """Long values: only the part that differs, with a little context (a DMARC tag, an SPF term)."""
    if key.endswith("Base64"):
        # Compressed user data: the rendered-file diffs show what changed inside.
        return "(compressed)", "(compressed, changed)"
    start = 0
    while start < min(len(old), len(new)) and old[start] == new[start]:
        start += 1
    end = 0
    while end < min(len(old), len(new)) - start and old[-1 - end] == new[-1 - end]:
        end += 1
    context = 12

    def cut(text: str) -> str:
        first, last = max(0, start - context), len(text) - max(0, end - context)
        # Widen to whole words (an SPF term, a DMARC tag) unless the word is a key or a blob.
        following = text.find(" ", last)
        wide_first = text.rfind(" ", 0, first) + 1 if first else 0
        wide_last = len(text) if following < 0 else following
        if wide_last - wide_first <= _SHOWN_CHARS:
            first, last = wide_first, wide_last
        middle = text[first:last]
        if len(middle) > _SHOWN_CHARS:
            middle = f"{middle[:_SHOWN_CHARS // 2]}…({len(middle):,} chars)"
        return f"{'…' if first else ''}{middle}{'…' if last < len(text) else ''}"

    return cut(old), cut(new)
