"""docs/BENCHMARKS.md is written by several benchmarks: each replaces only its own `## ` section."""

from __future__ import annotations

from pathlib import Path


def replace_section(path: Path, heading: str, section: str) -> None:
    """Put `section` (starting with `heading`) in place of the file's section of that heading, or append it."""
    text = path.read_text() if path.exists() else "# Benchmarks\n\n"
    if heading in text:
        before, _, rest = text.partition(heading)
        after = rest.split("\n## ", 1)
        text = before + section + ("\n## " + after[1] if len(after) > 1 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)
