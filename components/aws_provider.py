"""The stack's `aws:` provider settings, for an explicit `aws.Provider` that must behave like the default one.

Pulumi configures the default AWS provider from every `aws:<key>` of the stack config (stack file,
`pulumi config set`, ESC); an explicit `aws.Provider(...)` gets only the arguments it is given, so a
regional provider built with `region=` alone would drop `profile`, `assumeRoles`, `allowedAccountIds`
and the rest (Pulumi docs, "Providers": explicit providers do not read the stack's provider config).

The names are the pulumi-aws Provider arguments (`aws.Provider.__init__`, 7.x) and their config keys
are the same names in camelCase (`pulumi_aws/config/vars.py`: `access_key` <- `aws:accessKey`).
"""

from __future__ import annotations

import inspect
import re
from typing import Any

import pulumi
import pulumi_aws as aws

# Provider arguments that are not stack settings.
_NOT_SETTINGS = frozenset({"self", "resource_name", "opts", "args", "__props__", "__self__"})


def provider_setting_names() -> dict[str, str]:
    """Provider argument -> its config key in the `aws` namespace, from the installed SDK's signature."""
    signature = inspect.signature(aws.Provider._internal_init)
    return {name: camel_case(name) for name in signature.parameters if name not in _NOT_SETTINGS}


def camel_case(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def stack_provider_settings() -> dict[str, Any]:
    """Every `aws:` setting of the stack, as keyword arguments of `aws.Provider` (secrets stay secrets).

    Object and list values (assumeRoles, defaultTags, endpoints, allowedAccountIds...) are passed as the
    config holds them, camelCase keys included: the SDK serialises them to the same JSON the engine
    hands the default provider."""
    config = pulumi.Config("aws")
    signature = inspect.signature(aws.Provider._internal_init)
    settings: dict[str, Any] = {}
    for name, key in provider_setting_names().items():
        if config.get(key) is None:
            continue
        annotation = str(signature.parameters[name].annotation)
        secret = pulumi.runtime.is_config_secret(f"aws:{key}")
        if re.search(r"Sequence|Args", annotation):
            value: Any = config.get_secret_object(key) if secret else config.get_object(key)
        elif "bool" in annotation:
            value = config.get_secret_bool(key) if secret else config.get_bool(key)
        elif "int" in annotation:
            value = config.get_secret_int(key) if secret else config.get_int(key)
        else:
            value = config.get_secret(key) if secret else config.get(key)
        settings[name] = value
    return settings


def regional_provider(name: str, region: str, opts: pulumi.ResourceOptions) -> aws.Provider:
    """The stack's AWS provider in another region: every `aws:` setting of the stack, `region` replaced."""
    return aws.Provider(name, **{**stack_provider_settings(), "region": region}, opts=opts)
