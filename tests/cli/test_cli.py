"""The command line as a user meets it: exit codes, one-line errors, the files a preview writes."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest

from mailinfra.cli.main import main
from mailinfra.model.load import STACKS_DIR

REPO = Path(__file__).resolve().parents[2]
AS_OF = "2026-11-29"


def run_cli(*argv: str) -> tuple[int, str, str]:
    """Run the real console script in a subprocess (what a user types), from the repo root."""
    proc = subprocess.run([sys.executable, "-m", "mailinfra.cli.main", *argv], capture_output=True, text=True,
                          cwd=REPO, check=False, timeout=120)
    return proc.returncode, proc.stdout, proc.stderr


def test_validate_dev_exits_zero() -> None:
    """A valid reference stack validates with exit 0 and a one-line summary."""
    code, out, err = run_cli("validate", "dev")
    assert (code, err) == (0, "")
    assert out.startswith("stacks/Pulumi.dev.yaml: valid (3 streams")


def test_validate_bad_file_one_line_per_problem(tmp_path: Path) -> None:
    """Each problem is its own line naming file:line and key; exit 1; no traceback."""
    text = (STACKS_DIR / "Pulumi.dev.yaml").read_text()
    text = text.replace("pool: tx\n", "pool: tx-missing\n").replace("instance_type: t3.large", "instance_type: t9.huge")
    bad = tmp_path / "Pulumi.bad.yaml"
    bad.write_text(text)
    code, out, err = run_cli("validate", str(bad))
    lines = err.splitlines()
    assert code == 1 and out == ""
    assert len(lines) == 2, err
    assert all(line.startswith(f"{bad}:") for line in lines)
    assert any("mailinfra:streams.transactional.pool: received 'tx-missing', expected a pool under pools" in line
               for line in lines)
    assert any("mailinfra:hosts.mta1.instance_type: received 't9.huge'" in line for line in lines)
    assert "Traceback" not in err


@pytest.mark.parametrize(("argv", "needle"), [
    (["validate", "nosuchstack"], "STACK: received 'nosuchstack', expected a stack file"),
    (["validate", "missing/Pulumi.x.yaml"], "missing/Pulumi.x.yaml: no such stack file"),
    (["preview", "dev", "--as-of", "2026-02-30"], "argument --as-of: received '2026-02-30', expected a date"),
    (["preview", "dev", "--format", "xml"], "argument --format: invalid choice: 'xml'"),
])
def test_usage_errors_exit_two_with_one_line(argv: list[str], needle: str) -> None:
    """Wrong arguments: exit 2 and a single line that names the argument."""
    code, _out, err = run_cli(*argv)
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert needle in err


def test_preview_writes_plan_zones_and_review(tmp_path: Path) -> None:
    """preview writes plan.json, one zone file per zone and review.md, and lists them in plan.json."""
    out = tmp_path / "out"
    assert main(["preview", "dev", "--out", str(out), "--as-of", AS_OF, "--no-resources"]) == 0
    plan = json.loads((out / "plan.json").read_text())
    zones = {z["name"] for z in plan["zones"]}
    assert {p.name for p in (out / "dns").iterdir()} == {f"{z}.zone" for z in zones}
    assert (out / "review.md").read_text().startswith("# mailinfra plan: `dev`")
    listed = {f["path"] for f in plan["files"]}
    on_disk = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    assert listed == on_disk
    assert all(r["purpose"] and r["rule"] for r in plan["records"])


def test_preview_refuses_to_replace_an_unrelated_directory(tmp_path: Path) -> None:
    """--out pointing at a directory of other files is refused, and nothing in it is touched."""
    keep = tmp_path / "notes.txt"
    keep.write_text("mine")
    code, _, err = run_cli("preview", "dev", "--out", str(tmp_path), "--no-resources")
    assert code == 2
    assert "--out: received" in err and keep.read_text() == "mine"


def test_preview_json_format_prints_the_plan(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """--format json prints exactly plan.json."""
    out = tmp_path / "o"
    main(["preview", "dev", "--out", str(out), "--format", "json", "--as-of", AS_OF, "--no-resources"])
    assert capsys.readouterr().out == (out / "plan.json").read_text()


def test_preview_as_of_sets_reproducible_zone_serial(tmp_path: Path) -> None:
    """Two previews with the same --as-of are byte-identical (reviewable diffs)."""
    for name in ("a", "b"):
        main(["preview", "dev", "--out", str(tmp_path / name), "--as-of", AS_OF, "--no-resources"])
    for zone in (tmp_path / "a" / "dns").iterdir():
        assert zone.read_text() == (tmp_path / "b" / "dns" / zone.name).read_text()
        assert f"( {dt.date.fromisoformat(AS_OF).strftime('%Y%m%d')}00 " in zone.read_text()


def test_no_private_key_material_under_preview(tmp_path: Path) -> None:
    """A stack with a real (keygen) DKIM key: the public half is published, no private key anywhere."""
    keys = tmp_path / "keys"
    code, out, _ = run_cli("dkim", "keygen", "--domain", "example.com", "--selector", "s2027a", "--out-dir", str(keys))
    assert code == 0
    pem = (keys / "example.com" / "s2027a.pem").read_text()
    assert (keys / "example.com" / "s2027a.pem").stat().st_mode & 0o777 == 0o600
    public = next(line.split(": ", 1)[1] for line in out.splitlines() if "public_key:" in line)
    text = (STACKS_DIR / "Pulumi.dev.yaml").read_text().replace(
        "          s2026a:\n            state: active\n            algorithm: rsa-2048\n",
        f"          s2026a:\n            state: active\n            algorithm: rsa-2048\n"
        f"            public_key: {public}\n")
    stack = tmp_path / "Pulumi.keyed.yaml"
    stack.write_text(text)
    out_dir = tmp_path / "preview"
    assert main(["preview", str(stack), "--out", str(out_dir), "--no-resources"]) == 0
    body = pem.split("-----")[2].replace("\n", "")
    for path in out_dir.rglob("*"):
        if path.is_file():
            content = path.read_text()
            assert "PRIVATE KEY" not in content, path
            assert body[:64] not in content.replace("\n", ""), path
    assert public in (out_dir / "dns" / "example.com.zone").read_text().replace('" "', "")


def test_keygen_never_overwrites_a_key(tmp_path: Path) -> None:
    """Re-keying a selector silently would break every signature in flight: refused."""
    args = ("dkim", "keygen", "--domain", "example.com", "--selector", "s1", "--algorithm", "ed25519",
            "--out-dir", str(tmp_path))
    assert run_cli(*args)[0] == 0
    code, _, err = run_cli(*args)
    assert code == 2 and "already exists" in err


def test_preview_lists_pulumi_resources_with_placeholders_marked(tmp_path: Path) -> None:
    """plan.json carries the mock-runtime resources; new EIPs and records holding stand-ins are marked."""
    out = tmp_path / "p"
    assert main(["preview", "dev", "--out", str(out), "--as-of", AS_OF]) == 0
    plan = json.loads((out / "plan.json").read_text())
    resources = plan["resources"]
    eips = [r for r in resources if r["type"] == "aws:ec2/eip:Eip"]
    assert len(eips) == len(plan["ips"])
    assert all(r["protect"] and r["placeholder"] for r in eips)
    new_addresses = {ip["address"] for ip in plan["ips"] if ip["placeholder"]}
    a_records = [r for r in resources if r["type"] == "aws:route53/record:Record" and r["inputs"].get("type") == "A"]
    for record in a_records:
        holds_stand_in = any(a in json.dumps(record["inputs"]) for a in new_addresses)
        assert record["placeholder"] == holds_stand_in
    review = (out / "review.md").read_text()
    assert "## Pulumi resources" in review and "`aws:ec2/eip:Eip` | ip-tx1 ⚠ placeholder" in review
