"""The tags every tagged resource carries: the stack's environment and the Pulumi stack itself.

`environment` is the stack's config value and a copied stack (`pulumi stack init --copy-config-from prod`)
keeps it, so two stacks in one account share it; the Pulumi stack name is unique per project and account
backend, so drift (mailinfra/drift/aws_check.py) finds a stack's resources by `stack`, never by `environment`.
"""

from __future__ import annotations

import pulumi

STACK_TAG = "stack"  # mailinfra.drift.aws_check.STACK_TAG reads it


def stack_tags(environment: str, **more: str) -> dict[str, str]:
    """`environment` and `stack` tags, then `more` (Name, host, purpose, ...)."""
    return {"environment": environment, STACK_TAG: pulumi.get_stack(), **more}
