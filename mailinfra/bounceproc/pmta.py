"""PowerMTA accounting records into reports: the `b` (bounce), `rb` (remote/asynchronous bounce, from its
bounce-processor) and `f` (feedback loop, from its feedback-loop-processor) records.

The acct-file is CSV (RFC 4180) with one header line at the beginning naming every column; the first column
is always the record type, and a file holding several record types has the union of their columns, a record
leaving the others empty (PowerMTA User's Guide, "Accounting Files", "Encoding"). So the reader goes by the
header, whatever `record-fields` selected. PowerMTA writes the file on our own host, an authenticated
channel: the recipient is PowerMTA's own `rcpt`, the stream the one of the VMTA in its `vmta` field. Not run
here (licensed software): tested on records of the documented shape (tests/bounceproc/test_pmta.py).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Mapping

from mailinfra.suppression.address import try_normalise
from mailinfra.suppression.model import FeedbackType, Report, ReportKind


def read_records(text: str) -> Iterator[dict[str, str]]:
    """Each record as {column: value}, by the file's header line (the one whose first column is `type`;
    a rotated file starts with its own)."""
    names: list[str] | None = None
    for row in csv.reader(io.StringIO(text)):
        if not row:
            continue
        if row[0] == "type":
            names = row
            continue
        if names is not None:
            yield {name: value for name, value in zip(names, row, strict=False) if value != ""}


def record_reports(records: Iterator[dict[str, str]], vmta_streams: Mapping[str, str],
                   stream_kinds: Mapping[str, str], vmta_pools: Mapping[str, str]) -> Iterator[Report]:
    """Reports from records; a record of a VMTA that is not ours, or without a recipient, is skipped."""
    for record in records:
        kind = record.get("type", "")
        stream = vmta_streams.get(record.get("vmta", ""))
        recipient = try_normalise(record.get("rcpt", ""))
        if stream is None or recipient is None:
            continue
        common = {"recipient": recipient, "stream": stream, "pool": vmta_pools.get(record.get("vmta", "")),
                  "stream_kind": stream_kinds.get(stream), "verp_verified": True,
                  "message_ref": f"pmta:{record.get('jobId', '')}:{record.get('envId', '')}:"
                                 f"{record.get('timeLogged', '')}"}
        if kind in {"b", "rb"}:
            yield Report(kind=ReportKind.BOUNCE, action=(record.get("dsnAction") or "failed").lower(),
                         status=_status_code(record.get("dsnStatus", "")), diagnostic=record.get("dsnDiag", ""),
                         remote_mta=record.get("dsnMta", ""), reporter="powermta", **common)  # type: ignore[arg-type]
        elif kind == "f":
            try:
                feedback = FeedbackType((record.get("feedbackType") or "abuse").lower())
            except ValueError:
                feedback = FeedbackType.OTHER
            yield Report(kind=ReportKind.COMPLAINT, feedback_type=feedback,
                         reporter=record.get("userAgent") or record.get("reportingMta") or "powermta",
                         **common)  # type: ignore[arg-type]


def _status_code(text: str) -> str | None:
    """PowerMTA writes the code with its meaning, `5.1.1 (bad destination mailbox address)`: the code only."""
    match = re.match(r"\s*([245]\.\d{1,3}\.\d{1,3})", text)
    return match[1] if match else None
