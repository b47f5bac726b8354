"""An action on a pool instance, as the host's limits calendar changes it: `postconf -e` on its main.cf, then
`postfix reload` (and a queue flush, so deferred mail is looked up again in the new maps at once)."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field

from mailinfra.shaping.engine import RETURN, Action
from mailinfra.shaping.rules import REROUTE, SLOW, SUSPEND


class ShapingError(Exception):
    """A postconf/postfix command failed (the one-line reason is the message)."""


@dataclass
class InstanceControl:
    """One pool instance: `transports` transport -> provider, `route_hops` its stream's route entries."""

    pool: str
    config_dir: str
    transports: dict[str, str]
    route_hops: list[str]
    postconf: str = "postconf"
    postfix: str = "postfix"
    wrap: list[str] = field(default_factory=list)  # e.g. ["ip", "netns", "exec", NS] in the lab
    saved: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)  # (provider, action) -> values

    def apply(self, action: Action, slow_factor: int) -> None:
        if action.action == RETURN:
            self._restore(action.provider)
        elif action.action == SLOW:
            self._slow(action.provider, slow_factor)
        elif action.action == SUSPEND:
            self._suspend(action.provider)
        elif action.action == REROUTE:
            self._reroute(action.provider)
        # No `postqueue -f`: a flush delivers mail of every transport in defer_transports (postconf(5):
        # "unless someone issues sendmail -q or equivalent"), i.e. the daily caps' and warmup's held mail, and
        # retries every deferral at once. qmgr resolves each message's transport again at its next attempt,
        # so the new maps and delays apply without it.
        self._run([self.postfix, "-c", self.config_dir, "reload"])

    def _of(self, provider: str) -> list[str]:
        return sorted(t for t, p in self.transports.items() if p == provider)

    def _slow(self, provider: str, factor: int) -> None:
        names = [f"{t}_destination_rate_delay" for t in self._of(provider)]
        current = self._get(names)
        self.saved[(provider, SLOW)] = current
        # Whole seconds (postconf(5)); a 0 s delay (unpaced) becomes 1 s x factor, never stays unlimited.
        self._set({n: f"{max(1, _seconds(v)) * factor}s" for n, v in current.items()})

    def _suspend(self, provider: str) -> None:
        current = self._get(["defer_transports"])["defer_transports"]
        self.saved[(provider, SUSPEND)] = {"defer_transports": current}
        names = [n for n in re.split(r"[\s,]+", current) if n]
        self._set({"defer_transports": ", ".join(dict.fromkeys([*names, *self._of(provider)]))})

    def _reroute(self, provider: str) -> None:
        if not self.route_hops:
            raise ShapingError(f"pool {self.pool}: no route to move {provider} mail to")
        maps = self._get(["transport_maps"])["transport_maps"]
        self.saved[(provider, REROUTE)] = {"transport_maps": maps}
        self._set({"transport_maps": reroute_map(maps, provider, self.route_hops)})

    def _restore(self, provider: str) -> None:
        for action in (SLOW, SUSPEND, REROUTE):
            values = self.saved.pop((provider, action), None)
            if values is None:
                continue
            if action == SUSPEND:
                # Only this provider's transports leave: another provider's suspension stays.
                current = [n for n in re.split(r"[\s,]+", self._get(["defer_transports"])["defer_transports"]) if n]
                before = set(re.split(r"[\s,]+", values["defer_transports"]))
                mine = set(self._of(provider)) - before
                values = {"defer_transports": ", ".join(n for n in current if n not in mine)}
            elif action == REROUTE:
                values = {"transport_maps": restore_map(self._get(["transport_maps"])["transport_maps"],
                                                        values["transport_maps"], provider)}
            self._set(values)

    def _get(self, names: list[str]) -> dict[str, str]:
        out = self._run([self.postconf, "-c", self.config_dir, "-h", *names])
        return dict(zip(names, out.splitlines() + [""] * len(names), strict=False))

    def _set(self, values: dict[str, str]) -> None:
        self._run([self.postconf, "-c", self.config_dir, "-e", *(f"{k}={v}" for k, v in values.items())])

    def _run(self, argv: list[str]) -> str:
        done = subprocess.run([*self.wrap, *argv], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            reason = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
            raise ShapingError(f"pool {self.pool}: {' '.join(argv[:2])} failed: {reason}")
        return done.stdout


def _provider_entry(provider: str) -> re.Pattern[str]:
    # The provider's table in transport_maps (mailinfra.mta.postfix._rotation_map).
    return re.compile(r"(pipemap:\{inline:\{ [^}]*=" + re.escape(provider) + r" \}, randmap:\{)([^}]*)(\}\})")


def reroute_map(maps: str, provider: str, hops: list[str]) -> str:
    """transport_maps with `provider`'s rotation replaced by the route's entries."""
    return _provider_entry(provider).sub(lambda m: f"{m[1]} {', '.join(hops)} {m[3]}", maps, count=1)


def restore_map(current: str, saved: str, provider: str) -> str:
    """`current` with `provider`'s rotation as it was in `saved` (other providers' entries as they are now)."""
    before = _provider_entry(provider).search(saved)
    if before is None:
        return current
    return _provider_entry(provider).sub(lambda m: f"{m[1]}{before[2]}{m[3]}", current, count=1)


def _seconds(value: str) -> int:
    match = re.fullmatch(r"\s*(\d+)\s*s?\s*", value)
    return int(match[1]) if match else 0
