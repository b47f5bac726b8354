"""Plan a stack as it was at a git ref: a temporary `git worktree` of the ref, read by the CURRENT code.

Choice: the base's stack file is loaded and planned with the working tree's loader and planner, not the
base's code. The diff then shows what the config change does, with today's rules; a planner change
shows up as the whole-project diff it is in the PR's own tests and golden files, not in this comment.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from mailinfra.errors import UsageError
from mailinfra.model.load import Stack, load_stack


def git_root(start: Path) -> Path:
    done = subprocess.run(["git", "-C", str(start), "rev-parse", "--show-toplevel"], capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        raise UsageError(f"{start}: not inside a git repository ({done.stderr.strip()})")
    return Path(done.stdout.strip())


@contextlib.contextmanager
def worktree_at(repo: Path, ref: str) -> Iterator[Path]:
    """A detached worktree of `ref`, removed afterwards (also after an error)."""
    check = subprocess.run(["git", "-C", str(repo), "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
                           capture_output=True, text=True, check=False)
    if check.returncode != 0:
        raise UsageError(f"--base: received {ref!r}, expected a git commit, branch or tag of {repo}")
    with tempfile.TemporaryDirectory(prefix="mailinfra-review-") as tmp:
        tree = Path(tmp) / "base"
        added = subprocess.run(["git", "-C", str(repo), "worktree", "add", "--detach", "--quiet", str(tree), ref],
                               capture_output=True, text=True, check=False)
        if added.returncode != 0:
            raise UsageError(f"--base {ref}: git worktree add failed: {added.stderr.strip()}")
        try:
            yield tree
        finally:
            subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force", str(tree)],
                           capture_output=True, check=False)


def base_stack_file(repo: Path, tree: Path, stack_file: Path) -> Path | None:
    """The stack file's counterpart in a worktree of `repo` (None when it did not exist there: a new stack)."""
    path = tree / stack_file.resolve().relative_to(repo.resolve())
    return path if path.is_file() else None


def load_base_stack(repo: Path, ref: str, stack_file: Path) -> Stack | None:
    """The stack at `ref` (None when the file did not exist there: a new stack)."""
    with worktree_at(repo, ref) as tree:
        path = base_stack_file(repo, tree, stack_file)
        return load_stack(str(path)) if path else None


def today() -> dt.date:
    return dt.date.today()
