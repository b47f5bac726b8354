"""`store: dynamodb` on a host: the real processor (its own process, as the unit runs it) writes every report
to the DynamoDB table and serves the feed from it, and drains an SES route's SQS queue into it; against a
moto server (DynamoDB, SQS), boto3's default credential chain as on EC2 (here: environment keys)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from mailinfra.model.schema import StreamKind
from mailinfra.suppression.dynamodb_store import DynamoStore
from mailinfra.suppression_service.feed import decode_page, feed_key
from tests.bounceproc.test_processor import ROOT, Processor
from tests.suppression import samples
from tests.suppression.conftest import create_table, dynamodb_client
from tests.tooling import moto_server, stop_by_pid

QUEUE = "mailinfra-dev-ses-events"


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture
def dynamo_processor(tmp_path: Path, moto_url: str) -> Iterator[tuple[Processor, str, object]]:
    table = create_table(moto_url)
    sqs = boto3.client("sqs", region_name="us-east-1", endpoint_url=moto_url, aws_access_key_id="testing",
                       aws_secret_access_key="testing")
    queue_url = sqs.create_queue(QueueName=QUEUE)["QueueUrl"]
    proc = Processor(tmp_path)
    config = json.loads(proc.config.read_text())
    # As mailinfra.mta.intake.processor_config renders it for `store: dynamodb` with an SES route.
    config["store"] = {"kind": "dynamodb", "path": str(tmp_path / "store.db"), "table": table}
    config["ses_queues"] = [{"name": QUEUE, "region": "us-east-1"}]
    proc.config.write_text(json.dumps(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | {
        "PYTHONPATH": str(ROOT), "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing", "MAILINFRA_DYNAMODB_ENDPOINT": moto_url,
        "MAILINFRA_SQS_ENDPOINT": moto_url}
    (tmp_path / "run").mkdir(exist_ok=True)
    proc.process = subprocess.Popen([sys.executable, "-m", "mailinfra.bounceproc", "--config", str(proc.config)],
                                    env=env, stdout=subprocess.DEVNULL, stderr=(tmp_path / "proc.log").open("a"),
                                    text=True)
    deadline = time.monotonic() + 20
    while not (tmp_path / "run/lmtp.sock").exists():
        assert proc.process.poll() is None, (tmp_path / "proc.log").read_text()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    try:
        yield proc, table, (sqs, queue_url)
    finally:
        stop_by_pid(proc.process)


def _feed(proc: Processor) -> list[str]:
    request = urllib.request.Request(f"http://127.0.0.1:{proc.port}/v1/changes?after=0",
                                     headers={"Authorization": f"Bearer {feed_key(proc.secret)}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return [c.address for c in decode_page(response.read())[1]]


def test_a_dsn_and_an_ses_bounce_land_in_the_table_and_its_feed(dynamo_processor, moto_url: str) -> None:
    """GIVEN the processor on `store: dynamodb` WHEN a DSN arrives over LMTP and an SES Bounce event (SNS
    envelope, as SNS delivers to SQS) waits in the route's queue THEN both recipients are in the table (no
    SQLite file is written), the event is deleted from the queue once applied, and the feed serves both."""
    proc, table, (sqs, queue_url) = dynamo_processor
    rp = samples.return_path(proc.secret, "gone@gmail.com")
    code, text = proc.deliver(samples.postfix_dsn(to=rp, recipient="gone@gmail.com"), rp)
    assert code == 250, text
    event = samples.ses_bounce("left@yahoo.com", tags={"mailinfra-stream": ["news"]})
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps({"Type": "Notification",
                                                                  "Message": json.dumps(event)}))
    store = DynamoStore(table, client=dynamodb_client(moto_url))
    deadline = time.monotonic() + 30
    while store.get("left@yahoo.com") is None:
        assert time.monotonic() < deadline, (proc.tmp / "proc.log").read_text()[-2000:]
        time.sleep(0.2)
    assert store.check("gone@gmail.com", StreamKind.TRANSACTIONAL, samples.NOW) is not None
    assert not (proc.tmp / "store.db").exists()
    deadline = time.monotonic() + 30
    while sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"][
            "ApproximateNumberOfMessagesNotVisible"] != "0":
        assert time.monotonic() < deadline, "the applied event was not deleted"
        time.sleep(0.2)
    assert sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"])[
        "Attributes"]["ApproximateNumberOfMessages"] == "0"
    assert sorted(_feed(proc)) == ["gone@gmail.com", "left@yahoo.com"]
