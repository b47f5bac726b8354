"""The suppression core stays pure (house rule): no Pulumi, no network, no store I/O in the deciding modules."""

from __future__ import annotations

from tests.house.test_imports import IMPURE, PACKAGE, _imports

PURE = ("address", "classify", "codec", "model", "pipeline", "policy", "reports", "store", "verp", "paths")
IO_MODULES = ("sqlite3", "mailinfra.suppression.sqlite_store", "mailinfra.suppression.dynamodb_store",
              "mailinfra.suppression.lookup", "subprocess", "http", "urllib")


def test_core_modules_import_no_io() -> None:
    banned = (*IMPURE, *IO_MODULES)
    offenders = {name: sorted(m for m in _imports(PACKAGE / "suppression" / f"{name}.py") if m.startswith(banned))
                 for name in PURE}
    assert {k: v for k, v in offenders.items() if v} == {}
