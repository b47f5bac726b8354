"""Elastic IPs and instances."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .values import UNKNOWN, mapping_of

EIP = "aws:ec2/eip:Eip"
INSTANCE = "aws:ec2/instance:Instance"


def check_eip_protected(resource_type: str, protect: bool) -> Iterator[str]:
    """A warmed IP is reputation that cannot be bought back: a change that deletes it must fail."""
    if resource_type == EIP and not protect:
        yield ("Elastic IP is not protected: set protect=True (and retain_on_delete=True) so no update or "
               "removal from the stack can release a warmed address")


def check_imdsv2(resource_type: str, props: dict[str, Any]) -> Iterator[str]:
    """IMDSv1 lets any SSRF on the host read its credentials; IMDSv2 (httpTokens=required) needs a token."""
    if resource_type != INSTANCE:
        return
    options = mapping_of(props.get("metadataOptions"))
    tokens = UNKNOWN if options is UNKNOWN else options.get("httpTokens")
    if tokens is not UNKNOWN and tokens != "required":
        yield f"metadataOptions.httpTokens is {tokens!r}; set it to 'required' (IMDSv2)"
