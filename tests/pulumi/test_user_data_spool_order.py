"""The first boot's order around the spool volume, in the rendered user data, checked against cloud-init.

A replacement instance mounts the spool volume its predecessor left (components/mta_host.py), whose files
keep their numeric owners: the service accounts must get the same ids on every instance, so they exist at
fixed ids before the packages' postinsts would create them at whatever id is free. And no package may
start the MTA on the root disk's spool before the volume is bound over it.

Stage order is cloud-init's, read from the installed /etc/cloud/cloud.cfg (Debian package `cloud-init`):
`bootcmd` and `write_files` in cloud_init_modules, `runcmd` written in cloud_config_modules and run by
`scripts_user`, after `package_update_upgrade_install`, in cloud_final_modules.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.mta_host import MTA_UNITS, SERVICE_ACCOUNTS
from tests.pulumi.conftest import user_data_of
from tests.tooling import require_tool

CLOUD_CFG = Path("/etc/cloud/cloud.cfg")


@pytest.fixture(scope="module")
def user_data(mock_runs: Any) -> dict[str, str]:
    """host -> its rendered user data, for a Postfix host (dev) and a PowerMTA host (prod)."""
    return {"mta1": user_data_of(mock_runs("dev"), "mta1"), "pmta1": user_data_of(mock_runs("prod"), "pmta1")}


def _modules(stage: str) -> list[str]:
    config = yaml.safe_load(CLOUD_CFG.read_text())
    return [str(m if isinstance(m, str) else m[0]).replace("-", "_") for m in config[stage]]


@pytest.mark.parametrize("host", ["mta1", "pmta1"])
def test_user_data_passes_cloud_inits_own_schema_check(host: str, user_data: dict[str, str],
                                                       tmp_path: Path) -> None:
    """`cloud-init schema --config-file` validates the cloud-config against the installed version's schema
    (a misspelt key or a wrong type would be ignored with a warning at boot)."""
    cloud_init = require_tool("cloud-init")
    path = tmp_path / "user-data.yaml"
    path.write_text(user_data[host])
    done = subprocess.run([cloud_init, "schema", "--config-file", str(path)], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_bootcmd_and_write_files_run_before_the_packages_install() -> None:
    """What the ordering below relies on, as the installed cloud-init runs it."""
    require_tool("cloud-init")
    init, final = _modules("cloud_init_modules"), _modules("cloud_final_modules")
    assert "bootcmd" in init and "write_files" in init
    assert final.index("package_update_upgrade_install") < final.index("scripts_user")  # runcmd runs here


def test_postfix_accounts_exist_at_fixed_ids_before_the_packages(user_data: dict[str, str]) -> None:
    """postfix, postdrop (the maildrop queue's group) and opendkim at fixed system ids, created in bootcmd
    only when absent; Debian's postinsts then find them (adduser --system keeps an existing system user).
    Before, the packages picked the first free ids, which differ between instances."""
    config = yaml.safe_load(user_data["mta1"])
    commands = "\n".join(config["bootcmd"])
    for account in SERVICE_ACCOUNTS["postfix"]:
        assert 100 <= account.uid <= 999, account  # adduser.conf FIRST_SYSTEM_UID..LAST_SYSTEM_UID
        assert f"useradd --system --uid {account.uid} --gid {account.uid}" in commands
        assert f"getent passwd {account.name} >/dev/null ||" in commands
    assert "groupadd --system --gid 511 postdrop" in commands


def test_no_package_starts_the_mta_before_the_spool_is_bound(user_data: dict[str, str]) -> None:
    """The MTA's drop-in (Requires= the spool unit) and policy-rc.d (exit 101: "action forbidden" for
    invoke-rc.d / deb-systemd-invoke) are written in the init stage, before the packages install; runcmd
    removes policy-rc.d before apply-config mounts the spool and starts the services. Before, the drop-in
    was installed by runcmd, after the package's postinst had started Postfix on the root disk."""
    for host, mta in (("mta1", "postfix"), ("pmta1", "powermta")):
        config = yaml.safe_load(user_data[host])
        files = {f["path"]: f for f in config["write_files"]}
        drop_in = files[f"/etc/systemd/system/{MTA_UNITS[mta]}.d/mailinfra-spool.conf"]["content"]
        assert "Requires=mailinfra-spool.service" in drop_in
        policy = files["/usr/sbin/policy-rc.d"]
        assert policy["content"].rstrip().endswith("exit 101") and policy["permissions"] == "0755"
        runcmd = [str(c) for c in config["runcmd"]]
        removed = runcmd.index("rm -f /usr/sbin/policy-rc.d")
        applied = next(i for i, c in enumerate(runcmd) if "mailinfra-apply-config" in c and "--services start" in c)
        installs = [i for i, c in enumerate(runcmd) if "apt-get install" in c]
        assert all(i < removed for i in installs) and removed < applied, runcmd
