"""The lab providers' placement model: INBOX or Junk for each accepted message. Documented and simple.

A simulated provider keeps a reputation per sending IP (in its own process, like a real provider's, never told
by us) and files a message into Junk when any of these holds, else into INBOX:
1. authentication: DMARC does not pass (RFC 7489; Gmail/Yahoo junk or reject unauthenticated bulk mail);
2. complaints: complaints / messages accepted from the IP ≥ 0.3 % — Google's published spam-rate line;
3. unknown recipients: 550 5.1.1 answers / RCPTs from the IP > 5 %, once the IP has made 20 RCPTs (a lab
   threshold: list hygiene is judged on a sample, no provider publishes its number);
4. volume: more messages today from the IP than its warmup daily cap for this provider (the plan's limit:
   mail above the cap is what a warming IP's reputation cannot carry);
5. bulk without one-click unsubscribe: a marketing or bulk stream's message without RFC 8058's
   `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (the 2024 Gmail/Yahoo bulk-sender rule).
Rules 2-4 apply to the stack's own IPs only: a secondary route's shared fleet has its own reputation.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

INBOX, JUNK = "INBOX", "Junk"
COMPLAINT_RATE_LIMIT = 0.003  # Google: keep spam rate < 0.3 % (Email sender guidelines, 2024)
UNKNOWN_RATE_LIMIT = 0.05
UNKNOWN_MIN_RCPTS = 20
ONE_CLICK = "list-unsubscribe=one-click"


@dataclass
class IpReputation:
    accepted: int = 0
    complaints: int = 0
    rcpts: int = 0
    unknown: int = 0
    today: int = 0


@dataclass
class PlacementModel:
    daily_caps: Mapping[str, int] = field(default_factory=dict)  # sending IP -> today's cap at this provider
    bulk_streams: frozenset[str] = frozenset()  # streams of kind marketing/bulk
    reputation: dict[str, IpReputation] = field(default_factory=lambda: defaultdict(IpReputation))

    def note_rcpt(self, ip: str, *, unknown: bool) -> None:
        rep = self.reputation[ip]
        rep.rcpts += 1
        rep.unknown += unknown

    def note_complaint(self, ip: str) -> None:
        self.reputation[ip].complaints += 1

    def decide(self, ip: str, *, dmarc: str, stream: str, one_click: str, own_ip: bool = True) -> tuple[str, list[str]]:
        """The folder of one message from `ip` and the reasons for Junk; counts the message as accepted."""
        reasons = []
        if dmarc != "pass":
            reasons.append(f"dmarc {dmarc}")
        if stream in self.bulk_streams and one_click.strip().lower() != ONE_CLICK:
            reasons.append("bulk without one-click unsubscribe")
        if own_ip:
            rep = self.reputation[ip]
            if rep.accepted and rep.complaints / rep.accepted >= COMPLAINT_RATE_LIMIT:
                reasons.append(f"complaints {rep.complaints}/{rep.accepted}")
            if rep.rcpts >= UNKNOWN_MIN_RCPTS and rep.unknown / rep.rcpts > UNKNOWN_RATE_LIMIT:
                reasons.append(f"unknown recipients {rep.unknown}/{rep.rcpts}")
            cap = self.daily_caps.get(ip)
            if cap is not None and rep.today >= cap:
                reasons.append(f"over the daily cap {cap}")
            rep.accepted += 1
            rep.today += 1
        return (JUNK if reasons else INBOX), reasons
