"""Classify a failure reply: ordered rules kept as data (rules/*.toml), RFC 3463 codes first (pure).

The rule files are read in RULE_FILES order and the first rule that matches wins; rfc3463.toml and
providers.toml cite the KumoMTA and PowerMTA classifications they follow.
"""

from __future__ import annotations

import functools
import re
import tomllib
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from mailinfra.suppression.model import BounceClass

RULES_DIR = Path(__file__).with_name("rules")
RULE_FILES = ("rfc3463.toml", "providers.toml", "generic.toml")
# RFC 3463 §2: class "." subject "." detail; detail up to three digits.
_ENHANCED = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")


class Severity(StrEnum):
    HARD = "hard"  # suppress now
    SOFT = "soft"  # count; suppress past the threshold
    POOL = "pool"  # count for the pool; never suppress
    NONE = "none"  # nothing


@dataclass(frozen=True)
class Rule:
    id: str
    cls: BounceClass
    severity: Severity
    status: re.Pattern[str] | None
    text: re.Pattern[str] | None

    def matches(self, status: str, text: str) -> bool:
        if self.status is not None and not self.status.search(status):
            return False
        return self.text is None or bool(self.text.search(text))


@dataclass(frozen=True)
class Classification:
    cls: BounceClass
    severity: Severity
    rule: str  # the id of the rule that matched
    status: str  # the effective status the rules saw ("" when none)


class RuleError(ValueError):
    """A rule file that is not as rules/README (the header of rfc3463.toml) describes."""


def load_rules(files: tuple[Path, ...] | None = None) -> tuple[Rule, ...]:
    """The rules, in order. A bad rule is one line naming the file, the rule and the key."""
    paths = files if files is not None else tuple(RULES_DIR / name for name in RULE_FILES)
    rules: list[Rule] = []
    for path in paths:
        data = tomllib.loads(path.read_text())
        for position, raw in enumerate(data.get("rule", []), start=1):
            rules.append(_rule(path, position, raw))
    return tuple(rules)


def _rule(path: Path, position: int, raw: dict[str, object]) -> Rule:
    where = f"{path.name}: rule {raw.get('id', position)}"
    try:
        cls = BounceClass(str(raw["class"]))
        severity = Severity(str(raw["severity"]))
        status = re.compile(str(raw["status"])) if "status" in raw else None
        text = re.compile(str(raw["text"]), re.IGNORECASE) if "text" in raw else None
    except KeyError as exc:
        raise RuleError(f"{where}: {exc.args[0]}: received nothing, expected a value") from None
    except ValueError as exc:
        raise RuleError(f"{where}: received {exc}, expected a class of BounceClass, a severity of "
                        "hard|soft|pool|none and valid regular expressions") from None
    return Rule(id=str(raw.get("id", position)), cls=cls, severity=severity, status=status, text=text)


@functools.cache
def default_rules() -> tuple[Rule, ...]:
    return load_rules()


def effective_status(status: str | None, diagnostic: str) -> str:
    """The most specific enhanced code: the DSN's Status, unless it is the generic X.0.0 (Postfix writes
    5.0.0 when the remote reply had no enhanced code) and the reply text carries one."""
    declared = (status or "").strip()
    found = _ENHANCED.search(diagnostic)
    if found and (not declared or re.match(r"^[45]\.0\.0$", declared)):
        # The text's class may not contradict a declared class (a 5.0.0 failure quoting "4.2.2" stays 5).
        return f"{declared[0] if declared else found[1]}.{found[2]}.{found[3]}"
    return declared


def classify(status: str | None, diagnostic: str, remote_mta: str = "",
             rules: tuple[Rule, ...] | None = None) -> Classification:
    """The class and severity of one failure. A transient (4.x.x) status never suppresses at once: a
    `hard` rule then counts as `soft`."""
    code = effective_status(status, diagnostic)
    text = f"{diagnostic} {remote_mta}".strip()
    for rule in rules if rules is not None else default_rules():
        if rule.matches(code, text):
            severity = rule.severity
            if severity is Severity.HARD and code.startswith("4"):
                severity = Severity.SOFT
            return Classification(cls=rule.cls, severity=severity, rule=rule.id, status=code)
    return Classification(cls=BounceClass.OTHER, severity=Severity.NONE, rule="none", status=code)
