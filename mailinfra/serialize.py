"""Plain-JSON views of plan values (dataclasses, enums, dates) for plan.json and --format json."""

from __future__ import annotations

import dataclasses
import datetime as dt
from enum import Enum
from typing import Any


def to_jsonable(value: Any) -> Any:
    """Recursively turn dataclasses, enums, dates and tuples into JSON-ready values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        data = {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
        key = getattr(type(value), "key", None)
        if isinstance(key, property):
            data["key"] = value.key  # type: ignore[attr-defined]
        return data
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    return value
