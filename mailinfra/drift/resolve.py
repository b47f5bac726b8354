"""Ask one nameserver many questions at once: pipelined UDP with per-query timeouts and retries.

One connected UDP socket per server carries every query (matched back by message id and question),
so checking 500 records costs 500 datagrams, not 500 sockets. A truncated answer is asked again over
TCP (RFC 7766). A timeout, SERVFAIL, REFUSED or refused connection after every retry is an `error`
answer, which drift reports as unknown, never as ok.
"""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import Sequence
from dataclasses import dataclass

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype

from mailinfra.dns.txt import join_txt
from mailinfra.errors import UsageError

DEFAULT_TIMEOUT_SECONDS = 1.5
DEFAULT_ATTEMPTS = 3
DEFAULT_CONCURRENCY = 256


@dataclass(frozen=True, slots=True)
class Server:
    address: str
    port: int = 53
    label: str = ""  # how the user named it (ns-1.awsdns-01.org), for messages

    def __str__(self) -> str:
        shown = self.label or self.address
        return shown if self.port == 53 else f"{shown}:{self.port}"


@dataclass(frozen=True, slots=True)
class Answer:
    status: str  # answer | nxdomain | nodata | error
    values: tuple[str, ...] = ()
    error: str = ""


def parse_server(text: str) -> Server:
    """`HOST`, `HOST:PORT`, `[V6]:PORT` -> Server with a resolved address."""
    host, port = text.strip(), 53
    if host.startswith("["):
        inner, _, rest = host[1:].partition("]")
        host = inner
        if rest.startswith(":"):
            port = _port(text, rest[1:])
    elif host.count(":") == 1:
        host, _, raw = host.partition(":")
        port = _port(text, raw)
    if not host:
        raise UsageError(f"--nameserver: received {text!r}, expected HOST[:PORT]")
    try:
        info = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except socket.gaierror as error:
        raise UsageError(f"--nameserver: received {text!r}, cannot resolve {host}: {error.strerror}") from None
    return Server(str(info[0][4][0]), port, host)


def _port(text: str, raw: str) -> int:
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise UsageError(f"--nameserver: received {text!r}, expected a port 1-65535 after ':'")
    return int(raw)


def rdata_text(rdtype: dns.rdatatype.RdataType, rdata: object) -> str:
    """One rdata as the plan writes values: TXT joined, MX `pref target`, names without the dot."""
    if rdtype == dns.rdatatype.TXT:
        return join_txt(rdata.strings)  # type: ignore[attr-defined]
    if rdtype == dns.rdatatype.MX:
        return f"{rdata.preference} {rdata.exchange.to_text(omit_final_dot=True).lower()}"  # type: ignore[attr-defined]
    if rdtype in (dns.rdatatype.PTR, dns.rdatatype.CNAME, dns.rdatatype.NS):
        return str(rdata.target.to_text(omit_final_dot=True).lower())  # type: ignore[attr-defined]
    return str(rdata.to_text())  # type: ignore[attr-defined]


def read_answer(response: dns.message.Message, name: str, rdtype: dns.rdatatype.RdataType) -> Answer:
    rcode = response.rcode()
    if rcode == dns.rcode.NXDOMAIN:
        return Answer("nxdomain")
    if rcode != dns.rcode.NOERROR:
        return Answer("error", error=dns.rcode.to_text(rcode))
    try:
        rrset = response.find_rrset(response.answer, dns.name.from_text(name), dns.rdataclass.IN, rdtype)
    except KeyError:
        return Answer("nodata")
    return Answer("answer", tuple(rdata_text(rdtype, r) for r in rrset))


