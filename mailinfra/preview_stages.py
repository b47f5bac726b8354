"""The stages that add to a preview beyond DNS: rendered MTA files and the Pulumi resource list.

Each stage is optional at import time so the preview keeps working while a stage is being built.
"""

from __future__ import annotations

import importlib

from mailinfra.preview import Contributor

# module:function pairs; each function is a Contributor(plan, preview).
STAGES = [
    ("mailinfra.mta.preview_stage", "add_host_files"),
]
RESOURCE_STAGE = ("mailinfra.pulumi_preview", "add_resources")


def preview_contributors(*, include_resources: bool = True) -> list[Contributor]:
    stages = [*STAGES, RESOURCE_STAGE] if include_resources else list(STAGES)
    found: list[Contributor] = []
    for module_name, function in stages:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                continue
            raise
        found.append(getattr(module, function))
    return found
