"""Postfix delivery log lines as typed records, and a reader that follows a log file across rotation (pure
parsing; the follower only reads files).

One delivery attempt is one line of smtp(8)/lmtp(8)/error(8) (postconf(5) and the Postfix source,
src/global/log_adhoc.c: `to=<rcpt>, [orig_to=<..>, ]relay=.., [conn_use=N, ]delay=.., delays=a/b/c/d,
dsn=X.Y.Z, status=<sent|deferred|bounced|expired> (reply text)`). The program name is the process's
`syslog_name` and service: every pool transport sets `syslog_name=${multi_instance_name}/<transport>`
(templates/postfix/master.cf.j2), so a line names its instance (the pool) and its transport (IP x provider):
`postfix-<pool>/<ip>_<provider>/smtp[pid]: QID: to=<...>, ...`. The timestamp in front (syslog's, or
postlogd's with microseconds for `maillog_file`) is not parsed: it differs by logger, the order of lines
is what counts.

The API is kept small for the other readers of Postfix logs (metrics, shaping): `parse_delivery` and
`LogFollower`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

# A line is `<program>[pid]: <queue id>: to=<...>, <key=value, >...status=<word> (<text>)`. Queue ids are
# hex (short) or base-52 long ids (enable_long_queue_ids); both are alphanumeric.
# Processes that log a delivery attempt (the delivery agents; qmgr logs `status=expired` for mail it
# returns once maximal_queue_lifetime has passed).
DELIVERY_AGENTS = frozenset({"smtp", "lmtp", "error", "retry", "discard", "local", "virtual", "qmgr"})
STATUSES = frozenset({"sent", "deferred", "bounced", "expired"})


@dataclass(frozen=True, slots=True)
class Delivery:
    """One delivery attempt of one recipient."""

    instance: str  # the syslog name's first part: "postfix" or "postfix-<pool>"
    transport: str | None  # the master.cf service that set its own syslog name ("<ip>_<provider>"), if any
    agent: str  # smtp | lmtp | error | ...
    queue_id: str
    recipient: str
    relay: str
    delay_seconds: float  # `delay=`: from arrival to this attempt's end
    dsn: str  # the enhanced status code (RFC 3463)
    status: str  # sent | deferred | bounced | expired
    reply: str  # the text in parentheses (the remote reply, or Postfix's reason)

    @property
    def recipient_domain(self) -> str:
        return self.recipient.rpartition("@")[2].lower()


def parse_delivery(line: str) -> Delivery | None:
    """The delivery attempt a log line records, or None for any other line.

    String partitions, not a regular expression: this runs on every line of a busy host's log, and a line
    that is no delivery costs one substring test (bench/metrics_bench.py measures it)."""
    if "status=" not in line:  # most lines: one substring test
        return None
    head, found, rest = line.partition("]: ")
    if not found:
        return None
    program = head.rpartition(" ")[2].partition("[")[0]
    queue_id, found, rest = rest.partition(": to=<")
    if not found or not queue_id.isalnum():
        return None
    recipient, found, rest = rest.partition(">, ")
    fields_text, found, outcome = rest.rpartition("status=")
    if not found:
        return None
    status, _, reply = outcome.partition(" (")
    status = status.strip()
    parts = program.split("/")
    if status not in STATUSES or parts[-1] not in DELIVERY_AGENTS:
        return None
    fields = dict(item.partition("=")[::2] for item in fields_text.split(", ") if "=" in item)
    try:
        delay = float(fields.get("delay", "0"))
    except ValueError:
        delay = 0.0
    return Delivery(
        instance=parts[0], transport="/".join(parts[1:-1]) or None, agent=parts[-1], queue_id=queue_id,
        recipient=recipient, relay=fields.get("relay", ""), delay_seconds=delay, dsn=fields.get("dsn", ""),
        status=status, reply=reply.rstrip().removesuffix(")"))


class LogFollower:
    """Reads the lines appended to a log file since the last call, across rotation (`tail -F`).

    Rotation by rename (logrotate's default): the path names a new file (another inode); the rest of the
    old file is read first, then the new one from its start. Rotation by copytruncate: the file shrinks
    below the offset; it is read again from its start. A line without its newline yet stays buffered until
    it is complete, so no record is ever parsed from half a line.
    """

    def __init__(self, path: Path, *, from_start: bool = False) -> None:
        self.path = path
        self._handle: BinaryIO | None = None
        self._inode: int | None = None
        self._partial = b""
        self._open(at_end=not from_start)

    def _open(self, *, at_end: bool) -> None:
        try:
            handle = self.path.open("rb")
        except FileNotFoundError:
            self._handle, self._inode = None, None
            return
        self._inode = os.fstat(handle.fileno()).st_ino
        if at_end:
            handle.seek(0, os.SEEK_END)
        self._handle = handle

    def read_lines(self) -> list[str]:
        """The complete lines written since the previous call (decoded, newline stripped)."""
        if self._handle is None:
            self._open(at_end=False)  # the file appeared: everything in it is new
        handle = self._handle
        if handle is None:
            return []
        data = handle.read()
        try:
            current: os.stat_result | None = self.path.stat()
        except FileNotFoundError:
            current = None
        if current is not None and current.st_ino != self._inode:
            handle.close()
            self._open(at_end=False)
            if self._handle is not None:
                data += self._handle.read()
        elif current is not None and current.st_size < handle.tell():
            handle.seek(0)
            self._partial = b""
            data = handle.read()
        data = self._partial + data
        complete, newline, self._partial = data.rpartition(b"\n")
        if not newline:
            return []
        return complete.decode("utf-8", "replace").split("\n")

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
