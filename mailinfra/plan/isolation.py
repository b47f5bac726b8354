"""Incident isolation as config: what `mailinfra:isolations` takes out of rotation, and where its mail goes (pure).

An isolation keeps the isolated IPs allocated, published and their warmup state intact (nothing here touches
addresses, records or warmup); it only changes where the MTAs send the isolated share:
- `pool:<pool>[@<provider>]` → the stream's secondary route (`to: route`): the route's shared fleet carries the
  pool's mail (to that provider) while the pool's own reputation is diagnosed. Never another stream's or brand's
  pool: reputation must not be borrowed across streams.
- `ip:<ip>[@<provider>]` → the other IPs of the same pool (`to: siblings`, within their own caps), or the route.
Lifting an isolation is deleting its line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mailinfra.model.schema import Isolation, IsolationAlternative
from mailinfra.plan.model import IpLimits, IpPlan, IsolationPlan, StreamPlan


def parse_target(target: str) -> tuple[str, str, str | None]:
    """`pool:com-mkt-cold@gmail` -> ("pool", "com-mkt-cold", "gmail") (the schema checked the form)."""
    kind, _, rest = target.partition(":")
    name, _, provider = rest.partition("@")
    return kind, name, provider or None


def plan_isolations(isolations: Mapping[str, Isolation], streams: Sequence[StreamPlan],
                    ips: Sequence[IpPlan]) -> tuple[IsolationPlan, ...]:
    """The validated isolations (mailinfra.model.rules checked every reference), in key order."""
    owner = {pool: stream for stream in streams for pool in stream.pool_names()}
    ip_pool = {ip.name: ip.pool for ip in ips}
    result = []
    for target in sorted(isolations):
        spec = isolations[target]
        kind, name, provider = parse_target(target)
        pool = name if kind == "pool" else ip_pool[name]
        stream = owner[pool]
        to = spec.to or (IsolationAlternative.ROUTE if kind == "pool" else IsolationAlternative.SIBLINGS)
        result.append(IsolationPlan(target, kind, pool, name if kind == "ip" else None, provider, stream.name,
                                    str(to), stream.route if to is IsolationAlternative.ROUTE else None,
                                    spec.reason, spec.since))
    return tuple(result)


@dataclass(frozen=True, slots=True)
class CapacityMove:
    """What one isolation moves on the plan's date: messages per day out of the isolated IPs, and to where."""

    isolation: IsolationPlan
    isolated_ips: tuple[str, ...]
    messages_per_day: int  # the isolated share's cap today
    destination: str  # "route <name>" or "pool <name> (N IPs)"
    destination_headroom: int | None  # siblings: their own caps for the same share (None: a route, no cap known)


def plan_capacity_moves(isolations: Sequence[IsolationPlan], limits: Sequence[IpLimits]) -> tuple[CapacityMove, ...]:
    moves = []
    for iso in isolations:
        isolated = [lim for lim in limits if lim.pool == iso.pool and (iso.kind == "pool" or lim.ip == iso.ip)]
        moved = sum(_share(lim, iso.provider) for lim in isolated)
        if iso.to == "route":
            moves.append(CapacityMove(iso, tuple(lim.ip for lim in isolated), moved, f"route {iso.route}", None))
            continue
        siblings = [lim for lim in limits if lim.pool == iso.pool and lim.ip != iso.ip and lim.sending]
        headroom = sum(_share(lim, iso.provider) for lim in siblings)
        moves.append(CapacityMove(iso, tuple(lim.ip for lim in isolated), moved,
                                  f"pool {iso.pool} ({len(siblings)} other IPs)", headroom))
    return tuple(moves)


def _share(limit: IpLimits, provider: str | None) -> int:
    """An IP's cap today for every provider, or for one (its hourly rate to that provider over a day, at most
    the IP's daily cap)."""
    if provider is None:
        return limit.daily_cap
    return min(limit.daily_cap, limit.provider(provider).msgs_per_hour * 24)
