"""DNS messages at the byte level, for the few record types drift compares (RFC 1035 §4).

dnspython builds a full object graph per message (Name, Rdata, RRset, Message), which on loopback
costs more than the network: parsing a transferred zone took longer than transferring it. Drift only
needs, per resource record, the owner name and the value as the plan writes it (see
`mailinfra.drift.resolve.rdata_text`), so this module reads exactly that: names lower-cased and
rendered as dnspython renders them (same escapes), TXT strings joined (`mailinfra.dns.txt.join_txt`),
MX as `pref target`, PTR/CNAME/NS targets without the dot, A as a dotted quad. Every structural check
dnspython makes on those (compression pointers strictly backwards, RDATA lengths consumed exactly, at
least one TXT string, no trailing bytes) is made here too, so a message is refused by both or by neither;
other record types are carried through unparsed.
"""

from __future__ import annotations

import functools
import random
import re
import struct
from collections.abc import Container, Sequence
from typing import NamedTuple

import dns.name

QR = 0x8000
TC = 0x0200
IN = 1
A, NS, CNAME, SOA, PTR, MX, TXT, OPT, AXFR = 1, 2, 5, 6, 12, 15, 16, 41, 252
NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 2, 3, 4, 5
# dnspython's limit on compression pointers followed while reading one name.
MAX_POINTER_HOPS = 16
MAX_NAME_OCTETS = 255  # RFC 1035 §3.1

_HEADER = struct.Struct("!HHHHHH")
_RR = struct.Struct("!HHIH")
_U16 = struct.Struct("!H")
_NAME_TYPES = frozenset((NS, CNAME, PTR))  # rdata is one name
# Labels that render as themselves (no dnspython escape): the fast path for every name we plan.
_PLAIN_LABEL = re.compile(rb"[A-Za-z0-9_*-]+")
_PLAIN_OCTETS = b"abcdefghijklmnopqrstuvwxyz0123456789-_*"
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_*.-]+")


class WireError(ValueError):
    """A message dnspython would refuse to parse (FormError and friends)."""


class RawRecord(NamedTuple):
    """One resource record as read, without text: what a zone transfer is compared by."""

    owner: bytes  # uncompressed wire, ASCII lower-cased
    rdtype: int
    rdclass: int
    ttl: int
    # Canonical rdata for A/NS/CNAME/PTR/MX/TXT/SOA (names decompressed and lower-cased, so equal bytes
    # are the rdata dnspython holds as identical: an RRset keeps one of them); None for other types.
    rdata: bytes | None


class RawMessage(NamedTuple):
    id: int
    flags: int
    rcode: int  # with the EDNS extended bits (RFC 6891 §6.1.3), as dnspython's Message.rcode()
    question: tuple[tuple[bytes, int, int], ...]  # (name wire, type, class)
    answer: tuple[RawRecord, ...]


class Record(NamedTuple):
    name: str  # lower-case, no final dot; "" is the root
    rdtype: int
    rdclass: int
    ttl: int
    value: object  # str for A/NS/CNAME/PTR/MX/TXT (as the plan writes it), a tuple for SOA, None otherwise
    identity: object  # equal for RRs dnspython holds as the same rdata (an RRset keeps one of them)


class Message(NamedTuple):
    id: int
    flags: int
    rcode: int  # with the EDNS extended bits (RFC 6891 §6.1.3), as dnspython's Message.rcode()
    question: tuple[tuple[str, int, int], ...]  # (name, type, class)
    answer: tuple[Record, ...]


def name_key(name: str) -> str:
    """A name as this module renders owner names: what a planned name is looked up by."""
    if _is_plain(name):
        return name.lower()
    labels = dns.name.from_text(name).labels
    return ".".join(_label_text(label.lower()) for label in labels if label)


def name_wire(name: str) -> bytes:
    """A name as `RawRecord` holds owners and targets: uncompressed wire, ASCII lower-cased."""
    return _qname(name).lower()


def query_wire(name: str, rdtype: int) -> bytes:
    """The query for `name`/`rdtype` without its 2-byte id: flags 0 (no recursion desired, RFC 1035
    §4.1.1 RD=0, as `dns.message.make_query(..., flags=0)`), one question, class IN, no EDNS."""
    return b"\0\0\0\1\0\0\0\0\0\0" + _qname(name) + struct.pack("!HH", rdtype, IN)


def _qname(name: str) -> bytes:
    labels = name.encode("ascii").split(b".") if _is_plain(name) else ()
    if labels and all(len(label) < 64 for label in labels) and len(name) < MAX_NAME_OCTETS - 1:
        return b"".join(bytes((len(label),)) + label for label in labels) + b"\0"
    wired = dns.name.from_text(name).to_wire()
    assert wired is not None  # no file given: to_wire returns the bytes
    return wired


def with_id(query: bytes, query_id: int) -> bytes:
    return _U16.pack(query_id) + query


