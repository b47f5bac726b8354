"""Two previews of the same tree are byte-identical: a PR's review diff shows changes, never noise."""

from __future__ import annotations

import filecmp
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
AS_OF = "2026-11-29"


def _preview(stack: str, out: Path, hash_seed: str) -> None:
    # Different hash seeds: set and dict iteration orders that depend on str hashes change between runs,
    # as they do between two CI jobs; the resource registration order of the mock run changes by itself.
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    subprocess.run([sys.executable, "-m", "mailinfra.cli.main", "preview", stack, "--out", str(out),
                    "--as-of", AS_OF], cwd=REPO, env=env, check=True, capture_output=True, timeout=180)


def _differences(left: Path, right: Path) -> list[str]:
    found: list[str] = []
    compare = filecmp.dircmp(left, right)
    found += [f"only in one: {n}" for n in compare.left_only + compare.right_only]
    found += [str(left / n) for n in compare.diff_files]
    for name in compare.common_dirs:
        found += _differences(left / name, right / name)
    return found


@pytest.mark.slow
@pytest.mark.parametrize("stack", ["dev", "staging"])
def test_two_previews_are_byte_identical(stack: str, tmp_path: Path) -> None:
    """plan.json, review.md, zones and hosts/ of two runs of one tree do not differ by a byte."""
    _preview(stack, tmp_path / "one", "1")
    _preview(stack, tmp_path / "two", "2")
    assert (tmp_path / "one" / "plan.json").is_file()
    assert _differences(tmp_path / "one", tmp_path / "two") == []
