"""Create and remove the lab's network namespace (`ip netns`) with its lab addresses.

`ip netns exec NAME cmd` also bind-mounts /etc/netns/NAME/resolv.conf over /etc/resolv.conf for
that process only (ip-netns(8)), which is how Postfix, dnspython and pyspf inside the lab resolve
through the lab's Knot instead of the machine's resolver.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from mailinfra.errors import MailinfraError

NETNS_ETC = Path("/etc/netns")
LAB_INTERFACE = "lab0"


class LabError(MailinfraError):
    """The lab could not be built or torn down (a tool failed, a process did not start)."""


def run_ip(args: Sequence[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise LabError(f"ip {' '.join(args)}: exit {result.returncode}: {result.stderr.strip()}")
    return result


def in_namespace(namespace: str, argv: Sequence[str]) -> list[str]:
    """argv prefixed so it runs inside the namespace (and sees its resolv.conf)."""
    return ["ip", "netns", "exec", namespace, *argv]


def namespace_exists(namespace: str) -> bool:
    listing = run_ip(["netns", "list"], check=False).stdout
    return any(line.split()[0] == namespace for line in listing.splitlines() if line.strip())


def namespace_pids(namespace: str) -> list[int]:
    """PIDs of every process inside the namespace (all of them are the lab's own)."""
    if not namespace_exists(namespace):
        return []
    out = run_ip(["netns", "pids", namespace], check=False).stdout
    return [int(token) for token in out.split() if token.isdigit()]


def create_namespace(namespace: str, addresses: Sequence[str], dns_address: str) -> str:
    """Create the namespace with loopback up and every address as a /32; return the interface used.

    A dummy interface is the natural home for the addresses; kernels without the dummy module
    (some VMs) fall back to loopback, which routes the same way inside a namespace.
    """
    run_ip(["netns", "add", namespace])
    run_ip(["-n", namespace, "link", "set", "lo", "up"])
    interface = "lo"
    if run_ip(["-n", namespace, "link", "add", LAB_INTERFACE, "type", "dummy"], check=False).returncode == 0:
        run_ip(["-n", namespace, "link", "set", LAB_INTERFACE, "up"])
        interface = LAB_INTERFACE
    for address in addresses:
        run_ip(["-n", namespace, "addr", "add", f"{address}/32", "dev", interface])
    write_resolv_conf(namespace, dns_address)
    return interface


def write_resolv_conf(namespace: str, dns_address: str) -> Path:
    directory = NETNS_ETC / namespace
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "resolv.conf"
    # One server, short timeout: a lab lookup that fails should fail fast, not wait 5 s x 2 tries.
    path.write_text(f"nameserver {dns_address}\noptions timeout:1 attempts:2\n")
    return path


def destroy_namespace(namespace: str) -> None:
    """Remove the namespace and its /etc/netns files; a missing namespace is not an error."""
    if namespace_exists(namespace):
        run_ip(["netns", "del", namespace])
    shutil.rmtree(NETNS_ETC / namespace, ignore_errors=True)
