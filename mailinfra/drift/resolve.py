"""Ask one nameserver many questions at once: pipelined UDP with per-query timeouts and retries.

One connected UDP socket per server carries every query (matched back by message id and question),
so checking 500 records costs 500 datagrams, not 500 sockets. A truncated answer is asked again over
TCP (RFC 7766). A timeout, SERVFAIL, REFUSED or refused connection after every retry is an `error`
answer, which drift reports as unknown, never as ok.
"""

from __future__ import annotations

import asyncio
import socket
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype

from mailinfra.dns.txt import join_txt
from mailinfra.drift import wire
from mailinfra.errors import UsageError

DEFAULT_TIMEOUT_SECONDS = 1.5
DEFAULT_ATTEMPTS = 3
# Queries in flight per server. The server's socket must hold a whole window: Knot's (Linux's default
# 208 KiB, ~1 KiB of kernel accounting per small datagram) dropped some of 256 under load, each drop
# costing a full timeout; 64 never did, and already keeps the server busy on loopback.
DEFAULT_CONCURRENCY = 64
RECEIVE_BUFFER_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class Server:
    address: str
    port: int = 53
    label: str = ""  # how the user named it (ns-1.awsdns-01.org), for messages

    def __str__(self) -> str:
        shown = self.label or self.address
        return shown if self.port == 53 else f"{shown}:{self.port}"


class Answer(NamedTuple):
    """What one server said about one name and type (a tuple: made once per planned record)."""

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