class _UdpChannel(asyncio.DatagramProtocol):
    """One connected socket to one server; answers routed to waiting queries by message id."""

    def __init__(self) -> None:
        self.pending: dict[int, asyncio.Future[dns.message.Message]] = {}
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, _addr: object) -> None:
        if len(data) < 2:
            return
        future = self.pending.get(int.from_bytes(data[:2], "big"))
        if future is None or future.done():
            return  # a late answer to a query that already timed out
        try:
            future.set_result(dns.message.from_wire(data))
        except dns.exception.DNSException:
            return  # garbage with a matching id: wait for the real answer or the timeout

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable on a connected socket: nobody listens there; fail fast, not by timeout.
        for future in self.pending.values():
            if not future.done():
                future.set_exception(exc)


class Resolver:
    """Concurrent, pipelined queries to explicit servers (no recursion, no cache)."""

    def __init__(
        self,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        attempts: int = DEFAULT_ATTEMPTS,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> None:
        self.timeout = timeout
        self.attempts = attempts
        self._limit = asyncio.Semaphore(concurrency)
        self._channels: dict[Server, asyncio.Future[_UdpChannel]] = {}

    async def __aenter__(self) -> Resolver:
        return self

    async def __aexit__(self, *_: object) -> None:
        for opening in self._channels.values():
            transport = opening.result().transport if opening.done() and not opening.exception() else None
            if transport is not None:
                transport.close()

    async def _channel(self, server: Server) -> _UdpChannel:
        # One socket per server even when hundreds of queries start at once: the first opens it,
        # the others await the same task.
        opening = self._channels.get(server)
        if opening is None:
            opening = asyncio.ensure_future(self._open(server))
            self._channels[server] = opening
        return await opening

    async def _open(self, server: Server) -> _UdpChannel:
        loop = asyncio.get_running_loop()
        _, channel = await loop.create_datagram_endpoint(_UdpChannel, remote_addr=(server.address, server.port))
        return channel

    async def query(self, server: Server, name: str, rdtype: dns.rdatatype.RdataType) -> Answer:
        async with self._limit:
            last = "no answer"
            for _ in range(self.attempts):
                try:
                    response = await self._ask_udp(server, name, rdtype)
                    if response.flags & dns.flags.TC:
                        response = await dns.asyncquery.tcp(
                            self._message(name, rdtype), server.address, timeout=self.timeout, port=server.port
                        )
                except TimeoutError:
                    last = f"timeout after {self.timeout:g} s"
                    continue
                except OSError as error:
                    last = error.strerror or type(error).__name__
                    await asyncio.sleep(self.timeout / 10)
                    continue
                answer = read_answer(response, name, rdtype)
                if answer.status == "error" and answer.error == "SERVFAIL":
                    last = "SERVFAIL"
                    continue
                return answer
            return Answer("error", error=f"{server}: {last} ({self.attempts} attempts)")

    async def query_many(self, questions: Sequence[tuple[Server, str, dns.rdatatype.RdataType]]) -> list[Answer]:
        return list(await asyncio.gather(*(self.query(s, n, t) for s, n, t in questions)))

    def _message(self, name: str, rdtype: dns.rdatatype.RdataType) -> dns.message.Message:
        # Authoritative questions: no recursion desired (RFC 1035 §4.1.1 RD=0).
        return dns.message.make_query(name, rdtype, flags=0)

    async def _ask_udp(self, server: Server, name: str, rdtype: dns.rdatatype.RdataType) -> dns.message.Message:
        channel = await self._channel(server)
        message = self._message(name, rdtype)
        while message.id in channel.pending:
            message.id = random.randrange(65536)  # noqa: S311 - ids need uniqueness here, not secrecy
        future: asyncio.Future[dns.message.Message] = asyncio.get_running_loop().create_future()
        channel.pending[message.id] = future
        try:
            assert channel.transport is not None
            channel.transport.sendto(message.to_wire())
            while True:
                response = await asyncio.wait_for(asyncio.shield(future), self.timeout)
                if message.is_response(response):
                    return response
                future = asyncio.get_running_loop().create_future()  # id matched, question did not
                channel.pending[message.id] = future
        finally:
            channel.pending.pop(message.id, None)
