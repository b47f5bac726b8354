"""The automatic response as a state machine per (pool, provider): normal -> slowed | suspended | rerouted,
back to normal after a cool-down without a matching reply (the probe: if the provider still refuses, the
next replies act again). Pure: the caller gives the time."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from mailinfra.shaping.rules import BLOCK, REPLY_RULES, REPUTATION, REROUTE, SLOW, SUSPEND, ReplyRule, classify

NORMAL, SLOWED, SUSPENDED, REROUTED = "normal", "slowed", "suspended", "rerouted"
STATES = (NORMAL, SLOWED, SUSPENDED, REROUTED)
RETURN = "return"
_STATE_OF = {SLOW: SLOWED, SUSPEND: SUSPENDED, REROUTE: REROUTED}
_RANK = {NORMAL: 0, SLOWED: 1, SUSPENDED: 2, REROUTED: 2}


@dataclass(frozen=True, slots=True)
class Action:
    pool: str
    provider: str
    action: str  # slow | suspend | reroute | return
    before: str
    after: str
    rule: str
    detail: str


@dataclass
class _Track:
    state: str = NORMAL
    last_hit: float = 0.0
    hits: dict[str, deque[float]] = field(default_factory=dict)


class Shaper:
    """`routes`: pool -> whether its stream declared a route (the only place a block may move its mail)."""

    def __init__(self, routes: dict[str, bool], cooldown_seconds: float,
                 rules: tuple[ReplyRule, ...] = REPLY_RULES) -> None:
        self.routes = routes
        self.cooldown_seconds = cooldown_seconds
        self.rules = rules
        self.tracks: dict[tuple[str, str], _Track] = {}

    def state(self, pool: str, provider: str) -> str:
        return self.tracks.get((pool, provider), _Track()).state

    def observe(self, pool: str, provider: str, reply: str, now: float) -> list[Action]:
        """One receiver reply to `pool`'s mail for `provider`: the action it triggers, if any."""
        rule = classify(provider, reply, self.rules)
        if rule is None:
            return []
        track = self.tracks.setdefault((pool, provider), _Track())
        track.last_hit = now  # every matching reply extends the cool-down
        hits = track.hits.setdefault(rule.name, deque())
        hits.append(now)
        while hits and hits[0] < now - rule.window_seconds:
            hits.popleft()
        if len(hits) < rule.count:
            return []
        action = self._response(rule, pool, track.state)
        target = _STATE_OF[action]
        if _RANK[target] <= _RANK[track.state]:
            return []
        hits.clear()
        before, track.state = track.state, target
        return [Action(pool, provider, action, before, target, rule.name,
                       f"{rule.count} in {rule.window_seconds}s: {reply[:120]}")]

    def _response(self, rule: ReplyRule, pool: str, state: str) -> str:
        if rule.kind == BLOCK:
            # The declared alternative only: the stream's route, never another pool.
            return REROUTE if self.routes.get(pool) else SUSPEND
        if rule.kind == REPUTATION and state == SLOWED:
            return SUSPEND  # still deferred while slowed: stop, never move it elsewhere
        return SLOW

    def tick(self, now: float) -> list[Action]:
        """Every (pool, provider) whose cool-down has passed without a matching reply returns to normal."""
        actions = []
        for (pool, provider), track in sorted(self.tracks.items()):
            if track.state != NORMAL and now - track.last_hit >= self.cooldown_seconds:
                actions.append(Action(pool, provider, RETURN, track.state, NORMAL, "cooldown",
                                      f"no matching reply for {self.cooldown_seconds:.0f}s"))
                track.state = NORMAL
                track.hits.clear()
        return actions
