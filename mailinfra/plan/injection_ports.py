"""The port each pool's Postfix instance accepts injection on: a contract with the apps (pure).

The apps connect to `<host>:<port>` per pool and the hosts' security groups open exactly these ports, so a
pool's port must never move because another pool was added or removed. It was `10025 + the pool's position
in the stack file`: a pool inserted before others renumbered them all (every app's target and every
injection rule changed). Now a port is the pool's declared `injection_port`, or else derived from the
pool's *first* name (a rename with previous_names keeps it) by hashing into PORT_SPAN ports from
INJECTION_PORT_BASE, with linear probing past the declared ports and the other pools' (in sorted order),
so adding or removing a pool leaves every other pool's port unchanged unless their probe sequences meet.
Declare the port to make it a fixed contract (validation refuses two pools on one port).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

INJECTION_PORT_BASE = 10025  # the first port after the primary's 25/587 neighbours that releases used
PORT_SPAN = 1000  # derived ports fall in 10025..11024


def plan_injection_ports(pools: Mapping[str, tuple[str, int | None]]) -> dict[str, int]:
    """pool name -> its injection port, from pool name -> (address key, declared port or None)."""
    ports = {name: declared for name, (_, declared) in pools.items() if declared is not None}
    taken = set(ports.values())
    for name, (key, _) in sorted((n, v) for n, v in pools.items() if v[1] is None):
        slot = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % PORT_SPAN
        while INJECTION_PORT_BASE + slot in taken:
            slot = (slot + 1) % PORT_SPAN
        ports[name] = INJECTION_PORT_BASE + slot
        taken.add(ports[name])
    return {name: ports[name] for name in pools}
