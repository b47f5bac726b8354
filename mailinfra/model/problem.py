"""One finding of a validation rule: where (key path), what was received, what was expected."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Problem:
    path: tuple[str | int, ...]
    received: Any
    expected: str