def random_id(taken: Container[int] = ()) -> int:
    """A message id not in `taken` (ids in flight on one socket must differ to route the answers)."""
    while True:
        candidate = random.randrange(65536)  # noqa: S311 - ids need uniqueness here, not secrecy
        if candidate not in taken:
            return candidate


def parse_raw(data: bytes) -> RawMessage:
    """Header, question and answer of one message as bytes; authority and additional are read (and
    checked) only for the EDNS extended rcode. Raises WireError on anything dnspython's `from_wire` would
    refuse."""
    try:
        return _Reader(data).message()
    except IndexError:
        raise WireError("runs past the end of the message") from None


def parse_message(data: bytes) -> Message:
    """`parse_raw` with names and values as text (see the module docstring)."""
    raw = parse_raw(data)
    question = tuple((name_text(name), rdtype, rdclass) for name, rdtype, rdclass in raw.question)
    answer = tuple(_new_tuple(Record, (name_text(r.owner), r.rdtype, r.rdclass, r.ttl,
                                       None if r.rdata is None else rdata_value(r.rdtype, r.rdata), r.rdata))
                   for r in raw.answer)
    return Message(raw.id, raw.flags, raw.rcode, question, answer)


def rrset_values(records: Sequence[Record], name: str, rdtype: int) -> tuple[str, ...] | None:
    """The values of the IN RRset `name`/`rdtype` in `records` (dnspython's find_rrset: identical rdatas
    once, first-seen order), or None when there is no such RRset."""
    values: list[str] = []
    seen: set[object] = set()
    for record in records:
        if record.rdtype == rdtype and record.name == name and record.rdclass == IN and record.identity not in seen:
            seen.add(record.identity)
            values.append(str(record.value))
    return tuple(values) if values else None


@functools.lru_cache(maxsize=8192)
def name_text(wire: bytes) -> str:
    """A name read as wire, rendered as dnspython renders it: lower-case, no final dot, "" the root."""
    labels = []
    offset = 0
    count = wire[0]
    while count:
        labels.append(wire[offset + 1:offset + 1 + count])
        offset += 1 + count
        count = wire[offset]
    return _labels_text(labels, "") if labels else ""


def rdata_value(rdtype: int, rdata: bytes) -> object:
    """A canonical rdata as the plan writes values: A a dotted quad, TXT strings joined, MX `pref target`,
    NS/CNAME/PTR the target without the dot (the root as "."), SOA (mname, rname, the 20 octets after)."""
    if rdtype == TXT:
        strings = []
        offset = 0
        while offset < len(rdata):
            size = rdata[offset]
            strings.append(rdata[offset + 1:offset + 1 + size])
            offset += 1 + size
        # mailinfra.dns.txt.join_txt: bytes joined before decoding (a producer may split inside a character).
        return b"".join(strings).decode("utf-8", "replace")
    if rdtype == A:
        return f"{rdata[0]}.{rdata[1]}.{rdata[2]}.{rdata[3]}"
    if rdtype == MX:
        return f"{_U16.unpack_from(rdata)[0]} {name_text(rdata[2:]) or '.'}"  # RFC 7505 null MX: "0 ."
    if rdtype == SOA:
        split = _name_length(rdata, 0)
        rest = _name_length(rdata, split)
        return (name_text(rdata[:split]), name_text(rdata[split:rest]), rdata[rest:])
    return name_text(rdata) or "."  # NS, CNAME, PTR


def _name_length(wire: bytes, offset: int) -> int:
    """Where the uncompressed name starting at `offset` ends."""
    while wire[offset]:
        offset += 1 + wire[offset]
    return offset + 1


def _is_plain(name: str) -> bool:
    """Letters, digits, `-_*`, dots between non-empty labels: text that is its own wire labels."""
    return bool(_PLAIN_NAME.fullmatch(name)) and not (name[0] == "." or name[-1] == "." or ".." in name)


def _labels_text(labels: list[bytes], suffix: str) -> str:
    joined = (labels[0] if len(labels) == 1 else b".".join(labels)).lower()
    # Only plain octets besides the dots put between labels: the text is the bytes themselves.
    if len(joined.translate(None, _PLAIN_OCTETS)) == len(labels) - 1:
        text = joined.decode("ascii")
    else:
        text = ".".join(_label_text(label.lower()) for label in labels)
    return f"{text}.{suffix}" if suffix else text


def _label_text(label: bytes) -> str:
    if _PLAIN_LABEL.fullmatch(label):
        return label.decode("ascii")
    return dns.name.Name((label,)).to_text()  # dnspython's escapes: \. \" \DDD ...


# Record(...) goes through a Python-level __new__; the tuple constructor makes the same object at a
# third of the cost, which counts once per resource record of a zone.
_new_tuple = tuple.__new__

# A read name, a plain tuple (this is the hot loop): wire (uncompressed, ASCII lower-cased: names compare
# case-insensitively, RFC 4343; its length is the name's octets, RFC 1035 §3.1: at most 255), reach (how
# far the first compression target's own bytes run; 0 without a pointer), hops (pointers followed), end
# (offset just after the name as written).
_Name = tuple[bytes, int, int, int]


