"""The lookup service: a socketmap server on a Unix socket for the host's Postfix instances, and a poller
that keeps the replica up to date from every bounce host's change feed.

    python -m mailinfra.suppression_service --config /etc/mailinfra/suppression-lookup.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import grp
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mailinfra.model.kinds import StreamKind
from mailinfra.suppression.address import try_normalise
from mailinfra.suppression.lookup import LookupTable
from mailinfra.suppression_service import socketmap
from mailinfra.suppression_service.feed import FeedError, RemoteFeed

log = logging.getLogger("mailinfra.suppression_service")


class NotSyncedError(Exception):
    """A replica that has never completed a sync cannot say "not suppressed": the lookup must defer."""


class Replicas:
    """One replica (mailinfra.suppression.lookup.LookupTable) per bounce host's feed: with several bounce
    hosts each keeping its own store, an address is suppressed when any of them says so."""

    def __init__(self, directory: Path, feeds: Sequence[str], secret: bytes, source_address: str | None = None) -> None:
        self.tables = {url: LookupTable(directory / f"replica-{i}.db") for i, url in enumerate(feeds)}
        # The loopback feed (this host's own processor) needs no source address.
        self.feeds = {url: RemoteFeed(url, secret, None if url.startswith("http://127.0.0.1:") else source_address)
                      for url in feeds}

    def lookup(self, address: str, kind: str) -> str | None:
        """The RCPT reply refusing `address` for a stream of `kind`, or None."""
        normalised = try_normalise(address)
        if normalised is None:
            return None  # not an address we could have suppressed (smtpd checks syntax itself)
        # Fail closed before the first sync (a new host, a replica lost with the cache): "not found" from an
        # empty replica would let mail through to every suppressed address. TEMP makes smtpd answer
        # 451 4.3.0 (postconf(5), check_recipient_access: a lookup error defers), and the sender retries.
        unsynced = [url for url, table in self.tables.items() if not table.has_synced()]
        if unsynced:
            raise NotSyncedError(f"replica of {', '.join(unsynced)} not synced yet")
        now = dt.datetime.now(dt.UTC)
        for table in self.tables.values():
            hit = table.lookup(normalised, StreamKind(kind), now)
            if hit is not None:
                return hit.reply()
        return None

    def sync(self) -> int:
        """Every feed's new changes; a feed that fails is retried at the next poll (the replica still answers)."""
        applied = 0
        for url, table in self.tables.items():
            try:
                applied += table.sync(self.feeds[url])  # changes_since is all sync reads (ChangeFeed)
            except FeedError as error:
                log.warning("feed %s: %s", url, error)
        return applied


@dataclass(frozen=True)
class LookupConfig:
    socket: Path
    socket_group: str | None
    replica: Path  # the directory of the replicas
    feeds: tuple[str, ...]
    poll_seconds: float
    secret: bytes
    source_address: str | None = None


def load_config(path: Path, root: Path | None = None) -> LookupConfig:
    """The rendered configuration (mailinfra.mta.enforcement); `root` prefixes its paths (the lab's root)."""
    data: dict[str, Any] = json.loads(path.read_text())

    def where(value: str) -> Path:
        return Path(f"{root}{value}") if root is not None else Path(value)

    return LookupConfig(socket=where(data["socket"]), socket_group=data.get("socket_group"),
                        replica=where(data["replica"]), feeds=tuple(data["feeds"]),
                        poll_seconds=float(data.get("poll_seconds", 1.0)),
                        secret=where(data["verp_secret_file"]).read_bytes().strip(),
                        source_address=data.get("source_address"))


async def handle_client(replica: Replicas, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answer requests until Postfix closes the connection (it reuses one per process)."""
    buffer = b""
    try:
        while True:
            payload, buffer = socketmap.decode_netstring(buffer)
            if payload is None:
                data = await reader.read(4096)
                if not data:
                    return
                buffer += data
                continue
            request = socketmap.parse_request(payload)
            try:
                answer = replica.lookup(request.key, request.name)
            except NotSyncedError as error:
                writer.write(socketmap.reply_temporary(str(error)))
            except Exception as error:  # any failure must defer (TEMP), never let mail through
                log.warning("lookup %s failed: %s", request.key, error)
                writer.write(socketmap.reply_temporary("suppression lookup failed"))
            else:
                writer.write(socketmap.reply_found(answer) if answer else socketmap.reply_not_found())
            await writer.drain()
    except socketmap.NetstringError as error:
        log.warning("closing a client: %s", error)
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def poll_forever(replica: Replicas, config: LookupConfig) -> None:
    loop = asyncio.get_running_loop()
    while True:
        started = time.monotonic()
        await loop.run_in_executor(None, replica.sync)
        await asyncio.sleep(max(0.05, config.poll_seconds - (time.monotonic() - started)))


async def serve(config: LookupConfig) -> None:
    replica = Replicas(config.replica, config.feeds, config.secret, config.source_address)
    config.socket.parent.mkdir(parents=True, exist_ok=True)
    config.socket.unlink(missing_ok=True)
    server = await asyncio.start_unix_server(lambda r, w: handle_client(replica, r, w), path=str(config.socket))
    # smtpd runs as Postfix's mail_owner: that group may connect, nobody else.
    if config.socket_group:
        with contextlib.suppress(KeyError, PermissionError):
            os.chown(config.socket, -1, grp.getgrnam(config.socket_group).gr_gid)
    config.socket.chmod(0o660)
    print(f"suppression lookup: listening on {config.socket}, feeds {', '.join(config.feeds)}", flush=True)
    async with server:
        await asyncio.gather(server.serve_forever(), poll_forever(replica, config))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="suppression lookup for Postfix (socketmap)")
    parser.add_argument("--config", required=True, type=Path)
    parser.add_argument("--root", type=Path, default=None, help="prefix of every path in the config (the lab)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        config = load_config(args.config, args.root)
    except (OSError, KeyError, ValueError) as error:
        sys.exit(f"{args.config}: {error}")
    asyncio.run(serve(config))
