"""`mailinfra warmup` and `mailinfra render`: output, files, and one-line usage errors."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from mailinfra.cli.main import main


def test_warmup_prints_every_ip(capsys: pytest.CaptureFixture[str]) -> None:
    """The table has one row per IP of the stack with its day and status."""
    assert main(["warmup", "dev", "--as-of", "2026-11-29"]) == 0
    out = capsys.readouterr().out
    assert "as of 2026-11-29" in out
    for ip in ("tx1", "ma3", "mw2", "mc1", "bk2"):
        assert f"\n{ip} " in out


def test_warmup_plot_writes_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--plot writes a PNG image."""
    target = tmp_path / "ramp.png"
    assert main(["warmup", "dev", "--as-of", "2026-11-29", "--plot", str(target)]) == 0
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert str(target) in capsys.readouterr().out


@pytest.mark.parametrize(("argv", "expected"), [
    (["warmup", "dev", "--as-of", "2026-13-01"], "expected a date YYYY-MM-DD"),
    (["warmup", "dev", "--plot", "ramp.svg"], "expected a file name ending in .png"),
    (["warmup", "dev", "--plot", "/nonexistent/dir/ramp.png"], "expected a file in an existing directory"),
    (["render", "dev", "nosuch", "--out", "x"], "expected a host of stack dev: mta1"),
])
def test_usage_errors_are_one_line(argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Bad dates, plot paths and hosts give exit 2 and one line naming the argument."""
    with pytest.raises(SystemExit) as raised:
        code = main(argv)
        raise SystemExit(code)
    assert raised.value.code == 2
    err = capsys.readouterr().err
    assert expected in err
    assert len(err.strip().splitlines()) == 1


def test_render_writes_host_files_with_modes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """render writes the host's files under DIR/etc with their modes; SASL files are root-only."""
    assert main(["render", "dev", "mta1", "--out", str(tmp_path), "--as-of", "2026-11-29"]) == 0
    assert (tmp_path / "etc/postfix/main.cf").is_file()
    assert (tmp_path / "etc/opendkim/SigningTable").is_file()
    sasl = tmp_path / "etc/postfix-tx/sasl_passwd"
    assert stat.S_IMODE(sasl.stat().st_mode) == 0o600
    assert "mailinfra:relay_password" in capsys.readouterr().out
