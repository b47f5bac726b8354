"""Google Postmaster Tools API v2: the `domains.domainStats.query` response, parsed.

Documented format (developers.google.com/workspace/gmail/postmaster/reference/rest/v2/QueryDomainStatsResponse):
`{"domainStats": [DomainStat], "nextPageToken": string}`; a DomainStat is `{"name":
"domains/{domain}/domainStats/{id}", "value": StatisticValue, "date": Date, "metric": string}` where `metric` is
the caller's MetricDefinition.name (the reference advises using it, not the opaque name, to identify the
metric); StatisticValue is a union of `intValue` (int64, a JSON string), `doubleValue`, `floatValue`,
`stringValue` and `stringList`; `date` (google.type.Date: year, month, day) is present for DAILY granularity.
The standard metrics (MetricDefinition reference): SPAM_RATE, AUTH_SUCCESS_RATE, TLS_ENCRYPTION_RATE,
DELIVERY_ERROR_RATE, ... — v2 has no domain or IP reputation.

The reference does not say on what scale a rate is given (fraction or percent); the value is passed on as the
API gives it and the metric's help says so. The API is unreachable from these machines: the parser is tested
against responses written in the documented shape (tests/placement/data/gpt-v2-query.json).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

# The MetricDefinition names our query gives each standard metric (the response's `metric` echoes them).
QUERY_METRICS = {"spam_rate": "SPAM_RATE", "auth_success_rate": "AUTH_SUCCESS_RATE",
                 "delivery_error_rate": "DELIVERY_ERROR_RATE", "tls_encryption_rate": "TLS_ENCRYPTION_RATE"}


class PostmasterFormatError(ValueError):
    """A response that is not a QueryDomainStatsResponse as documented."""


@dataclass(frozen=True, slots=True)
class DomainStat:
    domain: str
    metric: str
    date: dt.date | None
    value: float | str | tuple[str, ...]


def parse_domain_stats(text: str) -> tuple[list[DomainStat], str | None]:
    """The stats of one page and the next page's token (None on the last page)."""
    try:
        body = json.loads(text)
    except json.JSONDecodeError as error:
        raise PostmasterFormatError(f"QueryDomainStatsResponse: received text that is not JSON ({error})") from None
    if not isinstance(body, dict):
        raise PostmasterFormatError("QueryDomainStatsResponse: received a non-object, expected {\"domainStats\": ...}")
    stats = [_stat(i, item) for i, item in enumerate(body.get("domainStats") or [])]
    return stats, body.get("nextPageToken") or None


def _stat(index: int, item: Any) -> DomainStat:
    where = f"QueryDomainStatsResponse.domainStats[{index}]"
    if not isinstance(item, dict):
        raise PostmasterFormatError(f"{where}: received {type(item).__name__}, expected a DomainStat object")
    name = str(item.get("name", ""))
    parts = name.split("/")
    if len(parts) != 4 or parts[0] != "domains" or parts[2] != "domainStats":
        raise PostmasterFormatError(f"{where}.name: received {name!r}, expected domains/{{domain}}/domainStats/{{id}}")
    metric = item.get("metric")
    if not isinstance(metric, str) or not metric:
        raise PostmasterFormatError(f"{where}.metric: received {metric!r}, expected the MetricDefinition name")
    return DomainStat(domain=parts[1], metric=metric, date=_date(where, item.get("date")),
                      value=_value(where, item.get("value")))


def _date(where: str, date: Any) -> dt.date | None:
    if date is None:
        return None
    try:
        return dt.date(int(date["year"]), int(date["month"]), int(date["day"]))
    except (KeyError, TypeError, ValueError):
        raise PostmasterFormatError(f"{where}.date: received {date!r}, expected {{year, month, day}}") from None


def _value(where: str, value: Any) -> float | str | tuple[str, ...]:
    if not isinstance(value, dict) or len(value) != 1:
        raise PostmasterFormatError(f"{where}.value: received {value!r}, expected one StatisticValue field")
    kind, raw = next(iter(value.items()))
    try:
        if kind == "intValue":
            return float(int(raw))  # int64 is a JSON string in the proto3 JSON mapping
        if kind in ("doubleValue", "floatValue"):
            return float(raw)
        if kind == "stringValue":
            return str(raw)
        if kind == "stringList":
            return tuple(str(v) for v in raw.get("values", []))
    except (TypeError, ValueError, AttributeError):
        pass
    raise PostmasterFormatError(f"{where}.value: received {value!r}, expected intValue, doubleValue, floatValue, "
                                "stringValue or stringList")


def spam_rates(stats: list[DomainStat]) -> dict[str, float]:
    """domain -> its latest spam rate (the `spam_rate` metric of our query)."""
    latest: dict[str, tuple[dt.date, float]] = {}
    for stat in stats:
        if stat.metric != "spam_rate" or not isinstance(stat.value, float):
            continue
        day = stat.date or dt.date.min
        if stat.domain not in latest or day >= latest[stat.domain][0]:
            latest[stat.domain] = (day, stat.value)
    return {domain: value for domain, (_, value) in latest.items()}
