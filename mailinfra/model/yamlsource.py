"""Read a YAML file into plain Python values while remembering each key's line.

PyYAML's safe loader silently keeps the last of two duplicate keys and raises on a malformed
date; both would turn a typo into a wrong topology, so both become config errors here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from mailinfra.errors import ConfigError, Described

Path = tuple[str | int, ...]


@dataclass
class YamlDocument:
    """Parsed values plus the source line (1-based) of every mapping key and sequence item."""

    data: Any
    lines: dict[Path, int] = field(default_factory=dict)

    def line_of(self, path: Path) -> int | None:
        """The line of the deepest known prefix of `path`."""
        for end in range(len(path), -1, -1):
            if path[:end] in self.lines:
                return self.lines[path[:end]]
        return None


def parse_yaml(text: str, where: str) -> YamlDocument:
    """Parse one YAML document; syntax errors and duplicate keys raise ConfigError with the line."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark else ""
        problem = (exc.problem or exc.context or "syntax error").strip()
        raise ConfigError(f"{where}{line}", "", Described(f"YAML that does not parse ({problem})"),
                          "well-formed YAML") from None
    except yaml.YAMLError as exc:
        raise ConfigError(where, "", Described(f"YAML that does not parse ({exc})"), "well-formed YAML") from None
    finally:
        loader.dispose()
    doc = YamlDocument(data=None)
    if node is None:
        doc.data = {}
        return doc
    doc.data = _build(node, (), doc, loader, where)
    return doc


def _build(node: yaml.Node, path: Path, doc: YamlDocument, loader: yaml.SafeLoader, where: str) -> Any:
    doc.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node, loader)
            if isinstance(key, list | dict):
                raise ConfigError(f"{where}:{key_node.start_mark.line + 1}", _dotted(path),
                                  Described("a complex mapping key"), "a plain key")
            if key in result:
                raise ConfigError(f"{where}:{key_node.start_mark.line + 1}", _dotted((*path, key)),
                                  Described("a second definition of this key"), "each key once per mapping")
            child = (*path, key)
            doc.lines[child] = key_node.start_mark.line + 1
            result[key] = _build(value_node, child, doc, loader, where)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*path, i), doc, loader, where) for i, item in enumerate(node.value)]
    return _scalar(node, loader)


def _scalar(node: yaml.Node, loader: yaml.SafeLoader) -> Any:
    try:
        return loader.construct_object(node, deep=True)
    except (ValueError, yaml.constructor.ConstructorError):
        # e.g. 2026-13-40 matches YAML's timestamp pattern but is no date: keep the text so the
        # schema reports it against its key ("expected a date").
        return node.value


def _dotted(path: Path) -> str:
    return ".".join(str(p) for p in path)
