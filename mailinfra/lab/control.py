"""A lab server's behaviour switch: a one-word control file the server re-reads as it works (providers, relays)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def read_control(control: Path | None, modes: Sequence[str]) -> str:
    """The mode written in `control`; `ok` when there is none, it cannot be read, or it is not one of `modes`."""
    if control is None:
        return "ok"
    try:
        mode = control.read_text().strip()
    except OSError:
        return "ok"
    return mode if mode in modes else "ok"


def write_control(control: Path, mode: str, modes: Sequence[str]) -> None:
    """Switch atomically (a server reading mid-write sees the old or the new word, never half of one)."""
    if mode not in modes:
        raise ValueError(f"mode must be one of {', '.join(modes)}, got {mode!r}")
    control.parent.mkdir(parents=True, exist_ok=True)
    tmp = control.with_suffix(".tmp")
    tmp.write_text(mode + "\n")
    tmp.replace(control)
