"""The exporter's configuration as rendered for the host (mailinfra.metrics.labels.exporter_config)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mailinfra.metrics.exporter import LabelMap


class ConfigError(ValueError):
    """The rendered configuration is unreadable: one line naming the file and key."""


@dataclass(frozen=True)
class ExporterConfig:
    host: str
    listen: str
    port: int
    logs: tuple[tuple[str, Path], ...]  # (instance, log file)
    queues: tuple[tuple[str, str], ...]  # (instance, config dir)
    labels: LabelMap
    buckets: tuple[float, ...]
    # PowerMTA: its accounting file and VMTA -> labels (mailinfra.metrics.pmta); None on Postfix hosts.
    accounting: tuple[Path, dict[str, dict[str, str]]] | None = None


def load_config(path: Path, root: Path | None = None, listen: str | None = None) -> ExporterConfig:
    """`root` prefixes the log and config paths (the lab's host root); `listen` overrides the address."""
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ConfigError(f"{path}: received unreadable JSON ({error}), expected the rendered exporter config") \
            from None

    def prefixed(value: str) -> str:
        return f"{root}{value}" if root is not None else value

    try:
        transports = {str(k): {str(a): str(b) for a, b in v.items()} for k, v in data["transports"].items()}
        pools = {str(k): str(v) for k, v in data["instance_pools"].items()}
        streams = {t["pool"]: (t["stream"], t["domain"]) for t in transports.values()}
        return ExporterConfig(
            host=str(data["host"]), listen=listen or str(data["listen_private"]), port=int(data["port"]),
            logs=tuple((str(e["instance"]), Path(prefixed(str(e["path"])))) for e in data["logs"]),
            queues=tuple((str(e["instance"]), prefixed(str(e["config_dir"]))) for e in data["queues"]),
            labels=LabelMap(transports=transports, providers=dict(data["providers"]), instance_pools=pools,
                            pool_streams=streams),
            buckets=tuple(float(b) for b in data["delay_buckets_seconds"]),
            accounting=(Path(prefixed(str(data["accounting"]["path"]))),
                        {str(k): {str(a): str(b) for a, b in v.items()}
                         for k, v in data["accounting"]["vmtas"].items()}) if data.get("accounting") else None)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise ConfigError(f"{path}: {error}: received a config without it, expected the rendered keys "
                          "(host, listen_private, port, logs, queues, transports, providers, ...)") from None
