"""Load a stack file once, validate it completely, and hand back a typed, trusted Stack."""

from __future__ import annotations

import difflib
import json
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path as FsPath
from typing import Any

from pydantic import BaseModel, ValidationError

from mailinfra.errors import ConfigError, ConfigErrors, Described, UsageError
from mailinfra.model.rules import check_topology
from mailinfra.model.schema import StackConfig
from mailinfra.model.yamlsource import Path, YamlDocument, parse_yaml

NAMESPACE = "mailinfra"
# The example stacks shipped with mailinfra (tests and benchmarks read them; the CLI reads the project's).
STACKS_DIR = FsPath(__file__).resolve().parents[2] / "stacks"
_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_.:@+-]+$")


@dataclass(frozen=True)
class Stack:
    """A validated stack: its name, where it came from, and the typed config."""

    name: str
    source: str
    config: StackConfig
    secure_keys: frozenset[str] = frozenset()
    other_config: Mapping[str, Any] | None = None

    @property
    def environment(self) -> str:
        return self.config.environment or self.name


def find_stacks_dir(start: FsPath | None = None) -> FsPath:
    """The stack files' directory of the Pulumi project the working directory is in.

    As the Pulumi CLI does: the nearest Pulumi.yaml at or above the directory, and its `stackConfigDir`
    (default: the project directory). Never the checkout mailinfra was installed from: in a second
    checkout or a git worktree, `dev` is that tree's stack.
    """
    here = (start or FsPath.cwd()).resolve()
    for directory in (here, *here.parents):
        project = directory / "Pulumi.yaml"
        if project.is_file():
            return directory / _stack_config_dir(project)
    raise UsageError(f"STACK: no Pulumi.yaml in {here} or any directory above it; run mailinfra inside the "
                     "Pulumi project, or give the path to a stack file")


def _stack_config_dir(project: FsPath) -> str:
    try:
        data = parse_yaml(project.read_text(encoding="utf-8"), str(project)).data
    except (OSError, UnicodeDecodeError, ConfigError) as exc:
        raise UsageError(f"{project}: cannot read the Pulumi project file ({exc})") from None
    value = data.get("stackConfigDir", ".") if isinstance(data, dict) else "."
    if not isinstance(value, str) or not value:
        raise UsageError(f"{project}: stackConfigDir: received {value!r}, expected a directory path")
    return value


def resolve_stack_file(stack_or_file: str, stacks_dir: FsPath | None = None) -> FsPath:
    """`dev` -> <project>/stacks/Pulumi.dev.yaml (see find_stacks_dir); a path is taken as is."""
    candidate = FsPath(stack_or_file)
    if candidate.suffix in {".yaml", ".yml"} or "/" in stack_or_file:
        if not candidate.is_file():
            raise UsageError(f"{stack_or_file}: no such stack file")
        return candidate
    directory = stacks_dir or find_stacks_dir()
    path = directory / f"Pulumi.{stack_or_file}.yaml"
    if not path.is_file():
        known = sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml")
                       for p in directory.glob("Pulumi.*.yaml"))
        raise UsageError(
            f"STACK: received {stack_or_file!r}, expected a stack file at {_display(path)} "
            f"or one of the stacks {', '.join(known) or '(none)'}"
        )
    return path


def _display(path: FsPath) -> str:
    """Paths in messages are relative to the working directory when they are under it."""
    try:
        return str(path.resolve().relative_to(FsPath.cwd()))
    except ValueError:
        return str(path)


def stack_name_of(path: FsPath) -> str:
    name = path.name
    if name.startswith("Pulumi.") and name.endswith((".yaml", ".yml")):
        return name.removeprefix("Pulumi.").rsplit(".", 1)[0]
    return path.stem


