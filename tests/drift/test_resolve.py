"""Pipelined per-record queries: the same answers dnspython reads, truncation over TCP, retries that recover."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.rrset

from mailinfra.dns.records import DnsRecord, RecordType
from mailinfra.drift.resolve import Answer, Resolver, Server, read_answer
from tests.drift.knot import knot_serving, render_zones
from tests.drift.test_dns_drift import PLAN


def served_records() -> list[DnsRecord]:
    """The dev plan plus one TXT RRset too large for a 512-byte UDP answer (RFC 1035 §4.2.1)."""
    apex = next(r for r in PLAN.records if r.type is RecordType.TXT and r.zone == "example.com")
    big = dataclasses.replace(apex, name="big.example.com", values=tuple(f"v{i} " + "x" * 240 for i in range(3)))
    return [*PLAN.records, big]


def test_every_answer_equals_dnspythons(tmp_path: Path) -> None:
    """GIVEN Knot serving the dev zones WHEN every record is asked at once (one attempt, no room for a
    retry to hide a loss) THEN each answer equals dnspython's own query and parse, the big TXT whole."""
    records = served_records()
    questions = [(r.name, dns.rdatatype.from_text(str(r.type))) for r in records]
    with knot_serving(tmp_path, render_zones(PLAN, records)) as port:
        server = Server("127.0.0.1", port)

        async def ask() -> list[Answer]:
            async with Resolver(timeout=2.0, attempts=1) as resolver:
                return list(await resolver.query_many([(server, n, t) for n, t in questions]))

        answers = asyncio.run(ask())
        expected = []
        truncated = []
        for name, rdtype in questions:
            response = dns.query.udp(dns.message.make_query(name, rdtype, flags=0), "127.0.0.1", timeout=2, port=port)
            if response.flags & dns.flags.TC:
                truncated.append(name)
                response = dns.query.tcp(dns.message.make_query(name, rdtype, flags=0), "127.0.0.1", timeout=2,
                                         port=port)
            expected.append(read_answer(response, name, rdtype))
    assert answers == expected
    assert truncated == ["big.example.com"]
    assert answers[-1].status == "answer" and len(answers[-1].values) == 3


@contextmanager
def scripted_server(script: list[list[str]]) -> Iterator[Server]:
    """A UDP responder on loopback: for the n-th query it receives, sends script[n] in order, where each
    step is `garbage`, `wrong-question`, `servfail` or `answer` (an A 192.0.2.1), all with the query's id."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)

    def serve() -> None:
        for steps in script:
            data, peer = sock.recvfrom(65535)
            query = dns.message.from_wire(data)
            for step in steps:
                if step == "garbage":
                    sock.sendto(data[:2] + b"\xff\xff\x00", peer)
                    continue
                asked = dns.message.make_query("other.example.com", "A") if step == "wrong-question" else query
                response = dns.message.make_response(asked)
                response.id = query.id
                if step == "servfail":
                    response.set_rcode(dns.rcode.SERVFAIL)
                elif step in ("answer", "wrong-question"):
                    response.answer.append(dns.rrset.from_text(asked.question[0].name, 60, "IN", "A", "192.0.2.1"))
                sock.sendto(response.to_wire(), peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield Server("127.0.0.1", sock.getsockname()[1])
    finally:
        thread.join(timeout=10)
        sock.close()


def ask_one(server: Server, *, attempts: int) -> Answer:
    async def ask() -> Answer:
        async with Resolver(timeout=1.0, attempts=attempts) as resolver:
            return await resolver.query(server, "tx1.example.com", dns.rdatatype.A)

    return asyncio.run(ask())


def test_garbage_and_other_questions_with_our_id_are_ignored() -> None:
    with scripted_server([["garbage", "wrong-question", "answer"]]) as server:
        answer = ask_one(server, attempts=1)
    assert answer.status == "answer" and answer.values == ("192.0.2.1",)


def test_servfail_is_retried_and_its_last_error_named() -> None:
    with scripted_server([["servfail"], ["answer"]]) as server:
        recovered = ask_one(server, attempts=2)
    assert recovered.values == ("192.0.2.1",)
    with scripted_server([["servfail"], ["servfail"]]) as server:
        failed = ask_one(server, attempts=2)
    assert failed.status == "error" and failed.error == f"{server}: SERVFAIL (2 attempts)"