class _Reader:
    """One message read to raw records: names decompressed to lower-cased wire, no text made."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.names: dict[int, _Name] = {}

    def message(self) -> RawMessage:
        data = self.data
        if len(data) < 12:
            raise WireError("short header")
        query_id, flags, qdcount, ancount, nscount, arcount = _HEADER.unpack_from(data)
        offset = 12
        question = []
        for _ in range(qdcount):
            name, offset = self.name(offset)
            if offset + 4 > len(data):
                raise WireError("short question")
            rdtype, rdclass = struct.unpack_from("!HH", data, offset)
            question.append((name, rdtype, rdclass))
            offset += 4
        answer, offset = self.records(offset, ancount)
        rcode = flags & 0xF
        others, offset = self.records(offset, nscount + arcount)
        for record in others:
            if record.rdtype == OPT:
                rcode |= (record.ttl >> 20) & 0xFF0
        if offset != len(data):
            raise WireError("trailing junk")
        return RawMessage(query_id, flags, rcode, tuple(question), tuple(answer))

    def name(self, start: int, end: int | None = None) -> tuple[bytes, int]:
        """The name written at `start` (wire, offset after it); `end` bounds its uncompressed bytes."""
        wire, reach, _, after = self.names.get(start) or self._name(start)
        if reach > start or after > (len(self.data) if end is None else end):
            raise WireError("bad compression pointer")  # a target overlapping the name itself
        return wire, after

    def _name(self, start: int) -> _Name:
        # The hot loop of a transfer (every owner and target): one frame per name, plain tuples, one
        # slice per name, and IndexError for running past the message (turned into WireError by the caller).
        data = self.data
        offset = start
        count = data[offset]
        while 0 < count < 64:
            offset += 1 + count
            count = data[offset]
        if count == 0:
            end = offset + 1
            # Label lengths are below 64, so lower() changes only the labels' ASCII letters.
            wire, reach, hops = data[start:end].lower(), 0, 0
        elif count >= 192:
            target = (count & 0x3F) << 8 | data[offset + 1]
            if target >= start:
                raise WireError("compression pointer not backwards")
            suffix, pointed_reach, hops, reach = self.names.get(target) or self._name(target)
            # dnspython: each pointer strictly before the previous target, and the target's own bytes
            # end before the place that pointed at it.
            if pointed_reach > target:
                raise WireError("bad compression pointer")
            hops += 1
            end = offset + 2
            if hops > MAX_POINTER_HOPS:
                raise WireError("pointer chain too long")
            wire = data[start:offset].lower() + suffix if offset > start else suffix
        else:
            raise WireError("bad label type")
        if len(wire) > MAX_NAME_OCTETS:
            raise WireError("name too long")
        found = self.names[start] = (wire, reach, hops, end)
        return found

    def records(self, offset: int, count: int) -> tuple[list[RawRecord], int]:  # noqa: PLR0912 - one frame per message
        """`count` records from `offset` (offset after them): the per-record loop of a transfer, so it
        keeps everything in locals."""
        data = self.data
        size = len(data)
        names = self.names
        read_name = self._name
        unpack_rr = _RR.unpack_from
        records = []
        for _ in range(count):
            owner, reach, _, after = names.get(offset) or read_name(offset)
            if reach > offset:
                raise WireError("bad compression pointer")  # a target overlapping the name itself
            if after + 10 > size:
                raise WireError("short resource record")
            rdtype, rdclass, ttl, rdlength = unpack_rr(data, after)
            start = after + 10
            offset = start + rdlength
            if offset > size:
                raise WireError("rdata runs past the message")
            rdata: bytes | None = None
            if rdtype == TXT:
                if not rdlength:
                    raise WireError("TXT rdata without strings")
                strings = start
                while strings < offset:
                    strings += 1 + data[strings]
                if strings > offset:
                    raise WireError("TXT string runs past its rdata")
                rdata = data[start:offset]
            elif rdtype == A:
                if rdlength != 4:
                    raise WireError("A rdata is not 4 octets")
                rdata = data[start:offset]
            elif rdtype == MX:
                if rdlength < 3:
                    raise WireError("short MX rdata")
                rdata = data[start:start + 2] + self._target(start + 2, offset)
            elif rdtype in _NAME_TYPES:
                rdata = self._target(start, offset)
            elif rdtype == SOA:
                mname, after = self.name(start, offset)
                rname, after = self.name(after, offset)
                if offset - after != 20:
                    raise WireError("bad SOA rdata")
                rdata = mname + rname + data[after:offset]
            records.append(_new_tuple(RawRecord, (owner, rdtype, rdclass, ttl, rdata)))
        return records, offset

    def _target(self, start: int, end: int) -> bytes:
        wire, after = self.name(start, end)
        if after != end:
            raise WireError("rdata longer than its name")
        return wire
