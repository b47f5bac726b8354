"""The deployment emulator: what `pulumi up` would create, as each provider would make it.

`program` runs the real Pulumi program (__main__.py) under the SDK's mock runtime and returns the
resources it declares, with their inputs as the providers would receive them. One module per provider
translates those resources with that provider's documented semantics (how a record's values are
published, how a security group filters, how an Elastic IP maps to a private address), each citing its
source. The lab is built from these translations, not from the plan: a resource argument the provider
would reject or publish differently fails the lab exactly as it would fail `pulumi up`.
"""
