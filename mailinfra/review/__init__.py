"""PR review: the semantic diff between a stack at a base git ref and in the working tree."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from mailinfra.audit import audit_plan
from mailinfra.model.load import load_stack, resolve_stack_file
from mailinfra.plan.build import build_plan
from mailinfra.review.base import base_stack_file, git_root, worktree_at
from mailinfra.review.cost import insert_cost_section, render_cost_delta
from mailinfra.review.diff import PlanDiff, diff_plans
from mailinfra.review.files import diff_host_files
from mailinfra.review.program import ProgramRun, running_programs
from mailinfra.review.render import GITHUB_COMMENT_LIMIT, render_review_diff
from mailinfra.review.resources import diff_resources


def review_stack(stack: str, base_ref: str, *, repo: Path | None = None, as_of: dt.date | None = None,
                 resources: bool = True, max_chars: int = GITHUB_COMMENT_LIMIT) -> tuple[str, PlanDiff]:
    """Markdown for the PR comment and the diff behind it. Both plans use one date, so only config differs.

    `resources`: also run the Pulumi program for both sides (mock runtime, one subprocess each,
    concurrently with the planning below) and compare the resources; about two seconds for dev.
    """
    root = git_root(repo or Path.cwd())
    stack_file = resolve_stack_file(stack, root / "stacks")
    day = as_of or dt.date.today()
    head_stack = load_stack(str(stack_file))
    with worktree_at(root, base_ref) as tree, running_programs() as runs:
        base_file = base_stack_file(root, tree, stack_file)
        base_stack = load_stack(str(base_file)) if base_file else None
        if resources:
            runs.append(ProgramRun(stack_file, f"{stack_file} (working tree)"))
            if base_file:
                runs.append(ProgramRun(base_file, f"{stack_file.name} at {base_ref}"))
        head = build_plan(head_stack, day)
        base = build_plan(base_stack, day) if base_stack else None
        diff = diff_plans(base, head,
                          audit_plan(base, base_stack.config) if base and base_stack else [],
                          audit_plan(head, head_stack.config), diff_host_files(base, head),
                          schedules=(base_stack.config.warmup_schedules, head_stack.config.warmup_schedules)
                          if base_stack else None)
        if resources:
            # The base run reads the worktree's stack file: wait for it before the worktree goes.
            head_resources = runs[0].resources()
            base_resources = runs[1].resources() if base_file else None
            diff.resources = diff_resources(base_resources, head_resources)
            diff.resources_compared = True
    name = head_stack.name
    cost = render_cost_delta(base_stack, base, head_stack, head)
    # The cost section goes in after the comment is folded: leave it room under the comment limit.
    markdown = render_review_diff(name, base_ref, head, diff, base_missing=base is None, base=base,
                                  max_chars=max_chars - len("\n".join(cost)) - 1)
    return insert_cost_section(markdown, cost), diff


__all__ = ["PlanDiff", "diff_plans", "review_stack"]
