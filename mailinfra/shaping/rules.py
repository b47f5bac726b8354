"""Which receiver replies mean a pool is softening or blocked, and what the host does about each (data).

Anchors: KumoMTA's shaping.toml automation rules (docs.kumomta.com/userguide/trafficshaping/shapingfiles:
`regex = "\\[TS04\\]"`, `action = "Suspend"`, `duration = "2 hours"`, thresholds "N/period") and PowerMTA's
backoff mode (a reply pattern puts the queue into backoff: slower, then rerouted). Three kinds:

- throttle: "slow down, nothing about you" -> slow (a longer rate delay for that provider)
- reputation: a deferral about the sending IP's reputation -> slow, then suspend if it goes on. Never moved
  to the route or to another pool: sending a reputation deferral through other addresses to the same
  provider is evasion (Gmail documents 4.7.28 as a limit on the sender's IP,
  https://support.google.com/a/answer/3726730; mailinfra.mta.replies keeps it off smtp_fallback_relay).
- block: the provider refuses the IP (blocklisted) -> move the pool's mail to that provider to the stream's
  declared route for a cool-down (the isolation the stack file would declare), else suspend.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

THROTTLE, REPUTATION, BLOCK = "throttle", "reputation", "block"
SLOW, SUSPEND, REROUTE = "slow", "suspend", "reroute"


@dataclass(frozen=True, slots=True)
class ReplyRule:
    """Replies matching `pattern` (case-insensitive, searched in the receiver's text) from `provider`
    ("*": any), `count` times within `window_seconds`, trigger `kind`'s action."""

    name: str
    provider: str
    kind: str
    pattern: str
    count: int
    window_seconds: int
    source: str  # where the reply text is published

    def matches(self, provider: str, text: str) -> bool:
        return self.provider in ("*", provider) and re.search(self.pattern, text, re.IGNORECASE) is not None


# Ordered: the first matching rule names the reply. Blocks first (a block text may also carry 4.7.x words).
REPLY_RULES: tuple[ReplyRule, ...] = (
    # Microsoft: "550 5.7.1 Unfortunately, messages from [IP] weren't sent. Please contact your Internet
    # service provider since part of their network is on our block list (S3150)" (also S3140, OU-002).
    ReplyRule("microsoft-block-list", "microsoft", BLOCK, r"\b5\.7\.1\b.*\bon our block list\b", 1, 60,
              "https://sevencreative.co.uk/how-to-remove-yourself-from-the-hotmail-block-list/"),
    ReplyRule("microsoft-banned-ip", "microsoft", BLOCK, r"\b5\.7\.6\d\d\b.*banned sending IP", 1, 60,
              "https://learn.microsoft.com/exchange/troubleshoot/email-delivery/ndr/fix-error-code-550-5-7-606-649"),
    # Yahoo: "553 5.7.1 [BL21] Connections will not be accepted from IP, because the ip is in Spamhaus's list"
    # and "554 5.7.9 ... [TSS09] All messages from IP will be permanently deferred".
    ReplyRule("yahoo-blocklisted", "yahoo", BLOCK, r"\[(BL2\d|TSS09)\]", 1, 60,
              "https://senders.yahooinc.com/smtp-error-codes/"),
    # Any receiver naming a DNS blocklist: "blocked using Spamhaus", "listed at/on/in ...", Barracuda, SpamCop.
    ReplyRule("dnsbl-listed", "*", BLOCK,
              r"^5\d\d\b.*(spamhaus|blocked using|barracuda|spamcop|\blisted (at|on|in)\b|block ?list|blacklist)",
              1, 60, "https://www.spamhaus.org/faqs/"),
    # A 5.7.1 refusal that says blocked / not authorized (Gmail: "550-5.7.1 [IP] Our system has detected that
    # this message is likely unsolicited mail ... this message has been blocked"; "The IP you're using to send
    # mail is not authorized"): twice in a minute, so one message's content verdict is not a block of the IP.
    ReplyRule("policy-block", "*", BLOCK, r"^5\d\d[ -]5\.7\.1\b.*\b(blocked|not authorized|denied)\b", 2, 60,
              "https://support.google.com/a/answer/3726730"),
    # Gmail: "421-4.7.28 ... unusual rate of unsolicited mail originating from your IP address".
    ReplyRule("gmail-4.7.28", "gmail", REPUTATION, r"\b4\.7\.28\b", 5, 300, "https://support.google.com/a/answer/3726730"),
    # Yahoo: "421 4.7.0 [TSS04] Messages from IP temporarily deferred due to unexpected volume or user complaints"
    # (KumoMTA's community rule suspends on it for 2 hours).
    ReplyRule("yahoo-tss04", "yahoo", REPUTATION, r"\[TSS?0[1-4]\]", 5, 300,
              "https://smtpfieldmanual.com/provider/yahoo/421/4.7.0"),
    # Microsoft: "451 4.7.650 The mail server [IP] has been temporarily rate limited due to IP reputation".
    ReplyRule("microsoft-4.7.650", "microsoft", REPUTATION, r"\b4\.7\.650\b", 5, 300,
              "https://learn.microsoft.com/exchange/troubleshoot/email-delivery/ndr/non-delivery-reports-in-exchange-online"),
    # A deferral (4xx) naming a blocklist or reputation is the receiver asking this IP to back off: slow,
    # never reroute (the same list is read by every receiver the route reaches).
    ReplyRule("listed-deferral", "*", REPUTATION,
              r"^4\d\d\b.*(spamhaus|blocked using|block ?list|blacklist|\blisted\b|reputation)", 5, 300,
              "https://www.rfc-editor.org/rfc/rfc3463#section-3.8"),
    # Gmail: "421-4.7.0 Try again later, closing connection." (load shedding: a rate, not a judgement).
    ReplyRule("rate-421-4.7.0", "*", THROTTLE, r"^4\d\d[ -]4\.7\.0\b.*(try again later|rate|too many)", 5, 60,
              "https://support.google.com/a/answer/3726730"),
)


def classify(provider: str, text: str, rules: tuple[ReplyRule, ...] = REPLY_RULES) -> ReplyRule | None:
    """The first rule a receiver's reply matches, or None (a reply that means nothing about the pool)."""
    return next((rule for rule in rules if rule.matches(provider, text)), None)
