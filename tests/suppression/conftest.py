"""Stores under test: the SQLite file and a DynamoDB table on a moto server (own process, stopped by PID)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from mailinfra.suppression.dynamodb_store import DynamoStore
from mailinfra.suppression.sqlite_store import SqliteStore
from mailinfra.suppression.store import SuppressionStore
from tests.tooling import moto_server


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    with moto_server() as url:
        yield url


def dynamodb_client(url: str):
    return boto3.client("dynamodb", region_name="us-east-1", endpoint_url=url, aws_access_key_id="testing",
                        aws_secret_access_key="testing")


def create_table(url: str) -> str:
    """The table as s12b's component provisions it: pk (S) only, on-demand, TTL on expires_at."""
    client = dynamodb_client(url)
    name = f"suppression-{uuid.uuid4().hex[:8]}"
    client.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
    client.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True,
                                                                         "AttributeName": "expires_at"})
    return name


@pytest.fixture(params=["sqlite", "dynamodb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SuppressionStore]:
    if request.param == "sqlite":
        opened: SuppressionStore = SqliteStore(tmp_path / "s.db")
    else:
        url = request.getfixturevalue("moto_url")
        opened = DynamoStore(create_table(url), client=dynamodb_client(url))
    yield opened
    opened.close()
