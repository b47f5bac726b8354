"""Route53 record resources -> the RRsets Route53 would publish (and what it would refuse).

Source: hashicorp/terraform-provider-aws, internal/service/route53/record.go (pulumi-aws bridges it):
- `expandResourceRecords`: for TXT and SPF every `records` entry goes through `flattenTxtEntry`,
  which is `fmt.Sprintf(`"%s"`, s)`: the provider adds one pair of quotes around the entry, no escaping.
  Other types are sent as they are. `records` is a TypeSet: duplicate entries collapse.
- `resourceRecordCreate`: the change is `UPSERT` when `allow_overwrite` is true, else `CREATE`,
  "and fail if the same record exists".
- `name` is lower-cased with the trailing dot trimmed (its StateFunc); `expandRecordName` appends the
  zone name when the name does not already end with it.

Route53 then reads the value in master-file form (Route53 Developer Guide, "Supported DNS record types",
TXT): one or more strings "enclosed in double quotation marks", each up to 255 characters, `\\"` for
a quote and `\\\\` for a backslash, `\\ooo` (octal) for other octets. What it refuses, with the message
it answers (InvalidChangeBatch, as reported in hashicorp/terraform#10048 and boto/boto3#1462):
- text outside quotes: `InvalidCharacterString (Value should be enclosed in quotation marks)` — what an
  entry that was already quoted becomes: `""v=DMARC1; ...""` is an empty string followed by bare text;
- a string over 255: `CharacterStringTooLong (Value is too long)`.
Names in MX/CNAME/NS/PTR values are taken as fully qualified, the trailing dot optional (same guide).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mailinfra.deployment.program import Deployment, Resource
from mailinfra.deployment.published import (
    MAX_STRING_BYTES,
    PublishedRRset,
    PublishError,
    absolute_name,
    check_ipv4,
    txt_presentation,
)

RECORD = "aws:route53/record:Record"
PROVIDER = "route53"
QUOTES = "InvalidCharacterString (Value should be enclosed in quotation marks)"
TOO_LONG = "CharacterStringTooLong (Value is too long)"


def flatten_txt_entry(entry: str) -> str:
    """What the provider sends Route53 for one TXT/SPF `records` entry (record.go `flattenTxtEntry`)."""
    return f'"{entry}"'


def parse_txt_value(value: str) -> tuple[bytes, ...]:
    """The character-strings Route53 reads from a TXT value it receives, or ValueError with its reason.

    Adjacent strings need no blank between them (`"a""b"` is two strings: the SDK's `records` docstring
    tells users to split long values exactly that way).
    """
    strings: list[bytes] = []
    index = 0
    while index < len(value):
        if value[index] in " \t":
            index += 1
            continue
        if value[index] != '"':
            raise ValueError(QUOTES)
        index += 1
        out = bytearray()
        while True:
            if index >= len(value):
                raise ValueError(QUOTES)  # an opening quote never closed
            char = value[index]
            if char == '"':
                index += 1
                break
            if char == "\\":
                octal = value[index + 1:index + 4]
                if len(octal) == 3 and all(c in "01234567" for c in octal) and int(octal, 8) <= 0xFF:
                    out.append(int(octal, 8))
                    index += 4
                    continue
                if index + 1 >= len(value):
                    raise ValueError(QUOTES)
                out += value[index + 1].encode()
                index += 2
                continue
            out += char.encode()
            index += 1
        if len(out) > MAX_STRING_BYTES:
            raise ValueError(TOO_LONG)
        strings.append(bytes(out))
    if not strings:
        raise ValueError(QUOTES)
    return tuple(strings)


def published_rrset(resource: Resource, zone_names: Mapping[str, str] | None = None) -> PublishedRRset:
    """The RRset one `aws.route53.Record` publishes; PublishError when Route53 would refuse it.

    `zone_names`: hosted zone id -> zone name, to complete relative names as `expandRecordName` does.
    """
    inputs: Mapping[str, Any] = resource.inputs
    if inputs.get("aliases") or inputs.get("alias"):
        raise PublishError(RECORD, resource.name, "alias records are not emulated")
    rtype = str(inputs["type"]).upper()
    name = str(inputs["name"]).rstrip(".").lower()
    zone = (zone_names or {}).get(str(inputs.get("zoneId", "")))
    if zone and not (name == zone or name.endswith("." + zone)):
        name = f"{name}.{zone}" if name else zone
    entries = list(dict.fromkeys(str(v) for v in inputs.get("records") or ()))  # a TypeSet
    if not entries:
        raise PublishError(RECORD, resource.name, "no records (Route53 needs at least one value)")
    rdatas = []
    for entry in entries:
        try:
            rdatas.append(_rdata(rtype, entry))
        except ValueError as error:
            sent = flatten_txt_entry(entry) if rtype in ("TXT", "SPF") else entry
            raise PublishError(RECORD, resource.name, f"Route53 would refuse the change batch: InvalidChangeBatch: "
                               f"{error} encountered with '{sent}'") from None
    action = "UPSERT" if inputs.get("allowOverwrite") else "CREATE"
    return PublishedRRset(name, rtype, int(inputs.get("ttl") or 0), tuple(rdatas), (resource.name,), PROVIDER,
                          action)


def published_rrsets(deployment: Deployment, zone_names: Mapping[str, str] | None = None) -> list[PublishedRRset]:
    """Every Route53 record resource of the deployment, in registration order."""
    return [published_rrset(r, zone_names) for r in deployment.of_type(RECORD)]


def _rdata(rtype: str, entry: str) -> str:
    if rtype in ("TXT", "SPF"):
        return txt_presentation(parse_txt_value(flatten_txt_entry(entry)))
    if rtype == "A":
        try:
            return check_ipv4(entry)
        except ValueError:
            raise ValueError("ARRDATAIllegalIPv4Address (Value is not a valid IPv4 address)") from None
    if rtype == "MX":
        preference, _, target = entry.strip().partition(" ")
        if not preference.isdigit() or not target.strip():
            raise ValueError("InvalidMXRDATA (MX value must be '<preference> <host>')")
        return f"{int(preference)} {absolute_name(target)}"
    if rtype in ("CNAME", "NS", "PTR"):
        return absolute_name(entry)
    return entry
