"""What a preview is made of: the files it writes and what its stages add (no rendering here)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mailinfra.plan.model import Plan


@dataclass(frozen=True)
class PreviewFile:
    """One file the preview writes, relative to the output directory."""

    path: str
    content: str
    kind: str  # plan | zone | review | host | monitoring


@dataclass
class Preview:
    plan: Plan
    files: list[PreviewFile] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)


# Later stages (rendered MTA files, Pulumi resources) register here so preview stays one pipeline.
Contributor = Callable[[Plan, Preview], None]
