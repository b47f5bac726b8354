"""The processor process: LMTP intake, the change feed, the SES queues' drain.

    python -m mailinfra.bounceproc --config /etc/mailinfra/bounceproc.json [--root DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import grp
import logging
import os
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from mailinfra.bounceproc.config import ConfigError, ProcessorConfig, load_config
from mailinfra.bounceproc.feed import serve_feed
from mailinfra.bounceproc.lmtp import IntakeHandler, lmtp_factory
from mailinfra.suppression.model import Report
from mailinfra.suppression.pipeline import process_message, process_reports
from mailinfra.suppression.sqlite_store import SqliteStore
from mailinfra.suppression.store import Applied, SuppressionStore

log = logging.getLogger("mailinfra.bounceproc")
SES_RETRY_SECONDS = 5.0


def open_store(config: ProcessorConfig) -> SuppressionStore:
    """The store `bounces.suppression.store` names: the SQLite file on the spool volume, or the stack's
    DynamoDB table, reached with the instance role's credentials (boto3's default chain: the instance
    metadata service on EC2) in the host's region (AWS_REGION, /etc/default/mailinfra from the user data).
    MAILINFRA_DYNAMODB_ENDPOINT points it at a stand-in (the tests' moto server)."""
    if config.store_kind == "dynamodb" and config.store_table:
        from mailinfra.suppression.dynamodb_store import DynamoStore

        return DynamoStore(config.store_table, endpoint_url=os.environ.get("MAILINFRA_DYNAMODB_ENDPOINT") or None)
    return SqliteStore(config.store_path)


class Processor:
    """The one writer of the host's store: every report, whatever its channel, goes through here."""

    def __init__(self, config: ProcessorConfig) -> None:
        self.config = config
        self.actor = f"processor@{config.host}"
        # One writer thread owns the store's connection (sqlite3 objects stay in their thread): LMTP and the
        # SES drain both hand their work to it, so writes are serial.
        self.writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
        self.store = self.writer.submit(open_store, config).result()

    def message(self, raw: bytes, rcpt: str, now: dt.datetime) -> list[Applied]:
        return self.writer.submit(
            process_message, raw, envelope_recipient=rcpt, context=self.config.context,
            policy=self.config.policy, store=self.store, now=now, actor=self.actor).result()

    def reports(self, reports: list[Report], now: dt.datetime) -> list[Applied]:
        return self.writer.submit(process_reports, reports, policy=self.config.policy, store=self.store,
                                  now=now, actor=self.actor).result()


def drain_ses(processor: Processor, stop: threading.Event) -> None:
    """Each SES route's queue, long-polled, until `stop` (boto3 with the host role's credentials)."""
    import boto3

    from mailinfra.bounceproc.ses import drain_once

    endpoint = os.environ.get("MAILINFRA_SQS_ENDPOINT") or None
    clients = {name: boto3.client("sqs", region_name=region, endpoint_url=endpoint)
               for name, region in processor.config.ses_queues}
    urls: dict[str, str] = {}
    while not stop.is_set():
        for name, sqs in clients.items():
            try:
                if name not in urls:
                    urls[name] = sqs.get_queue_url(QueueName=name)["QueueUrl"]
                drain_once(sqs, urls[name], processor.config.context, processor.reports)
            except Exception as error:  # the network or SQS: retry, the events wait in the queue
                log.warning("SES queue %s: %s", name, error)
                stop.wait(SES_RETRY_SECONDS)


async def serve(config: ProcessorConfig) -> None:
    processor = Processor(config)
    config.lmtp_socket.parent.mkdir(parents=True, exist_ok=True)
    config.lmtp_socket.unlink(missing_ok=True)
    handler = IntakeHandler(processor.message)
    loop = asyncio.get_running_loop()
    server = await loop.create_unix_server(lmtp_factory(handler, config.host or "bounceproc"),
                                           path=str(config.lmtp_socket))
    # Postfix's lmtp(8) runs as its mail_owner: that group may connect, nobody else.
    if config.socket_group:
        with contextlib.suppress(KeyError, PermissionError):
            os.chown(config.lmtp_socket, -1, grp.getgrnam(config.socket_group).gr_gid)
    config.lmtp_socket.chmod(0o660)
    # The feed serves the same store (with `dynamodb`, every bounce host's feed serves the whole table: a
    # replica that folds in two feeds applies each change twice, harmlessly: a change carries the entry's state).
    feed = (serve_feed(config.feed_listen, config.secret, lambda: open_store(config))
            if config.feed_listen else None)
    stop = threading.Event()
    if config.ses_queues:
        threading.Thread(target=drain_ses, args=(processor, stop), name="ses", daemon=True).start()
    print(f"bounce processor: LMTP on {config.lmtp_socket}, feed on {config.feed_listen}", flush=True)
    try:
        async with server:
            await server.serve_forever()
    finally:
        stop.set()
        if feed is not None:
            feed.shutdown()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="the bounce and complaint processor")
    parser.add_argument("--config", required=True, type=Path)
    parser.add_argument("--root", type=Path, default=None, help="prefix of every path in the config (the lab)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        config = load_config(args.config, args.root)
    except (ConfigError, OSError) as error:
        sys.exit(str(error))
    asyncio.run(serve(config))
