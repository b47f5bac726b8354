"""A PowerMTA host's boot without the vendor package stops at the install step with one line.

PowerMTA is licensed and not in Debian: its .deb must be on the image. The old step
(`test -f PKG && apt-get install ...`) exited quietly and cloud-init ran the rest of the boot with no MTA.
cloud-init writes runcmd into one shell script and runs it (cloudinit/config/cc_runcmd.py); this runs the
rendered runcmd the same way, with stand-ins for the commands after the install step, and no package.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import yaml

from components.mta_host import POWERMTA_PACKAGE
from tests.pulumi.conftest import preview_config, run_mock, user_data_of


def test_no_package_file_stops_the_boot_in_one_line(tmp_path: Path) -> None:
    assert not Path(POWERMTA_PACKAGE).exists()  # this machine has no PowerMTA package
    config, secret_keys = preview_config("prod")
    run = run_mock("prod", tmp_path, config, secret_keys)
    assert "error" not in run, run.get("error")
    runcmd = yaml.safe_load(user_data_of(run, "pmta1"))["runcmd"]
    script = "\n".join(c if isinstance(c, str) else " ".join(c) for c in runcmd) + "\n"
    stubs = tmp_path / "bin"
    stubs.mkdir()
    ran = tmp_path / "ran.log"
    for tool in ("apt-get", "install", "systemctl", "usermod"):
        stub = stubs / tool
        stub.write_text(f"#!/bin/sh\necho {tool} \"$@\" >> {ran}\n")
        stub.chmod(0o755)
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=False, timeout=30,
                          env={**os.environ, "PATH": f"{stubs}:/usr/bin:/bin"})
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and POWERMTA_PACKAGE in lines[0] and "not installed" in lines[0], done.stderr
    assert not ran.exists(), ran.read_text()  # nothing after the install step ran
