"""Per-host unified diffs of the rendered MTA files between two plans, secrets redacted (pure).

The files come from the preview pipeline (`build_preview` with the preview stages), the one place
that turns a plan into host files, so the review shows exactly what `mailinfra preview` would write.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from mailinfra.plan.model import Plan
from mailinfra.preview.artifacts import build_preview
from mailinfra.preview.stages import preview_contributors

HOST_PREFIX = "hosts/"
# Rendered files carry @@SECRET:name@@ markers, never secrets (mailinfra.mta.files). This is a second guard
# so a renderer bug that inlines a private key still cannot reach a PR comment; the markers stay visible
# because which secret a file reads is worth reviewing.
_PEM = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.DOTALL)


@dataclass(frozen=True, slots=True)
class HostFileDiff:
    host: str
    path: str  # relative to the host's root (etc/postfix/main.cf)
    change: str  # added | removed | changed
    diff: str  # unified diff, secrets redacted


def host_files(plan: Plan) -> dict[tuple[str, str], str]:
    """(host, path) -> content of every rendered host file, as the preview writes it."""
    preview = build_preview(plan, preview_contributors(include_resources=False))
    files = {}
    for item in preview.files:
        if item.kind != "host":
            continue
        host, _, path = item.path.removeprefix(HOST_PREFIX).partition("/")
        files[(host, path)] = item.content
    return files


def redact_secrets(text: str) -> str:
    return _PEM.sub("[private key redacted]", text)


def diff_host_files(base: Plan | None, head: Plan) -> list[HostFileDiff]:
    """Every host file that differs, sorted by host and path; `base` None: all files are added."""
    old = host_files(base) if base else {}
    new = host_files(head)
    changes = []
    for host, path in sorted(old.keys() | new.keys()):
        before, after = old.get((host, path)), new.get((host, path))
        if before == after:
            continue
        change = "added" if before is None else "removed" if after is None else "changed"
        lines = difflib.unified_diff(redact_secrets(before or "").splitlines(keepends=True),
                                     redact_secrets(after or "").splitlines(keepends=True),
                                     fromfile=f"a/{host}/{path}" if before is not None else "/dev/null",
                                     tofile=f"b/{host}/{path}" if after is not None else "/dev/null")
        text = "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)
        changes.append(HostFileDiff(host, path, change, text))
    return changes
