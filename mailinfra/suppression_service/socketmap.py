"""Postfix's socketmap protocol (socketmap_table(5)): one netstring request `name <space> key`, one netstring
reply `OK <space> data`, `NOTFOUND <space>`, `TEMP <space> reason`, `TIMEOUT <space> reason` or
`PERM <space> reason`. Netstrings (D. J. Bernstein): `<length>:<bytes>,`. Postfix keeps the connection open
for further requests, so a server reads requests until the client closes."""

from __future__ import annotations

from dataclasses import dataclass

# socketmap_table(5): "The Postfix socketmap client requires that replies are not longer than 100000
# characters"; requests are as small (a name and an address).
MAX_NETSTRING = 100_000


class NetstringError(ValueError):
    """The peer sent something that is not a netstring (the connection is closed)."""


@dataclass(frozen=True, slots=True)
class Request:
    name: str  # the map name: the stream kind of the asking instance
    key: str  # the recipient address as Postfix looks it up


def encode_netstring(payload: bytes) -> bytes:
    return str(len(payload)).encode() + b":" + payload + b","


def decode_netstring(buffer: bytes) -> tuple[bytes | None, bytes]:
    """(one complete netstring's payload, the rest of the buffer), or (None, buffer) when incomplete."""
    colon = buffer.find(b":")
    if colon < 0:
        if len(buffer) > len(str(MAX_NETSTRING)) or (buffer and not buffer.isdigit()):
            raise NetstringError(f"received {buffer[:20]!r}, expected a netstring length")
        return None, buffer
    digits = buffer[:colon]
    if not digits.isdigit() or len(digits) > len(str(MAX_NETSTRING)):
        raise NetstringError(f"received length {digits[:20]!r}, expected decimal digits")
    length = int(digits)
    if length > MAX_NETSTRING:
        raise NetstringError(f"received a {length}-byte netstring, expected at most {MAX_NETSTRING}")
    end = colon + 1 + length
    if len(buffer) < end + 1:
        return None, buffer
    if buffer[end:end + 1] != b",":
        raise NetstringError("received a netstring without its trailing comma")
    return buffer[colon + 1:end], buffer[end + 1:]


def parse_request(payload: bytes) -> Request:
    name, sep, key = payload.decode("utf-8", "replace").partition(" ")
    if not sep or not name:
        raise NetstringError(f"received {payload[:60]!r}, expected 'name key'")
    return Request(name, key)


def reply_found(data: str) -> bytes:
    return encode_netstring(b"OK " + data.encode("ascii", "replace"))


def reply_not_found() -> bytes:
    return encode_netstring(b"NOTFOUND ")


def reply_temporary(reason: str) -> bytes:
    # Postfix turns TEMP into a lookup error: smtpd answers 451 4.3.0 and the client retries (fail closed).
    return encode_netstring(b"TEMP " + reason.encode("ascii", "replace"))
