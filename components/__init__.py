"""Pulumi components: one ComponentResource per module, each reading its part of the plan.

Shape shared by every module (../shared/STYLE.md rule 1): an `XArgs` dataclass beside
`X(pulumi.ComponentResource)`, type token `mailinfra:<module>:<Name>`, children named
`f"{name}-..."` with `parent=self`, `register_outputs` at the end, no resources inside `apply`.

Resource names derive from domain keys (pool, IP, host, domain, selector, record name), never from
list positions, and never from a stream's key: renaming a stream changes tags, not identities.
"""
