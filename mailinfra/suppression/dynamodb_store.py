"""The suppression store on DynamoDB (bounces.suppression.store: dynamodb), for fleets past one bounce host.

The table (provisioned by the components, s12b): partition key `pk` (S) and nothing else, on-demand, TTL on
`expires_at` (epoch seconds), point-in-time recovery. One table holds every kind of item, told apart by the
key's prefix: `<address>` (an entry: the item has `kinds`, or `removed` for a tombstone),
`soft#<address>`, `applied#<key>`, `pool#<pool>#<class>#<day>`, `audit#<seq>`, `meta#seq`.

DynamoDB's TTL deletes expired items "typically within a few days" and until then they are still read
(AWS DynamoDB Developer Guide, "Using time to live (TTL)"): so `check` compares `expires_at` itself, and TTL
only keeps the table from growing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Iterator
from typing import Any

from mailinfra.model.kinds import StreamKind
from mailinfra.suppression.codec import bits_to_kinds, from_epoch, kinds_to_bits, to_epoch
from mailinfra.suppression.model import Action, BounceClass, Decision, Entry, Source
from mailinfra.suppression.store import Applied, AuditEvent, Change

_APPLIED_DAYS = 30  # how long a report key is remembered: past any SQS retention (14 days max)
_POOL_DAYS = 90
_TOMBSTONE_DAYS = 7  # a removed address's tombstone: enforcement replicas sync within seconds


class DynamoStore:
    """SuppressionStore on one DynamoDB table (boto3)."""

    def __init__(self, table_name: str, *, client: Any = None, region: str | None = None,
                 endpoint_url: str | None = None) -> None:
        import boto3

        self.table = table_name
        self._ddb = client or boto3.client("dynamodb", region_name=region or os.environ.get("AWS_REGION"),
                                           endpoint_url=endpoint_url)

    # ------------------------------------------------------------ reads

    def get(self, address: str) -> Entry | None:
        item = self._ddb.get_item(TableName=self.table, Key={"pk": {"S": address}}, ConsistentRead=True).get("Item")
        return _entry(item) if item and "removed" not in item else None

    def check(self, address: str, kind: StreamKind, now: dt.datetime) -> Entry | None:
        entry = self.get(address)
        return entry if entry is not None and entry.covers(kind, now) else None

    def entries(self) -> Iterator[Entry]:
        items = [i for i in self._scan() if "kinds" in i and "removed" not in i]
        for item in sorted(items, key=lambda i: i["pk"]["S"]):
            yield _entry(item)

    def soft_count(self, address: str, since: dt.datetime) -> int:
        item = self._ddb.get_item(TableName=self.table, Key={"pk": {"S": f"soft#{address}"}},
                                  ConsistentRead=True).get("Item")
        hits = [float(n) for n in item.get("hits", {}).get("NS", [])] if item else []
        return sum(1 for at in hits if at >= to_epoch(since))

    def changes_since(self, seq: int, limit: int = 10000) -> list[Change]:
        """A scan filtered on the item's `seq`: O(table) per poll. Fine for the CLI and a few hosts; a fleet
        at millions of entries should read the table's DynamoDB Stream instead (not built here)."""
        items = [i for i in self._scan(filter_seq=seq) if "kinds" in i or "removed" in i]
        items.sort(key=lambda i: int(i["seq"]["N"]))
        return [Change(seq=int(i["seq"]["N"]), address=i["pk"]["S"],
                       entry=None if "removed" in i else _entry(i)) for i in items[:limit]]

    def pool_counts(self, since: dt.datetime) -> dict[tuple[str, str], int]:
        counts: dict[tuple[str, str], int] = {}
        for item in self._scan(prefix="pool#"):
            _, pool, cls, day = item["pk"]["S"].split("#", 3)
            if day >= since.date().isoformat():
                counts[(pool, cls)] = counts.get((pool, cls), 0) + int(item["n"]["N"])
        return counts

    def audit_log(self, address: str | None = None) -> list[AuditEvent]:
        events = []
        for item in self._scan(prefix="audit#"):
            if address is None or item["address"]["S"] == address:
                events.append((item["pk"]["S"], AuditEvent(from_epoch(float(item["at"]["N"])), item["actor"]["S"],
                                                         item["action"]["S"], item["address"]["S"],
                                                         item["detail"]["S"])))
        return [event for _, event in sorted(events, key=lambda pair: pair[0])]

    # ------------------------------------------------------------ writes

    def put(self, entry: Entry, *, actor: str, detail: str = "") -> None:
        self._ddb.transact_write_items(TransactItems=self._put_items(entry, actor, detail, entry.last_seen))

    def remove(self, address: str, *, actor: str, detail: str = "") -> bool:
        if self.get(address) is None:
            return False
        now = dt.datetime.now(dt.UTC)
        seq = self._next_seq()
        tombstone = {"pk": {"S": address}, "removed": {"BOOL": True}, "seq": {"N": str(seq)},
                     "expires_at": {"N": str(int(to_epoch(now)) + _TOMBSTONE_DAYS * 86400)}}
        self._ddb.transact_write_items(TransactItems=[
            {"Put": {"TableName": self.table, "Item": tombstone}},
            {"Delete": {"TableName": self.table, "Key": {"pk": {"S": f"soft#{address}"}}}},
            self._audit_item(actor, "remove", address, detail, now=now, seq=seq),
        ])
        return True

    def apply(self, key: str, decision: Decision, *, now: dt.datetime, actor: str,
              window: dt.timedelta) -> Applied:
        at = to_epoch(now)
        if decision.action is Action.IGNORE:
            return Applied(decision, duplicate=False)  # nothing to apply, nothing to count twice
        marker = {"Put": {
            "TableName": self.table,
            "Item": {"pk": {"S": f"applied#{key}"}, "at": {"N": str(at)},
                     "expires_at": {"N": str(int(at) + _APPLIED_DAYS * 86400)}},
            # The report key and its effect in one transaction: a redelivered report fails the condition and
            # changes nothing (TransactionCanceledException, ConditionalCheckFailed).
            "ConditionExpression": "attribute_not_exists(pk)",
        }}
        items: list[dict[str, Any]] = [marker]
        soft = 0
        address = decision.address or (decision.entry.address if decision.entry else "")
        counts_soft = decision.action is Action.COUNT_SOFT or (
            decision.action is Action.SUPPRESS and decision.entry is not None and decision.entry.expires is not None)
        if counts_soft and address:
            hits = [t for t in self._soft_hits(address) if t >= at - window.total_seconds()] + [at]
            soft = len(hits)
            items.append({"Put": {"TableName": self.table, "Item": {
                "pk": {"S": f"soft#{address}"}, "hits": {"NS": [repr(t) for t in sorted(set(hits))]},
                "expires_at": {"N": str(int(at + window.total_seconds()))}}}})
        if decision.action is Action.SUPPRESS and decision.entry is not None:
            items += self._put_items(decision.entry, actor, decision.why, now)
        if decision.action is Action.COUNT_POOL:
            pk = f"pool#{decision.pool or '-'}#{decision.cls or BounceClass.OTHER}#{now.date().isoformat()}"
            items.append({"Update": {
                "TableName": self.table, "Key": {"pk": {"S": pk}},
                "UpdateExpression": "ADD n :one SET expires_at = :exp",
                "ExpressionAttributeValues": {":one": {"N": "1"},
                                              ":exp": {"N": str(int(at) + _POOL_DAYS * 86400)}}}})
        try:
            self._ddb.transact_write_items(TransactItems=items)
        except self._ddb.exceptions.TransactionCanceledException as exc:
            reasons = exc.response.get("CancellationReasons", [])
            if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
                return Applied(decision, duplicate=True)
            raise
        return Applied(decision, duplicate=False, soft_count=soft)

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """No group commit on DynamoDB: each apply is its own TransactWriteItems (atomic per report)."""
        yield

    def close(self) -> None:
        return None

    # ------------------------------------------------------------ internals

    def _put_items(self, entry: Entry, actor: str, detail: str, now: dt.datetime) -> list[dict[str, Any]]:
        old = self.get(entry.address)
        merged = old.merged(entry) if old is not None else entry
        seq = self._next_seq()
        item: dict[str, Any] = {
            "pk": {"S": merged.address}, "kinds": {"N": str(kinds_to_bits(merged.scope))},
            "reason": {"S": merged.reason}, "source": {"S": str(merged.source)},
            "first_seen": {"N": repr(to_epoch(merged.first_seen))},
            "last_seen": {"N": repr(to_epoch(merged.last_seen))},
            "added_by": {"S": merged.added_by}, "seq": {"N": str(seq)},
        }
        if merged.cls is not None:
            item["cls"] = {"S": str(merged.cls)}
        if merged.stream:
            item["stream"] = {"S": merged.stream}
        if merged.expires is not None:
            item["expires_at"] = {"N": str(int(to_epoch(merged.expires)))}
        scope = "|".join(sorted(merged.scope))
        text = f"{merged.source} [{scope}] {merged.reason}" + (f"; {detail}" if detail else "")
        return [{"Put": {"TableName": self.table, "Item": item}},
                self._audit_item(actor, "update" if old else "add", merged.address, text, now=now, seq=seq)]

    def _audit_item(self, actor: str, action: str, address: str, detail: str, *, now: dt.datetime,
                    seq: int) -> dict[str, Any]:
        # Ordered by the change's sequence number (one counter for the feed and the log).
        pk = f"audit#{seq:015d}"
        return {"Put": {"TableName": self.table, "Item": {
            "pk": {"S": pk}, "at": {"N": repr(to_epoch(now))}, "actor": {"S": actor}, "action": {"S": action},
            "address": {"S": address}, "detail": {"S": detail or "-"}}}}

    def _next_seq(self) -> int:
        answer = self._ddb.update_item(TableName=self.table, Key={"pk": {"S": "meta#seq"}},
                                       UpdateExpression="ADD n :one", ExpressionAttributeValues={":one": {"N": "1"}},
                                       ReturnValues="UPDATED_NEW")
        return int(answer["Attributes"]["n"]["N"])

    def _soft_hits(self, address: str) -> list[float]:
        item = self._ddb.get_item(TableName=self.table, Key={"pk": {"S": f"soft#{address}"}},
                                  ConsistentRead=True).get("Item")
        return [float(n) for n in item.get("hits", {}).get("NS", [])] if item else []

    def _scan(self, *, prefix: str | None = None, filter_seq: int | None = None) -> Iterator[dict[str, Any]]:
        kwargs: dict[str, Any] = {"TableName": self.table, "ConsistentRead": True}
        if prefix is not None:
            kwargs["FilterExpression"] = "begins_with(pk, :p)"
            kwargs["ExpressionAttributeValues"] = {":p": {"S": prefix}}
        elif filter_seq is not None:
            kwargs["FilterExpression"] = "seq > :s"
            kwargs["ExpressionAttributeValues"] = {":s": {"N": str(filter_seq)}}
        while True:
            page = self._ddb.scan(**kwargs)
            yield from page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _entry(item: dict[str, Any]) -> Entry:
    expires = item.get("expires_at")
    return Entry(
        address=item["pk"]["S"], scope=bits_to_kinds(int(item["kinds"]["N"])), reason=item["reason"]["S"],
        cls=BounceClass(item["cls"]["S"]) if "cls" in item else None, source=Source(item["source"]["S"]),
        first_seen=from_epoch(float(item["first_seen"]["N"])), last_seen=from_epoch(float(item["last_seen"]["N"])),
        expires=from_epoch(float(expires["N"])) if expires else None, added_by=item["added_by"]["S"],
        stream=item["stream"]["S"] if "stream" in item else None,
    )