class _UdpChannel:
    """One connected non-blocking socket to one server; answers routed to the waiting query by message id.

    Read with `add_reader` rather than a DatagramTransport: the transport takes one datagram per event-loop
    turn, which on loopback made the loop itself the cost; here every wake-up drains all waiting answers.
    """

    def __init__(self, server: Server, loop: asyncio.AbstractEventLoop) -> None:
        family, kind, proto, _, address = socket.getaddrinfo(server.address, server.port, type=socket.SOCK_DGRAM)[0]
        self.sock = socket.socket(family, kind, proto)
        self.loop = loop
        self.pending: dict[int, _Flight] = {}
        try:
            self.sock.setblocking(False)
            # Room for a whole window of answers while Python parses the previous ones: the default
            # (about 200 KiB of kernel accounting, ~100 datagrams) is what dropped answers at 256 in flight.
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER_BYTES)
            self.sock.connect(address)
            loop.add_reader(self.sock.fileno(), self._readable)
        except OSError:
            self.sock.close()
            raise

    def close(self) -> None:
        self.loop.remove_reader(self.sock.fileno())
        self.sock.close()

    def send(self, data: bytes) -> None:
        try:
            self.sock.send(data)
        except (BlockingIOError, InterruptedError):
            pass  # a full send buffer drops it like the network would: the timeout retries it
        except OSError as error:
            self.loop.call_soon(self._failed, error)

    def _readable(self) -> None:
        while True:
            try:
                data = self.sock.recv(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:
                self._failed(error)
                return
            if len(data) >= 2:
                flight = self.pending.get(data[0] << 8 | data[1])
                if flight is not None:  # else a late answer to a query that already gave up
                    flight.batch.receive(flight, data)

    def _failed(self, error: OSError) -> None:
        # ICMP port unreachable on a connected socket: nobody listens there; fail fast, not by timeout.
        for batch in {flight.batch: None for flight in self.pending.values()}:
            batch.fail_in_flight(error)


@dataclass(eq=False, slots=True)
class _Flight:
    """One question on its way: the query bytes (built once) and what its attempts have seen so far."""

    batch: _Batch
    index: int
    asked: str  # the name as the caller gave it
    name: str  # as wire.name_key renders it, to match the answer's question and RRset
    rdtype: dns.rdatatype.RdataType
    body: bytes  # the query without its id
    query_id: int = -1
    attempts: int = 0
    deadline: float = 0.0
    last: str = "no answer"


class _Batch:
    """Every question for one server over its one socket: at most `window` in flight, each answered,
    retried (timeout, SERVFAIL, refused) or given up after `attempts`, without a task per query."""

    def __init__(self, resolver: Resolver, server: Server, channel: _UdpChannel,
                 questions: Sequence[tuple[str, dns.rdatatype.RdataType]]) -> None:
        self.resolver = resolver
        self.server = server
        self.channel = channel
        self.loop = asyncio.get_running_loop()
        self.answers: list[Answer | None] = [None] * len(questions)
        self.remaining = len(questions)
        self.finished: asyncio.Future[None] = self.loop.create_future()
        self.flights = [self._flight(index, name, rdtype) for index, (name, rdtype) in enumerate(questions)]
        self.waiting: deque[_Flight] = deque(self.flights)
        self.in_flight: dict[int, _Flight] = {}  # by query id, in the order sent: the first expires first
        self.timer: asyncio.TimerHandle | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    def _flight(self, index: int, name: str, rdtype: dns.rdatatype.RdataType) -> _Flight:
        return _Flight(self, index, name, wire.name_key(name), rdtype, wire.query_wire(name, rdtype))

    async def run(self) -> list[Answer]:
        if self.remaining:
            self._fill()
            try:
                await self.finished
            finally:
                if self.timer is not None:
                    self.timer.cancel()
                for query_id in self.in_flight:
                    self.channel.pending.pop(query_id, None)
        return [answer for answer in self.answers if answer is not None]

    def _fill(self) -> None:
        while self.waiting and len(self.in_flight) + len(self.tasks) < self.resolver.window:
            self._send(self.waiting.popleft())

    def _send(self, flight: _Flight) -> None:
        taken = self.channel.pending
        flight.query_id = query_id = wire.random_id(taken)  # a new id per attempt, as a new query would have
        flight.attempts += 1
        flight.deadline = self.loop.time() + self.resolver.timeout
        taken[query_id] = self.in_flight[query_id] = flight
        if self.timer is None:
            self.timer = self.loop.call_at(flight.deadline, self._expire)
        self.channel.send(wire.with_id(flight.body, query_id))

    def _land(self, flight: _Flight) -> None:
        self.in_flight.pop(flight.query_id, None)
        self.channel.pending.pop(flight.query_id, None)

    def _finish(self, flight: _Flight, answer: Answer) -> None:
        self.answers[flight.index] = answer
        self.remaining -= 1
        if not self.remaining and not self.finished.done():
            self.finished.set_result(None)

    def _retry(self, flight: _Flight, last: str, delay: float = 0.0) -> None:
        """Another attempt (after `delay`), or the error answer once every attempt is spent."""
        flight.last = last
        if flight.attempts >= self.resolver.attempts:
            self._finish(flight, Answer("error", error=f"{self.server}: {last} ({self.resolver.attempts} attempts)"))
        elif delay:
            self.loop.call_later(delay, self._resend, flight)
        else:
            self.waiting.appendleft(flight)

    def _resend(self, flight: _Flight) -> None:
        self.waiting.appendleft(flight)
        self._fill()

    def receive(self, flight: _Flight, data: bytes) -> None:
        try:
            message = wire.parse_message(data)
        except wire.WireError:
            return  # garbage with a matching id: wait for the real answer or the timeout
        if not _answers_question(message, flight):
            return  # id matched, question did not
        self._land(flight)
        if message.flags & wire.TC:
            # Truncated (RFC 7766): the same question over TCP, still one attempt.
            task = self.loop.create_task(self._ask_tcp(flight))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
            return
        answer = _read_wire_answer(message, flight)
        if answer.status == "error" and answer.error == "SERVFAIL":
            self._retry(flight, "SERVFAIL")
        else:
            self._finish(flight, answer)
        self._fill()

    async def _ask_tcp(self, flight: _Flight) -> None:
        try:
            response = await dns.asyncquery.tcp(dns.message.make_query(flight.asked, flight.rdtype, flags=0),
                                                self.server.address, timeout=self.resolver.timeout,
                                                port=self.server.port)
        except (TimeoutError, dns.exception.Timeout):
            self._retry(flight, f"timeout after {self.resolver.timeout:g} s")
        except OSError as error:
            self._retry(flight, error.strerror or type(error).__name__, self.resolver.timeout / 10)
        else:
            answer = read_answer(response, flight.asked, flight.rdtype)
            if answer.status == "error" and answer.error == "SERVFAIL":
                self._retry(flight, "SERVFAIL")
            else:
                self._finish(flight, answer)
        self._fill()

    def _expire(self) -> None:
        self.timer = None
        now = self.loop.time()
        while self.in_flight:
            flight = next(iter(self.in_flight.values()))
            if flight.deadline > now:
                self.timer = self.loop.call_at(flight.deadline, self._expire)
                break
            self._land(flight)
            self._retry(flight, f"timeout after {self.resolver.timeout:g} s")
        self._fill()

    def fail_in_flight(self, error: OSError) -> None:
        """The server's host refused (ICMP): every query in flight counts an attempt, retried after a pause."""
        last = error.strerror or type(error).__name__
        for flight in list(self.in_flight.values()):
            self._land(flight)
            self._retry(flight, last, self.resolver.timeout / 10)
        self.loop.call_soon(self._fill)


def _answers_question(message: wire.Message, flight: _Flight) -> bool:
    """dns.message.Message.is_response for our one-question query."""
    if not message.flags & wire.QR or (message.flags >> 11) & 0xF != 0:
        return False
    if not message.question:
        return message.rcode in (wire.FORMERR, wire.SERVFAIL, wire.NOTIMP, wire.REFUSED)
    return all(question == (flight.name, flight.rdtype, wire.IN) for question in message.question)


def _read_wire_answer(message: wire.Message, flight: _Flight) -> Answer:
    """read_answer over a message read by mailinfra.drift.wire."""
    if message.rcode == wire.NXDOMAIN:
        return Answer("nxdomain")
    if message.rcode != wire.NOERROR:
        return Answer("error", error=dns.rcode.to_text(dns.rcode.Rcode.make(message.rcode)))
    values = wire.rrset_values(message.answer, flight.name, flight.rdtype)
    return Answer("nodata") if values is None else Answer("answer", values)


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
        self.window = max(1, concurrency)  # queries in flight per server
        self._channels: dict[Server, _UdpChannel] = {}

    async def __aenter__(self) -> Resolver:
        return self

    async def __aexit__(self, *_: object) -> None:
        for channel in self._channels.values():
            channel.close()
        self._channels.clear()

    def _channel(self, server: Server) -> _UdpChannel:
        channel = self._channels.get(server)
        if channel is None:
            channel = self._channels[server] = _UdpChannel(server, asyncio.get_running_loop())
        return channel

    async def query(self, server: Server, name: str, rdtype: dns.rdatatype.RdataType) -> Answer:
        return (await self.query_many([(server, name, rdtype)]))[0]

    async def query_many(self, questions: Sequence[tuple[Server, str, dns.rdatatype.RdataType]]) -> list[Answer]:
        """One answer per question, in order; each server's questions pipelined over its socket."""
        by_server: dict[Server, list[int]] = {}
        for index, (server, _, _) in enumerate(questions):
            by_server.setdefault(server, []).append(index)
        batches = [
            _Batch(self, server, self._channel(server), [questions[i][1:] for i in indexes])
            for server, indexes in by_server.items()
        ]
        answered = await asyncio.gather(*(batch.run() for batch in batches))
        answers: list[Answer | None] = [None] * len(questions)
        for indexes, batch_answers in zip(by_server.values(), answered, strict=True):
            for index, answer in zip(indexes, batch_answers, strict=True):
                answers[index] = answer
        return [a for a in answers if a is not None]
