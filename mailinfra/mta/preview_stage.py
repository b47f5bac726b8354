"""Preview stage: every host's rendered files under hosts/<host>/, secrets as marked placeholders."""

from __future__ import annotations

from mailinfra.mta.render import render_all
from mailinfra.plan.model import Plan
from mailinfra.preview.model import Preview, PreviewFile


def add_host_files(plan: Plan, preview: Preview) -> None:
    listed = []
    for host, files in render_all(plan).items():
        for item in files:
            path = f"hosts/{host}/{item.path}"
            preview.files.append(PreviewFile(path, item.content, "host"))
            listed.append({"path": path, "host": host, "mode": f"{item.mode:04o}",
                           "secret_placeholders": list(item.secret_placeholders)})
    preview.extras["host_files"] = listed
