"""Read a YAML file into plain Python values while remembering each key's line.

PyYAML's safe loader silently keeps the last of two duplicate keys and raises on a malformed
date; both would turn a typo into a wrong topology, so both become config errors here.
"""

from __future__ import annotations

import re
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


# A stack file has a few hundred values; aliases can make a short file expand exponentially
# ("billion laughs"), so expansion stops well before memory does.
MAX_VALUES = 200_000


# PyYAML's messages name parser states (`<block mapping start>`); a stack file's author needs the mistake.
# (pattern of `problem`, pattern of `context` or None, what it means; {opened} = the line the context opened on)
_YAML_MISTAKES: tuple[tuple[str, str | None, str], ...] = (
    (r"found character '\\t'", None, "a tab character; YAML indents with spaces only"),
    (r"mapping values are not allowed here", None,
     "a `key: value` where a plain value was expected: this line is indented deeper than the key above it, "
     "or a value contains ': ' and needs quotes"),
    (r"expected <block end>, but found '<block mapping start>'", None,
     "this line is indented deeper than the keys before it (line {opened}); keys of one mapping line up"),
    (r"expected <block end>, but found '\?'", None,
     "a `key: value` inside a list that started on line {opened}: a list item needs `- `, or the key belongs "
     "one level up"),
    (r"expected <block end>, but found '<scalar>'", None,
     "text after a quoted value, or a line indented less than its mapping (line {opened}); quote the whole "
     "value or fix the indentation"),
    (r"expected <block end>, but found '-'", None,
     "a list item (`- `) where the mapping that started on line {opened} expects a key"),
    (r"could not find expected ':'", None, "a key without `:` after it (or a value that spans lines)"),
    (r"found unexpected end of stream", r"quoted scalar", "a quote opened on line {opened} is never closed"),
    (r"expected ',' or '\]'", None, "a `[` list opened on line {opened} is not closed with `]` (or lacks a comma)"),
    (r"expected ',' or '\}'", None, "a `{` mapping opened on line {opened} is not closed with `}` (or lacks a comma)"),
    (r"found undefined alias '([^']*)'", None, "`*\\1` refers to an anchor `&\\1` that is not defined above it"),
)


def explain_yaml_error(exc: yaml.MarkedYAMLError) -> str:
    """The mistake in the author's terms, with PyYAML's own wording kept at the end for searches."""
    problem = " ".join((exc.problem or exc.context or "syntax error").split())
    context = " ".join((exc.context or "").split())
    opened = exc.context_mark.line + 1 if exc.context_mark else "?"
    for pattern, context_pattern, meaning in _YAML_MISTAKES:
        match = re.search(pattern, problem)
        if match and (context_pattern is None or re.search(context_pattern, context)):
            return f"{match.expand(meaning).replace('{opened}', str(opened))} (YAML: {problem})"
    if exc.problem and exc.context and exc.context_mark and exc.context_mark is not exc.problem_mark:
        problem += f" {context} from line {opened}"  # where the unclosed thing was opened
    return problem


def parse_yaml(text: str, where: str) -> YamlDocument:
    """Parse one YAML document; syntax errors and duplicate keys raise ConfigError with the line."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark else ""
        raise ConfigError(f"{where}{line}", "", Described(f"YAML that does not parse: {explain_yaml_error(exc)}"),
                          "well-formed YAML") from None
    except yaml.YAMLError as exc:
        problem = " ".join(str(exc).split())
        raise ConfigError(where, "", Described(f"YAML that does not parse ({problem})"),
                          "well-formed YAML") from None
    finally:
        loader.dispose()
    doc = YamlDocument(data=None)
    if node is None:
        doc.data = {}
        return doc
    doc.data = _Builder(doc, loader, where).build(node, ())
    return doc


@dataclass
class _Builder:
    doc: YamlDocument
    loader: yaml.SafeLoader
    where: str
    open_nodes: set[int] = field(default_factory=set)
    built: int = 0

    def build(self, node: yaml.Node, path: Path) -> Any:
        self.doc.lines.setdefault(path, node.start_mark.line + 1)
        self.built += 1
        where = f"{self.where}:{self.doc.lines[path]}"  # where the value is used, not where its anchor is
        if self.built > MAX_VALUES:
            raise ConfigError(where, _dotted(path), Described(f"more than {MAX_VALUES} values once "
                              "aliases are expanded"), "a stack file of a sensible size")
        if not isinstance(node, yaml.MappingNode | yaml.SequenceNode):
            return _scalar(node, self.loader)
        if id(node) in self.open_nodes:
            raise ConfigError(where, _dotted(path), Described("an alias that contains itself"),
                              "a value that ends (no recursive YAML anchors)")
        self.open_nodes.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
            return self._mapping(node, path)
        finally:
            self.open_nodes.discard(id(node))

    def _mapping(self, node: yaml.MappingNode, path: Path) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node, self.loader)
            if isinstance(key, list | dict) or not isinstance(key_node, yaml.ScalarNode):
                raise ConfigError(self._at(key_node), _dotted(path), Described("a complex mapping key"),
                                  "a plain key")
            if key in result:
                raise ConfigError(self._at(key_node), _dotted((*path, key)),
                                  Described("a second definition of this key"), "each key once per mapping")
            child = (*path, key)
            self.doc.lines[child] = key_node.start_mark.line + 1
            result[key] = self.build(value_node, child)
        return result

    def _at(self, node: yaml.Node) -> str:
        return f"{self.where}:{node.start_mark.line + 1}"


def _scalar(node: yaml.Node, loader: yaml.SafeLoader) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        return None
    try:
        return loader.construct_object(node, deep=True)
    except (ValueError, yaml.constructor.ConstructorError):
        # e.g. 2026-13-40 matches YAML's timestamp pattern but is no date: keep the text so the
        # schema reports it against its key ("expected a date").
        return node.value


_PLAIN = re.compile(r"^[A-Za-z0-9_.:@+-]+$")


def _dotted(path: Path) -> str:
    """The key path as load.py writes it: `mailinfra:dns.zones`, `mailinfra:pools.tx.hosts[0]`."""
    if len(path) > 1 and path[0] == "config":
        path = path[1:]  # every key path in a message is relative to the stack file's `config:`
    text = ""
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            text += f"[{part}]"
            continue
        shown = str(part) if _PLAIN.match(str(part)) else repr(str(part))
        text += f".{shown}" if text else shown
    return text
