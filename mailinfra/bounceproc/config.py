"""The processor's configuration as rendered for the host (mailinfra.mta.intake.processor_config)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mailinfra.model.kinds import StreamKind
from mailinfra.suppression.model import Policy
from mailinfra.suppression.policy import policy_from_rendered
from mailinfra.suppression.reports import Context


class ConfigError(ValueError):
    """The rendered configuration is unreadable: one line naming the file and key."""


@dataclass(frozen=True)
class ProcessorConfig:
    host: str
    lmtp_socket: Path
    socket_group: str | None
    store_path: Path
    feed_listen: tuple[str, int] | None
    context: Context
    policy: Policy
    ses_queues: tuple[tuple[str, str | None], ...]  # (queue name, region)
    secret: bytes  # the current VERP secret (the feed key is derived from it)
    store_kind: str = "sqlite"  # bounces.suppression.store: sqlite (store_path) | dynamodb (store_table)
    store_table: str | None = None


def load_config(path: Path, root: Path | None = None) -> ProcessorConfig:
    """`root` prefixes every path of the config (the lab's host root)."""
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ConfigError(f"{path}: received unreadable JSON ({error}), expected the rendered processor config") \
            from None

    def where(key: str) -> Path:
        value = data.get(key)
        if not isinstance(value, str) or not value.startswith("/"):
            raise ConfigError(f"{path}: {key}: received {value!r}, expected an absolute path")
        return Path(f"{root}{value}") if root is not None else Path(value)

    secrets = [where("verp_secret_file").read_bytes().strip()]
    if data.get("verp_secret_previous_file"):
        previous = where("verp_secret_previous_file")
        if previous.exists():
            secrets.append(previous.read_bytes().strip())
    try:
        policy = policy_from_rendered(data["policy"])
        streams = {name: StreamKind(kind) for name, kind in data["streams"].items()}
    except (KeyError, ValueError) as error:
        raise ConfigError(f"{path}: policy/streams: received {error}, expected the rendered values") from None
    context = Context(secrets=tuple(secrets), streams=streams, pools=dict(data.get("stream_pools") or {}),
                      fbl_addresses=frozenset(a.lower() for a in data.get("fbl_addresses") or ()),
                      max_age=policy.token_max_age)
    listen = data.get("feed_listen")
    address, _, port = str(listen or "").rpartition(":")
    store = data.get("store") or {}
    if not isinstance(store, dict) or not str(store.get("path", "")).startswith("/"):
        raise ConfigError(f"{path}: store.path: received {store!r}, expected an absolute path")
    kind = str(store.get("kind") or "sqlite")
    if kind not in ("sqlite", "dynamodb") or (kind == "dynamodb" and not store.get("table")):
        raise ConfigError(f"{path}: store: received {store!r}, expected kind sqlite, or dynamodb with a table")
    return ProcessorConfig(
        host=str(data.get("host", "")), lmtp_socket=where("lmtp_socket"), socket_group=data.get("socket_group"),
        store_path=Path(f"{root}{store['path']}") if root is not None else Path(store["path"]),
        feed_listen=(address, int(port)) if listen else None, context=context,
        policy=policy,
        ses_queues=tuple((str(q["name"]), q.get("region")) for q in data.get("ses_queues") or ()),
        secret=secrets[0], store_kind=kind, store_table=str(store["table"]) if kind == "dynamodb" else None)
