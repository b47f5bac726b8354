"""Sinks for a stack's status, chosen at the edge: terminal table, JSON, Markdown."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict

from mailinfra.status.collect import PoolStatus, StackStatus

FORMATS = ("table", "json", "markdown")
COLUMNS = ("pool", "sent", "delivered", "deferred", "bounced", "complaints", "inbox by provider", "warmup",
           "cap use", "queue age", "alerts")


def _pct(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}%"


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:.0f}s" if seconds < 120 else f"{seconds / 60:.0f}m"


def _cells(p: PoolStatus) -> tuple[str, ...]:
    inbox = " ".join(f"{prov} {_pct(v, 0)}" for prov, v in p.inbox_pct.items()) or "-"
    warmup = f"day {p.warmup_day}" if p.warmup_day is not None else (p.warmup_status or "-")
    return (p.pool, f"{p.sent:.0f}", _pct(p.delivered_pct), _pct(p.deferred_pct), _pct(p.bounced_pct),
            _pct(p.complaint_pct, 2), inbox, warmup, _pct(p.cap_use_pct, 0), _age(p.queue_age_seconds),
            ", ".join(p.alerts) or "-")


def _title(status: StackStatus) -> str:
    at = dt.datetime.fromtimestamp(status.at, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (f"status {status.stack}: last {status.window_seconds // 3600 or 1} h to {at} "
            f"(Prometheus {status.prometheus}); {len(status.alerts)} firing alert(s)")


def render_table(status: StackStatus) -> str:
    lines = [_title(status)]
    streams = dict.fromkeys(p.stream for p in status.pools)
    for stream in streams:
        rows = [COLUMNS, *(_cells(p) for p in status.pools if p.stream == stream)]
        widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
        lines += ["", f"stream {stream}"]
        lines += ["  " + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
    stack_wide = [a for a in status.alerts if "pool" not in a.labels]
    if stack_wide:
        lines += ["", "alerts without a pool:"] + [f"  {a.name}: {a.summary}" for a in stack_wide]
    return "\n".join(lines) + "\n"


def render_markdown(status: StackStatus) -> str:
    lines = [f"## {_title(status)}"]
    for stream in dict.fromkeys(p.stream for p in status.pools):
        lines += ["", f"### stream `{stream}`", "", "| " + " | ".join(COLUMNS) + " |",
                  "|" + "---|" * len(COLUMNS)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in _cells(p)) + " |"
                  for p in status.pools if p.stream == stream]
    return "\n".join(lines) + "\n"


def render_json(status: StackStatus) -> str:
    return json.dumps(asdict(status), indent=2, sort_keys=True) + "\n"


def render(fmt: str, status: StackStatus) -> str:
    return {"table": render_table, "json": render_json, "markdown": render_markdown}[fmt](status)
