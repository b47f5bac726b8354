"""PR review: the semantic diff between a stack at a base git ref and in the working tree."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from mailinfra.audit import audit_plan
from mailinfra.model.load import load_stack, resolve_stack_file
from mailinfra.plan.build import build_plan
from mailinfra.review.base import git_root, load_base_stack
from mailinfra.review.diff import PlanDiff, diff_plans
from mailinfra.review.files import diff_host_files
from mailinfra.review.render import render_review_diff


def review_stack(stack: str, base_ref: str, *, repo: Path | None = None,
                 as_of: dt.date | None = None) -> tuple[str, PlanDiff]:
    """Markdown for the PR comment and the diff behind it. Both plans use one date, so only config differs."""
    root = git_root(repo or Path.cwd())
    stack_file = resolve_stack_file(stack, root / "stacks")
    day = as_of or dt.date.today()
    head_stack = load_stack(str(stack_file))
    head = build_plan(head_stack, day)
    base_stack = load_base_stack(root, base_ref, stack_file)
    base = build_plan(base_stack, day) if base_stack else None
    diff = diff_plans(base, head,
                      audit_plan(base, base_stack.config) if base and base_stack else [],
                      audit_plan(head, head_stack.config), diff_host_files(base, head))
    name = head_stack.name
    return render_review_diff(name, base_ref, head, diff, base_missing=base is None), diff


__all__ = ["PlanDiff", "diff_plans", "review_stack"]
