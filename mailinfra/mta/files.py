"""What a renderer returns (typed files) and the shared pieces every MTA renderer uses."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import jinja2

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"

# Secrets never reach a rendered file: the host's boot script replaces each marker with the value of the
# named secret (Pulumi secret config / secrets store). The marker is easy to grep and cannot be a password.
SECRET_MARK = re.compile(r"@@SECRET:([A-Za-z0-9_.:-]+)@@")


def secret_placeholder(name: str) -> str:
    """The marker a rendered file carries in place of the secret called `name`."""
    return f"@@SECRET:{name}@@"


@dataclass(frozen=True, slots=True)
class RenderedFile:
    """One file of a host, its path relative to the host's root (etc/postfix/main.cf)."""

    path: str
    content: str
    mode: int = 0o644
    secret_placeholders: tuple[str, ...] = ()  # names of the secrets the host fills in at boot


@functools.cache
def template_environment() -> jinja2.Environment:
    """Jinja for config files: a missing variable is an error, never an empty string.

    One environment per process, so each template is compiled once (compiling dominated a prod preview).
    """
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # noqa: S701 - MTA configs, not HTML
    )


def render_template(name: str, **context: object) -> str:
    return template_environment().get_template(name).render(**context)


def rendered(path: str, content: str, mode: int = 0o644) -> RenderedFile:
    """A RenderedFile whose placeholder list is read from its content, so the two never disagree."""
    names = tuple(dict.fromkeys(SECRET_MARK.findall(content)))
    return RenderedFile(path, content, mode, names)
