"""Microsoft SNDS (Smart Network Data Services) per-IP data, as its Automated Data Access returns it.

`https://sendersupport.olc.protection.outlook.com/snds/data.aspx?key=<key>[&date=MMDDYY]` answers CSV, one line
per sending IP and day, no header line. The service is unreachable from these machines; the parser is tested
against lines in that shape (tests/placement/data/snds-data.csv).

FORMAT SOURCE — read this before trusting the columns: Microsoft's own SNDS pages (the FAQ and the Automated
Data Access page) were not found in the references available to this project, so the column ORDER below is
taken from the open-source client sndslib (github.com/undersfx/sndslib, `search_ip_status` and its recorded
test data), not from Microsoft. The column MEANINGS (filter result GREEN < 10 % spam, YELLOW 10-90 %, RED > 90 %;
complaint rate; trap hits) match Microsoft's descriptions quoted in public write-ups. The parser therefore
refuses any line that does not have exactly 14 fields or whose filter result is not GREEN/YELLOW/RED, so a
changed format fails loudly instead of filling the wrong metric.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import re
from dataclasses import dataclass

COLUMNS = (
    "ip_address", "activity_start", "activity_end", "rcpt_commands", "data_commands", "message_recipients",
    "filter_result", "complaint_rate", "trap_message_start", "trap_message_end", "trap_hits", "sample_helo",
    "sample_mail_from", "comments",
)
FILTER_RESULTS = ("GREEN", "YELLOW", "RED")
# "< 0.1%" (below what SNDS reports) or "0.3%".
_RATE = re.compile(r"^(?P<below><\s*)?(?P<value>[0-9]+(?:\.[0-9]+)?)\s*%$")


class SndsFormatError(ValueError):
    """A line that is not in the SNDS data format this parser knows."""


@dataclass(frozen=True, slots=True)
class SndsRow:
    ip: str
    activity_start: str
    activity_end: str
    rcpt_commands: int
    data_commands: int
    message_recipients: int
    filter_result: str  # GREEN | YELLOW | RED
    complaint_rate: float  # a fraction; "< 0.1%" is given as its bound, 0.001
    complaint_rate_below: bool  # True: SNDS said "< x%" (the real rate is lower than complaint_rate)
    trap_hits: int
    sample_helo: str
    sample_mail_from: str
    comments: str


def parse_snds_data(text: str) -> list[SndsRow]:
    """Every row of one data.aspx answer; SndsFormatError names the line and the field that does not fit."""
    rows = []
    for number, fields in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not fields or all(not f.strip() for f in fields):
            continue
        if len(fields) != len(COLUMNS):
            raise SndsFormatError(f"SNDS data line {number}: received {len(fields)} fields, expected {len(COLUMNS)} "
                                  f"({', '.join(COLUMNS)})")
        rows.append(_row(number, dict(zip(COLUMNS, (f.strip() for f in fields), strict=True))))
    return rows


def _row(number: int, f: dict[str, str]) -> SndsRow:
    where = f"SNDS data line {number}"
    try:
        ip = str(ipaddress.ip_address(f["ip_address"]))
    except ValueError:
        raise SndsFormatError(f"{where}: ip_address: received {f['ip_address']!r}, expected an IP address") from None
    result = f["filter_result"].upper()
    if result not in FILTER_RESULTS:
        raise SndsFormatError(f"{where}: filter_result: received {f['filter_result']!r}, "
                              f"expected one of {', '.join(FILTER_RESULTS)}")
    rate = _RATE.match(f["complaint_rate"])
    if rate is None:
        raise SndsFormatError(f"{where}: complaint_rate: received {f['complaint_rate']!r}, expected '0.3%' or "
                              "'< 0.1%'")
    return SndsRow(ip=ip, activity_start=f["activity_start"], activity_end=f["activity_end"],
                   rcpt_commands=_count(where, f, "rcpt_commands"), data_commands=_count(where, f, "data_commands"),
                   message_recipients=_count(where, f, "message_recipients"), filter_result=result,
                   complaint_rate=float(rate["value"]) / 100, complaint_rate_below=bool(rate["below"]),
                   trap_hits=_count(where, f, "trap_hits"), sample_helo=f["sample_helo"],
                   sample_mail_from=f["sample_mail_from"], comments=f["comments"])


def _count(where: str, fields: dict[str, str], name: str) -> int:
    value = fields[name] or "0"  # an empty trap_hits: no trap message that day
    if not value.isdigit():
        raise SndsFormatError(f"{where}: {name}: received {value!r}, expected a count")
    return int(value)
