"""Where the suppression store lives on a bounce host, and so in the lab (agreed with s12b)."""

from __future__ import annotations

from pathlib import Path

# The embedded store on each bounce host (bounces.hosts): the processor writes it, the CLI and the
# enforcement hosts' delta feed read it. /var/lib: state that survives a reboot (FHS 3.0 §5.8).
HOST_DB_PATH = "/var/lib/mailinfra/suppression/suppression.db"
# The enforcement host's local replica (lookup.LookupTable), kept by s12b's lookup service.
HOST_REPLICA_PATH = "/var/lib/mailinfra/suppression/replica.db"


def lab_db_path(runtime_dir: Path) -> Path:
    """The store of a running lab: the lab's hosts share one root under the lab's runtime dir."""
    return runtime_dir / "root" / HOST_DB_PATH.lstrip("/")
