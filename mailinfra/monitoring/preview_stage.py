"""Preview stage: the monitoring host's files under monitoring/ (build/<stack>/monitoring/)."""

from __future__ import annotations

from mailinfra.monitoring.render import render_monitoring
from mailinfra.plan.model import Plan
from mailinfra.preview.model import Preview, PreviewFile


def add_monitoring_files(plan: Plan, preview: Preview) -> None:
    for item in render_monitoring(plan):
        preview.files.append(PreviewFile(f"monitoring/{item.path}", item.content, "monitoring"))
