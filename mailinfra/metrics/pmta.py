"""PowerMTA accounting records as delivery metrics: `d` (delivered) and `b` (bounced) records of the
acct-file (/var/log/pmta/acct.csv, `records d,b`: templates/powermta/config.j2).

Columns by the file's header line (mailinfra.bounceproc.pmta.read_records, the same reader the bounce
processor uses): `vmta` names the VMTA (mailinfra.mta.powermta.vmta_name: one per IP, so it names the IP,
pool and stream), `dlvSourceIp` the address it left from, `rcpt` the recipient (its domain: the provider),
`bounceCat` PowerMTA's bounce category. PowerMTA cannot run here (licensed software): tested on records of
the documented shape (PowerMTA User's Guide, "Accounting Files"; treat as unverified, docs notes/mta.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from mailinfra.metrics.exporter import DEFAULT_PROVIDER, DeliveryMetrics
from mailinfra.suppression.classify import classify

ACCOUNTING_FILE = "/var/log/pmta/acct.csv"
# PowerMTA's bounceCat -> the suppression classifier's class (its classes are named after bounceCat and
# KumoMTA's classifier: mailinfra.suppression.model.BounceClass). A category not listed goes through the
# classifier itself (dsnStatus and dsnDiag), so one class vocabulary labels both MTAs.
BOUNCE_CATEGORIES = {
    "bad-mailbox": "bad-mailbox", "bad-domain": "bad-domain", "inactive-mailbox": "inactive-mailbox",
    "quota-issues": "quota", "policy-related": "policy", "spam-related": "spam-related",
    "no-answer-from-host": "no-answer", "routing-errors": "routing", "content-related": "message",
}


def count_records(metrics: DeliveryMetrics, records: Iterable[Mapping[str, str]],
                  vmtas: Mapping[str, Mapping[str, str]], providers: Mapping[str, str]) -> int:
    """Count `d` and `b` records of our VMTAs; returns how many were counted."""
    counted = 0
    for record in records:
        kind = record.get("type")
        labels = vmtas.get(record.get("vmta", ""))
        if kind not in {"d", "b"} or labels is None:
            continue
        provider = providers.get(record.get("rcpt", "").rpartition("@")[2].lower(), DEFAULT_PROVIDER)
        if kind == "d":
            status, cls = "delivered", ""
        else:
            status = "bounced"
            cls = BOUNCE_CATEGORIES.get(record.get("bounceCat", "")) or classify(
                record.get("dsnStatus", "").split(" ")[0], record.get("dsnDiag", "")).cls.value
        metrics.deliveries.labels(labels["stream"], labels["pool"], labels["ip"], labels["domain"], provider,
                                  status, cls).inc()
        counted += 1
    return counted
