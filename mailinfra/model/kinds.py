"""The stream kinds, apart from the schema: the host services (mailinfra.mta.host_code) import them on hosts
where pydantic is not installed (Debian 12 ships pydantic 1.10; the schema needs 2.x)."""

from __future__ import annotations

from enum import StrEnum


class StreamKind(StrEnum):
    TRANSACTIONAL = "transactional"
    MARKETING = "marketing"
    BULK = "bulk"
