"""`mailinfra suppress` and `mailinfra verp` as a user types them (subprocesses, the real console entry)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

from mailinfra.model.schema import StreamKind
from mailinfra.suppression import verp
from mailinfra.suppression.sqlite_store import SqliteStore

REPO = Path(__file__).resolve().parents[2]
SECRET = os.urandom(24).hex()


def cli(*argv: str, stdin: str = "", env: dict[str, str] | None = None) -> tuple[int, str, str]:
    proc = subprocess.run([sys.executable, "-m", "mailinfra.cli.main", *argv], capture_output=True, text=True,
                          cwd=REPO, check=False, timeout=120, input=stdin,
                          env={**os.environ, "USER": "alice", **(env or {})})
    return proc.returncode, proc.stdout, proc.stderr


def test_add_check_remove_with_audit(tmp_path: Path) -> None:
    """GIVEN an empty store WHEN alice adds, checks and removes an address THEN each step is audited as hers."""
    db = str(tmp_path / "s.db")
    code, out, err = cli("suppress", "add", "dev", "Bob@Example.NET", "--db", db, "--stream", "marketing",
                         "--reason", "asked by phone")
    assert (code, err) == (0, "") and out == "bob@example.net: suppressed for marketing\n"
    code, out, _ = cli("suppress", "check", "dev", "bob@example.net", "--db", db, "--scope", "transactional")
    assert code == 0 and out.startswith("bob@example.net: not suppressed")
    code, out, _ = cli("suppress", "check", "dev", "bob@example.net", "--db", db, "--format", "json")
    assert json.loads(out)["suppressed_for"] == ["marketing"]
    entry = SqliteStore(db).get("bob@example.net")
    assert entry is not None and entry.added_by == "cli:alice" and entry.scope == {StreamKind.MARKETING}
    assert cli("suppress", "remove", "dev", "bob@example.net", "--db", db, "--reason", "resubscribed")[0] == 0
    assert cli("suppress", "remove", "dev", "bob@example.net", "--db", db)[0] == 1
    code, out, _ = cli("suppress", "log", "dev", "bob@example.net", "--db", db)
    lines = out.splitlines()
    assert len(lines) == 2 and "cli:alice" in lines[0] and " add " in lines[0] and " remove " in lines[1]
    assert "asked by phone" in lines[0] and "resubscribed" in lines[1]


def test_import_export_round_trip(tmp_path: Path) -> None:
    db = str(tmp_path / "s.db")
    source = tmp_path / "crm.csv"
    source.write_text("address,scope,reason,source\nx@example.com,marketing|bulk,crm opt-out,unsubscribe\n"
                      "Y@example.com,,,\n")
    code, out, err = cli("suppress", "import", "dev", str(source), "--db", db)
    assert (code, err, out) == (0, "", f"{source}: 2 entries imported\n")
    code, out, _ = cli("suppress", "export", "dev", "-", "--db", db, "--format", "json")
    rows = json.loads(out)
    assert [(r["address"], r["scope"], r["source"], r["added_by"]) for r in rows] == [
        ("x@example.com", "bulk|marketing", "unsubscribe", "import:crm.csv"),
        ("y@example.com", "bulk|marketing|transactional", "manual", "import:crm.csv")]
    again = tmp_path / "again.json"
    assert cli("suppress", "export", "dev", str(again), "--db", db)[0] == 0
    other = str(tmp_path / "other.db")
    assert cli("suppress", "import", "dev", str(again), "--db", other)[0] == 0
    assert [e.address for e in SqliteStore(other).entries()] == ["x@example.com", "y@example.com"]
    code, out, _ = cli("suppress", "list", "dev", "--db", other)
    assert out.splitlines()[-1] == "2 suppressed"


def test_bad_import_is_one_line_per_row_and_imports_nothing(tmp_path: Path) -> None:
    db = str(tmp_path / "s.db")
    source = tmp_path / "bad.csv"
    source.write_text("address,scope\nok@example.com,marketing\nnot-an-address,\nz@example.com,weekly\n")
    code, _, err = cli("suppress", "import", "dev", str(source), "--db", db)
    lines = err.splitlines()
    assert code == 1 and "Traceback" not in err
    assert lines[0].startswith(f"mailinfra suppress: {source}: row 3: 'not-an-address' is not an email address")
    assert lines[1] == (f"{source}: row 4: scope: received 'weekly', expected stream kinds such as "
                        "marketing|bulk")
    assert list(SqliteStore(db).entries()) == []


def test_store_options_in_one_line(tmp_path: Path) -> None:
    code, _, err = cli("suppress", "list", "dev", "--db", str(tmp_path / "missing.db"))
    assert code == 2 and err.strip().endswith("expected an existing store file")
    code, _, err = cli("suppress", "add", "dev", "bob@example.net", "--db", str(tmp_path / "s.db"),
                       "--scope", "weekly")
    assert code == 2 and "--scope: received 'weekly', expected stream kinds" in err


def test_verp_prints_a_token_that_verifies_and_never_the_secret() -> None:
    code, out, err = cli("verp", "dev", "--recipient", "bob@example.net", "--stream", "marketing",
                         "--day", "2026-12-02", "--header", env={"MAILINFRA_VERP_SECRET": SECRET})
    assert (code, err) == (0, "") and SECRET not in out
    rp, header = out.splitlines()
    assert rp.endswith("-bob=example.net@bounce.news.example.com")
    token = verp.verify_return_path(rp, SECRET.encode(), ["marketing"], today=dt.date(2026, 12, 2))
    assert token is not None and token.recipient == "bob@example.net"
    assert header.startswith(f"{verp.HEADER}: v1.")


def test_verp_without_a_secret_or_with_a_bad_stream() -> None:
    code, out, err = cli("verp", "dev", "--recipient", "bob@example.net", "--stream", "marketing",
                         env={"MAILINFRA_VERP_SECRET": "short"})
    assert code == 2 and out == ""
    assert err == ("mailinfra verp: $MAILINFRA_VERP_SECRET: received a secret of 5 bytes, expected at least 16 "
                   "(the Pulumi secret mailinfra:verp_secret)\n")
    code, _, err = cli("verp", "dev", "--recipient", "bob@example.net", "--stream", "nope",
                       env={"MAILINFRA_VERP_SECRET": SECRET})
    assert code == 2 and "--stream: received 'nope', expected one of the stack's streams" in err
