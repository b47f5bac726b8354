"""A minimal client of the Prometheus HTTP API (/api/v1/query, /api/v1/alerts): instant vectors and alerts.

Documented at prometheus.io/docs/prometheus/latest/querying/api/: every answer is `{"status": "success"|"error",
"data": ..., "errorType", "error"}`; an instant vector is `data.resultType == "vector"` with `result: [{"metric":
{labels}, "value": [unix_time, "string value"]}]`; alerts are `data.alerts: [{"labels", "annotations", "state",
"activeAt", "value"}]`.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from mailinfra.errors import MailinfraError

TIMEOUT_SECONDS = 10


class PrometheusUnreachableError(MailinfraError):
    """No answer from the server (refused, timeout, not Prometheus): the command's exit 2."""


class PrometheusQueryError(MailinfraError):
    """The server answered with an error (a bad query: a bug of ours, or a server too old)."""


@dataclass(frozen=True, slots=True)
class Sample:
    labels: dict[str, str]
    value: float


@dataclass(frozen=True, slots=True)
class Alert:
    name: str
    state: str
    labels: dict[str, str]
    summary: str


class PrometheusClient:
    def __init__(self, base_url: str, *, timeout: float = TIMEOUT_SECONDS) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def _get(self, path: str, params: dict[str, str]) -> Any:
        url = f"{self.base_url}{path}?{urllib.parse.urlencode(params)}" if params else f"{self.base_url}{path}"
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as response:  # noqa: S310 - http(s) only, checked
                body = json.loads(response.read())
        except urllib.error.HTTPError as error:
            try:
                body = json.loads(error.read())
            except ValueError:
                raise PrometheusUnreachableError(f"--prometheus {self.base_url}: received HTTP {error.code} on {path}, "
                                            "expected the Prometheus HTTP API") from None
        except (urllib.error.URLError, OSError, ValueError) as error:
            reason = getattr(error, "reason", error)
            raise PrometheusUnreachableError(f"--prometheus {self.base_url}: received no answer ({reason}), "
                                        "expected a reachable Prometheus server") from None
        if not isinstance(body, dict) or body.get("status") not in ("success", "error"):
            raise PrometheusUnreachableError(f"--prometheus {self.base_url}: received something that is not the "
                                        "Prometheus HTTP API, expected {\"status\": ..., \"data\": ...}")
        if body["status"] == "error":
            raise PrometheusQueryError(f"Prometheus at {self.base_url} refused {params.get('query', path)!r}: "
                                       f"{body.get('errorType')}: {body.get('error')}")
        return body.get("data")

    def query(self, promql: str, *, at: float | None = None) -> list[Sample]:
        params = {"query": promql}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = self._get("/api/v1/query", params)
        if not isinstance(data, dict) or data.get("resultType") != "vector":
            raise PrometheusQueryError(f"{promql!r}: received {data!r:.80}, expected an instant vector")
        return [Sample(dict(item["metric"]), float(item["value"][1])) for item in data["result"]]

    def alerts(self) -> list[Alert]:
        data = self._get("/api/v1/alerts", {})
        return [Alert(name=a["labels"].get("alertname", ""), state=a.get("state", ""), labels=dict(a["labels"]),
                      summary=str(a.get("annotations", {}).get("summary", "")))
                for a in (data or {}).get("alerts", [])]
