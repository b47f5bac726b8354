"""The Python code of the host services, shipped with the hosts' config manifests (pure).

The units run `/usr/bin/python3 -m mailinfra.<pkg>` with PYTHONPATH=HOST_PYTHON_PATH
(templates/mailinfra/*.service.j2). Nothing installs the checkout on EC2, so the config bundle carries that
tree as one object for every host (`code/<sha256>.json`, components/config_bundle.py), which each host's
manifest names by key and digest and mailinfra-apply-config writes like the manifest's own files:
the mailinfra packages the services import (HOST_PACKAGES; never pulumi, the schema or the planning core),
and pinned pure-Python copies of the few third-party packages Debian 12 ships too old (VENDORED). The other
third-party imports come from Debian 12 packages in the user data (DEBIAN_PACKAGES).

Why the config bundle and Debian rather than a wheel set: the bundle is already the host's one versioned,
idempotent and self-cleaning delivery (mailinfra-apply-config rewrites a changed file, removes a dropped one,
and a bad release rolls back object by object; the code object is content-addressed, so a manifest names
exactly the code it was rendered with, and one copy serves the fleet instead of ~200 KB in every manifest),
and Debian's python3-* packages are architecture-independent here and get security fixes from the
distribution (aiosmtpd 1.4.3+deb12u1 carries the CVE-2024-27305 and CVE-2024-34083 fixes: its
changelog.Debian). Vendored only where Debian's version cannot run our code: email-validator 1.3 has no
`allow_quoted_local`/`allow_domain_literal` (2.0 added them), and pydantic 1.10 cannot load the v2 schema, so
the host code does not import the schema (mailinfra.model.kinds holds what it needs).

Another host service (mailinfra.metrics, mailinfra.shaping, mailinfra.placement ...) ships by adding its
package to HOST_PACKAGES (and a Debian package its imports need to DEBIAN_PACKAGES);
tests/mta/test_host_code.py imports every shipped module with the host's interpreter and only this tree.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
from pathlib import Path, PurePosixPath

from mailinfra.mta.files import RenderedFile

HOST_PYTHON_PATH = "/usr/local/lib/mailinfra/python"
# The host services' own code: packages (every file below them) or single modules, by import name.
HOST_PACKAGES = (
    "mailinfra.model.kinds",
    "mailinfra.suppression",
    "mailinfra.bounceproc",
    "mailinfra.suppression_service",
    # The Postfix log parser the host services share.
    "mailinfra.mta.maillog",
    # The delivery exporter (mailinfra-metrics): its host modules; metrics.labels/render read the plan.
    "mailinfra.metrics.__main__",
    "mailinfra.metrics.config",
    "mailinfra.metrics.exporter",
    "mailinfra.metrics.pmta",
    "mailinfra.metrics.service",
    # The automatic response (mailinfra-shaping): its host modules only; shaping.plan renders from the plan.
    "mailinfra.shaping.__main__",
    "mailinfra.shaping.engine",
    "mailinfra.shaping.logline",
    "mailinfra.shaping.postfix",
    "mailinfra.shaping.rules",
    "mailinfra.shaping.service",
)
# Pure-Python third-party packages copied from the pinned environment (uv.lock) into the same tree.
VENDORED = ("email_validator",)
# What the shipped code imports that Debian 12 provides: aiosmtpd (LMTP intake), flufl.bounce (non-RFC
# bounces), boto3 (SQS drain, DynamoDB store), dnspython and idna (email-validator's dependencies),
# prometheus-client (the services' metrics endpoints; Debian 12 ships 0.16).
DEBIAN_PACKAGES = ("python3-aiosmtpd", "python3-flufl.bounce", "python3-boto3", "python3-dnspython",
                   "python3-idna", "python3-prometheus-client")
# Files of a package tree that are code or data the code reads (the suppression rules are TOML).
_SHIPPED_SUFFIXES = (".py", ".toml", ".typed")


def render_host_code_object() -> tuple[str, str, str]:
    """(key, sha256, JSON text) of the one object that carries the tree for every host of a stack (the config
    bucket's `code/<sha256>.json`, a list of {path, mode, content}): content-addressed, so a host's manifest
    names exactly the code it runs, a new release is a new object, and the old one stays until `up` ends."""
    text = json.dumps([{"path": f"/{f.path}", "mode": f"{f.mode:04o}", "content": f.content}
                       for f in render_host_code()], indent=0, sort_keys=True) + "\n"
    digest = hashlib.sha256(text.encode()).hexdigest()
    return f"code/{digest}.json", digest, text


def render_host_code() -> tuple[RenderedFile, ...]:
    """Every file of HOST_PACKAGES and VENDORED at its place under HOST_PYTHON_PATH (paths relative to
    the host's root), with the `__init__.py` of each parent package (mailinfra/__init__.py)."""
    return _host_code()


@functools.cache
def _host_code() -> tuple[RenderedFile, ...]:
    files: dict[str, str] = {}
    for name in (*HOST_PACKAGES, *VENDORED):
        for relative, text in _module_files(name):
            files[relative] = text
    base = HOST_PYTHON_PATH.lstrip("/")
    return tuple(RenderedFile(f"{base}/{relative}", files[relative]) for relative in sorted(files))


def _module_files(name: str) -> list[tuple[str, str]]:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise ValueError(f"HOST_PACKAGES/VENDORED: received {name!r}, expected an importable module")
    origin = Path(spec.origin)
    top = origin.parents[len(name.split(".")) - (0 if origin.name == "__init__.py" else 1)]
    out = []
    if origin.name == "__init__.py":
        for path in sorted(origin.parent.rglob("*")):
            if path.is_file() and path.suffix in _SHIPPED_SUFFIXES and "__pycache__" not in path.parts:
                out.append((PurePosixPath(path.relative_to(top)).as_posix(), path.read_text(encoding="utf-8")))
    else:
        out.append((PurePosixPath(origin.relative_to(top)).as_posix(), origin.read_text(encoding="utf-8")))
    # The parent packages' __init__.py (regular packages; a namespace package such as mailinfra.model has none).
    for depth in range(1, len(name.split("."))):
        package = top.joinpath(*name.split(".")[:depth])
        init = package / "__init__.py"
        if init.is_file():
            out.append((PurePosixPath(init.relative_to(top)).as_posix(), init.read_text(encoding="utf-8")))
    return out