def load_stack(stack_or_file: str, stacks_dir: FsPath | None = None) -> Stack:
    """Read, parse and validate one stack file; raise ConfigErrors with every problem found."""
    path = resolve_stack_file(stack_or_file, stacks_dir)
    where = _display(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{where}: cannot read the stack file ({exc.__class__.__name__}: {exc})") from None
    try:
        doc = parse_yaml(text, where)
    except ConfigError as exc:
        raise ConfigErrors([exc]) from None
    if not isinstance(doc.data, dict) or not isinstance(doc.data.get("config"), dict):
        found = doc.data.get("config") if isinstance(doc.data, dict) else doc.data
        raise ConfigErrors([ConfigError(_where(where, doc, ("config",)), "config", _describe(found),
                                        "a Pulumi stack file with a `config:` mapping")])
    config = doc.data["config"]
    raw: dict[str, Any] = {}
    other: dict[str, Any] = {}
    secure: set[str] = set()
    for key, value in config.items():
        namespace, _, name = str(key).partition(":")
        if namespace != NAMESPACE or not name:
            other[str(key)] = value
            continue
        if isinstance(value, dict) and set(value) == {"secure"}:
            secure.add(name)  # a Pulumi secret: ciphertext we neither need nor can read offline
            continue
        raw[name] = value
    return validate_config(raw, stack_name_of(path), where, doc=doc, secure_keys=frozenset(secure),
                           other_config=other)


def decode_pulumi_config(lookup: Callable[[str], str | None]) -> dict[str, Any]:
    """The `mailinfra:` keys as Pulumi hands them over -> plain values for validate_config.

    `lookup(key)` returns the config value of `mailinfra:<key>` or None. Pulumi passes structured
    values JSON-encoded and plain strings (environment) as they are.
    """
    raw: dict[str, Any] = {}
    for key in StackConfig.model_fields:
        text = lookup(key)
        if text is None:
            continue
        try:
            raw[key] = json.loads(text)
        except json.JSONDecodeError:
            raw[key] = text
    return raw


def _seed_secret_keys(monitoring: Any) -> set[str]:
    """The config keys the seeds read their IMAP passwords from (a plain value there is refused)."""
    seeds = monitoring.get("seeds") if isinstance(monitoring, dict) else None
    if not isinstance(seeds, dict):
        return set()
    return {str(s.get("password_secret")) for s in seeds.values() if isinstance(s, dict)}


def validate_config(
    raw: Mapping[str, Any],
    stack: str,
    where: str,
    *,
    doc: YamlDocument | None = None,
    secure_keys: frozenset[str] = frozenset(),
    other_config: Mapping[str, Any] | None = None,
) -> Stack:
    """Validate the `mailinfra:` keys (from a file or from Pulumi config) into a Stack."""
    routes = raw.get("routes")
    referenced = {str(r.get("password_secret")) for r in routes.values()
                  if isinstance(r, dict)} if isinstance(routes, dict) else set()
    referenced |= _seed_secret_keys(raw.get("monitoring"))
    plain = frozenset(k for k in raw if k not in StackConfig.model_fields and k in referenced)
    raw = {k: v for k, v in raw.items() if k not in plain}
    try:
        config = StackConfig.model_validate(dict(raw))
    except ValidationError as exc:
        raise ConfigErrors([_to_config_error(err, where, doc) for err in _without_renamed(exc.errors())]) from None
    region = (other_config or {}).get("aws:region")
    problems = check_topology(config, plain_keys=plain, region=region if isinstance(region, str) else None)
    if problems:
        errors = [ConfigError(_where(where, doc, ("config", *_prefixed(p.path))), _key(p.path),
                              p.received, p.expected) for p in problems]
        raise ConfigErrors(errors)
    return Stack(stack, where, config, secure_keys, other_config)


# ----------------------------------------------------------------- pydantic errors -> one line


def _without_renamed(errors: list[Any]) -> list[Any]:
    """Drop "missing key" when a misspelt sibling is already reported with that key as its did-you-mean."""
    hinted = set()
    for err in errors:
        if err["type"] == "extra_forbidden":
            loc = _clean_loc(err["loc"])
            hint = _did_you_mean(str(loc[-1]), _allowed_keys(loc[:-1]))
            if hint:
                hinted.add((*loc[:-1], hint))
    return [err for err in errors if err["type"] != "missing" or _clean_loc(err["loc"]) not in hinted]


def _did_you_mean(unknown: str, allowed: list[str]) -> str | None:
    hint = difflib.get_close_matches(unknown, allowed, n=1, cutoff=0.6)
    return hint[0] if hint else None


# pydantic error types -> what the stack file should hold there, in the file's own words.
_EXPECTED_BY_TYPE = {
    "dict_type": "a mapping of keys to values",
    "model_type": "a mapping of keys to values",
    "list_type": "a list",
    "string_type": "a string",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
}
_BOUNDS = {
    "greater_than_equal": ("ge", "a whole number of at least {}"),
    "greater_than": ("gt", "a whole number greater than {}"),
    "less_than_equal": ("le", "a whole number of at most {}"),
    "less_than": ("lt", "a whole number less than {}"),
}
# Model validators start their message with the key(s) they are about: "start: ..." or
# "address and allocation_id: ...".
_FIELDS_PREFIX = re.compile(r"^(?P<fields>[a-z_]+(?: and [a-z_]+)*): (?P<rest>.+)$", re.DOTALL)


def _to_config_error(err: Any, where: str, doc: YamlDocument | None) -> ConfigError:
    loc = _clean_loc(err["loc"])
    kind = err["type"]
    if kind == "extra_forbidden":
        return _unknown_key(loc, where, doc)
    if kind == "missing":
        return ConfigError(_where(where, doc, ("config", *_prefixed(loc[:-1]))), _key(loc),
                           Described("nothing (the key is missing)"), "a value: this key is required")
    received: Any = err.get("input")
    message = str(err["msg"]).removeprefix("Value error, ")
    fields = _FIELDS_PREFIX.match(message) if kind == "value_error" else None
    if kind in _EXPECTED_BY_TYPE:
        message = _EXPECTED_BY_TYPE[kind]
    elif kind.startswith("date"):
        message = "a date written YYYY-MM-DD"
    elif kind in _BOUNDS:
        bound, text = _BOUNDS[kind]
        message = text.format(err.get("ctx", {}).get(bound))
    elif kind == "too_short":
        received = Described(f"an empty {'list' if isinstance(received, list) else 'mapping'}")
        message = "at least one entry"
    elif kind in {"literal_error", "enum"}:
        message = message.replace("Input should be ", "one of ")
    elif kind == "string_pattern_mismatch":
        message = _pattern_hint(loc) or message
    elif kind in {"union_tag_invalid", "union_tag_not_found"}:
        loc = (*loc, "kind")
        received = received.get("kind") if isinstance(received, dict) else received
        message = "one of 'relay', 'ses' or 'hosts'"
    elif fields is not None:
        loc, received, message = _model_rule(fields, loc, received)
    else:
        message = message.replace("Input should be ", "")
    return ConfigError(_where(where, doc, ("config", *_prefixed(loc))), _key(loc), _describe(received), message)


def _model_rule(fields: re.Match[str], loc: tuple[Any, ...], given: Any) -> tuple[tuple[Any, ...], Any, str]:
    """A model validator's "key: expected" (one key) or "a and b: expected" (keys that go together)."""
    names = fields["fields"].split(" and ")
    values = given if isinstance(given, dict) else {}
    if len(names) == 1:
        return (*loc, names[0]), values.get(names[0]), fields["rest"]
    present = [n for n in names if values.get(n) not in (None, False)]
    absent = [n for n in names if n not in present]
    received = (f"{' and '.join(present)} without {' and '.join(absent)}" if present and absent
                else f"both {' and '.join(present)}" if present else f"neither {' nor '.join(names)}")
    return loc, Described(received), fields["rest"]


def _unknown_key(loc: tuple[Any, ...], where: str, doc: YamlDocument | None) -> ConfigError:
    unknown = str(loc[-1])
    allowed = _allowed_keys(loc[:-1])
    hint = _did_you_mean(unknown, allowed)
    if not allowed:
        expected = "no keys here"
    elif hint:
        expected = f"a known key (did you mean {hint!r}?): {', '.join(allowed)}"
    else:
        expected = f"a known key: {', '.join(allowed)}"
    return ConfigError(_where(where, doc, ("config", *_prefixed(loc))), _key(loc),
                       Described(f"unknown key {unknown!r}"), expected)


def _pattern_hint(loc: tuple[Any, ...]) -> str | None:
    hints = {
        "allocation_id": "an Elastic IP allocation id such as eipalloc-0123456789abcdef0",
        "subnet_id": "a subnet id such as subnet-0123456789abcdef0",
        "region": "an AWS region such as us-east-1",
        "fo": "DMARC fo options 0, 1, d, s separated by ':' (RFC 7489 §6.3)",
        "id": "an MTA-STS policy id of 1-32 letters and digits (RFC 8461 §3.1)",
    }
    for part in reversed(loc):
        if isinstance(part, str) and part in hints:
            return hints[part]
        if part in {"rua", "ruf"}:
            return "a mailto: URI such as mailto:dmarc@example.com (RFC 7489 §6.2)"
        if part == "tls_rpt_rua":
            return "a mailto: or https:// URI (RFC 8460 §3)"
    return None


def _clean_loc(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    cleaned: list[Any] = []
    for part in loc:
        if part == "[key]":
            continue  # the dict key itself failed: the path to it is already complete
        if part in {"relay", "ses", "hosts"} and cleaned and cleaned[-2:-1] == ["routes"]:
            continue  # pydantic's discriminator tag, not a key the user wrote
        if isinstance(part, str) and part.startswith(("function-after", "function-")):
            continue
        cleaned.append(part)
    return tuple(cleaned)


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    current: Any = StackConfig
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return []
            current = field.annotation
            continue
        origin = typing.get_origin(current)
        args = typing.get_args(current)
        if origin is dict:
            current = args[1]
        elif origin is list:
            current = args[0]
        elif origin in (typing.Union, types.UnionType):
            current = _pick_variant(args, part)
        else:
            return []
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    if typing.get_origin(current) in (typing.Union, types.UnionType):
        names: list[str] = []
        for arg in typing.get_args(current):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                names.extend(n for n in arg.model_fields if n not in names)
        return names
    return []


def _pick_variant(args: tuple[Any, ...], part: Any) -> Any:
    for arg in args:
        if isinstance(arg, type) and issubclass(arg, BaseModel) and str(part) in arg.model_fields:
            return arg.model_fields[str(part)].annotation
    return None


def _unwrap(annotation: Any) -> Any:
    while True:
        if typing.get_origin(annotation) is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
            continue
        args = typing.get_args(annotation)
        if typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in args:
            rest = [a for a in args if a is not type(None)]
            if len(rest) == 1:
                annotation = rest[0]
                continue
        return annotation


def _prefixed(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    if not loc:
        return loc
    return (f"{NAMESPACE}:{loc[0]}", *loc[1:])


def _key(loc: tuple[Any, ...]) -> str:
    if not loc:
        return f"{NAMESPACE}:"
    text = f"{NAMESPACE}:{_part(loc[0])}"
    for part in loc[1:]:
        text += f"[{part}]" if isinstance(part, int) else f".{_part(part)}"
    return text


def _part(part: Any) -> str:
    """A key as written, quoted when it holds spaces or other characters a path cannot show plainly."""
    text = str(part)
    return text if _PLAIN_KEY.match(text) else repr(text)


def _where(where: str, doc: YamlDocument | None, path: Path) -> str:
    if doc is None:
        return where
    line = doc.line_of(path)
    return f"{where}:{line}" if line else where


def _describe(value: Any) -> Any:
    """What a user wrote, in YAML's words: `nothing` for null, `a mapping`, `a list`, `true`."""
    if isinstance(value, Described):
        return value
    if value is None:
        return Described("nothing")
    if isinstance(value, dict):
        return Described("a mapping")
    if isinstance(value, list):
        return Described("a list")
    if isinstance(value, bool):
        return Described(str(value).lower())
    return value
