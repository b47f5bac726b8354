"""Resource properties as plain values, with the values Pulumi cannot know yet during preview marked.

During `pulumi preview` an input that depends on another resource's output (an id, an ARN, a JSON
document built from them) is unknown. The engine marshals it as a sentinel string per type
(pulumi/pulumi `sdk/go/common/resource/plugin/rpc.go`, `marshalUnknownProperty`: UnknownStringValue
"04da6b54-...", UnknownArrayValue, ...); pulumi-policy wraps the props in a proxy that raises
`UnknownValueError` on any access to one (pulumi_policy/proxy.py, `unknown_checking_proxy`), and turns
that exception into "can't run policy ... during preview": the whole policy is skipped for that
resource, the known parts unjudged. `plain` reads the proxy key by key instead, so a policy judges
what is known and treats each unknown as "cannot judge yet".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import Enum
from typing import Any, Final, Literal

from pulumi_policy.proxy import UnknownValueError

# pulumi_policy/proxy.py and pulumi/pulumi plugin/rpc.go: the same seven sentinels on both sides.
UNKNOWN_SENTINELS: Final = frozenset({
    "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7",  # bool
    "3eeb2bf0-c639-47a8-9e75-3b44932eb421",  # number
    "04da6b54-80e4-46f7-96ec-b56ff0331ba9",  # string (also what SDKs send for any unknown)
    "6a19a0b0-7e62-4c92-b797-7f8e31da9cc2",  # array
    "030794c1-ac77-496b-92df-f27374a8bd58",  # asset
    "e48ece36-62e2-4504-bad9-02848725956a",  # archive
    "dd056dcd-154b-4c76-9bd3-c8f88648b5ff",  # object
})


class Unknown(Enum):
    """A value known only at `pulumi up` (one member, so `x is UNKNOWN` narrows for mypy)."""

    UNKNOWN = "unknown during preview"

    def __repr__(self) -> str:
        return "<unknown during preview>"


UNKNOWN: Final[Literal[Unknown.UNKNOWN]] = Unknown.UNKNOWN


def plain(value: Any) -> Any:
    """A deep copy of props (pulumi-policy proxies or plain dicts) with every unknown as UNKNOWN."""
    if isinstance(value, str):
        return UNKNOWN if value in UNKNOWN_SENTINELS else value
    if isinstance(value, Mapping):
        result: dict[str, Any] = {}
        for key in value:
            try:
                result[key] = plain(value[key])
            except UnknownValueError:
                result[key] = UNKNOWN
        return result
    if isinstance(value, Sequence):
        items: list[Any] = []
        for index in range(len(value)):
            try:
                items.append(plain(value[index]))
            except UnknownValueError:
                items.append(UNKNOWN)
        return items
    return value


def is_unknown(value: object) -> bool:
    return value is UNKNOWN


def items_of(value: Any) -> list[Any] | Unknown:
    """A list property: its items, [] when absent, UNKNOWN when the list itself is not known yet."""
    if value is UNKNOWN:
        return Unknown.UNKNOWN
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def mapping_of(value: Any) -> dict[str, Any] | Unknown:
    """An object property: its dict, {} when absent or not an object, UNKNOWN when not known yet."""
    if value is UNKNOWN:
        return Unknown.UNKNOWN
    return value if isinstance(value, dict) else {}


def as_int(value: Any) -> int | Unknown | None:
    """A port or size: the wire carries numbers as floats (protobuf Struct), ints here."""
    if value is UNKNOWN:
        return Unknown.UNKNOWN
    if isinstance(value, bool) or value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
