"""Which receiver replies may move mail to a stream's secondary route, and which must only back off.

One source for both MTAs: Postfix renders these into `smtp_reply_filter` / `smtp_delivery_status_filter`
tables (mailinfra.mta.postfix), PowerMTA into its `smtp-pattern-list` (mailinfra.mta.powermta).

Why the split: a receiver that is *down or busy* (refused or silent connection, "421 try again later",
"server busy") says nothing about us, so the same mail through another route is fine and delivers it
on time. A *reputation or policy* deferral (Gmail 4.7.28 "unusual rate of unsolicited mail", Microsoft
4.7.650 "rate limited due to IP reputation", Yahoo [TSS04] "user complaints", greylisting, a block
list) is the receiver asking *this sender* to slow down: sending the same mail through SES or a
relay is evading that judgement, spends the secondary route's reputation and gets it listed too.
Such mail waits in the queue (back off) and is retried from the same IP.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# The marker the Postfix reply filter adds; the delivery status filter turns a marked 5xx back into a
# deferral (see render_reply_filter). Plain ASCII, never sent by a real receiver.
BACKOFF_MARK = "mailinfra-backoff:"
_REPLY = re.compile(r"^4[0-9][0-9][ -](.*)$")


@dataclass(frozen=True, slots=True)
class ReplyClass:
    """A family of receiver replies, the rule behind its meaning, and its regex (POSIX ERE, case-insensitive)."""

    name: str
    pattern: str  # matched against the text after the reply code (enhanced status code first, if any)
    source: str  # the provider document that says what the reply means


# Reputation and policy deferrals: never rerouted, the queue backs off.
REPUTATION_REPLIES: tuple[ReplyClass, ...] = (
    # Gmail: 4.7.23-4.7.32 are PTR, SPF, DKIM, TLS, alignment and "unusual rate of unsolicited mail"
    # (4.7.28) deferrals: about the sender's authentication or reputation, not Gmail's capacity.
    ReplyClass("gmail-policy", r"^4\.7\.(2[3-9]|3[0-2]) ",
               "Gmail SMTP errors and codes, https://support.google.com/a/answer/3726730"),
    # Microsoft: 4.7.650-4.7.659 "temporarily rate limited due to IP reputation".
    ReplyClass("microsoft-reputation", r"^4\.7\.65[0-9] ",
               "Microsoft 365 NDR codes, https://learn.microsoft.com/exchange/mail-flow-best-practices/"
               "non-delivery-reports-in-exchange-online/non-delivery-reports-in-exchange-online"),
    # Yahoo/AOL: [TSS04] "deferred due to unexpected volume or user complaints", [TSS09] "permanently
    # deferred": both keyed on the sending IP's complaint rate.
    ReplyClass("yahoo-tss", r"\[TSS?[0-9]+\]", "Yahoo Sender Hub, SMTP error codes (TSS04, TSS09)"),
    # Mailbox status (RFC 3463 §3.3, X.2.X: 4.2.2 mailbox full or over quota, 4.2.1 the recipient
    # receives mail too fast, 4.2.0 postgrey's "Greylisted"): about one recipient's mailbox, which every
    # route reaches alike; another route spends its reputation on a full mailbox and delivers nothing sooner.
    ReplyClass("mailbox-status", r"^4\.2\.[0-9]+ ", "RFC 3463 §3.3 (X.2.X: mailbox status)"),
    # X.7.1 "delivery not authorized, message refused" (RFC 3463 §3.8): the code greylisters and policy
    # engines answer with ("451 4.7.1 Please try again later" from Exchange-style greylisting) even when
    # the text names no greylist: a judgement on this sender, not the receiver's capacity.
    ReplyClass("policy-refused", r"^4\.7\.1 ", "RFC 3463 §3.8 (X.7.1: delivery not authorized)"),
    # Everything else that names reputation, complaints, spam or a block list, and greylisting (the
    # same greylist answers every route: rerouting only moves the wait elsewhere).
    ReplyClass("named-reputation",
               r"(reputation|unsolicited|complaint|spam|block ?list|blacklist|listed|greylist|graylist)",
               "RFC 3463 §3.8 (X.7.X: security or policy status)"),
)


def render_reply_filter(*, throttle_reroutes: bool) -> str:
    """The `smtp_reply_filter` regexp table of a pool instance (postconf(5), regexp_table(5)).

    smtp(8) tries the next MX host and then smtp_fallback_relay after ANY 4xx from a non-final server
    (smtp_trouble.c: `soft_error && !FINAL_SERVER` keeps the recipient for the next server), and no
    parameter narrows that. So a reply that must not be rerouted is made permanent here (5xx, marked):
    a 5xx is final (the recipient is not kept for another server), and the delivery status filter
    (render_status_filter) turns the marked bounce back into a deferral before it is logged
    (bounce.c: a filtered 4.X.X status calls defer_append). The mail stays queued on this IP: it
    backs off and is never rerouted.

    `throttle_reroutes` False (a stream declared `fallback_on: [outage]`): every 4xx reply is held the
    same way, so only a receiver that cannot be reached (refused, timed out, silent) moves mail.
    """
    lines = [
        "# Rendered by mailinfra (mailinfra/mta/replies.py). Receiver replies that must back off, never",
        "# reroute: made 5xx and marked here; smtp_delivery_status_filter makes the mark a deferral again.",
    ]
    for reply in REPUTATION_REPLIES:
        lines.append(f"# {reply.name}: {reply.source}")
        lines.append(_filter_line(reply.pattern))
    if not throttle_reroutes:
        lines.append("# fallback_on has no `throttle`: every other 4xx backs off too; only an unreachable"
                     " receiver reroutes.")
        lines.append(f"/^4[0-9][0-9]([ -])4\\.([0-9]+\\.[0-9]+) (.*)$/ 550${{1}}5.$2 {BACKOFF_MARK} $3")
        lines.append(f"/^4[0-9][0-9]([ -])(.*)$/ 550${{1}}5.0.0 {BACKOFF_MARK} $2")
    return "\n".join(lines) + "\n"


def _filter_line(pattern: str) -> str:
    """One regexp_table(5) rule: a 4xx reply line whose text matches `pattern` becomes a marked 550.

    $1 keeps "-" or " " (each line of a multi-line reply is filtered alike). Two forms, with and without
    an RFC 3463 enhanced code: the code's class is changed to 5 with the reply's (smtp(8) drops an
    enhanced code whose class disagrees with the reply code).
    """
    if pattern.startswith("^4"):
        detail = pattern[len("^4"):].rstrip(" ")
        text = 3 + detail.count("(")  # the group after $2 (the detail) and the detail's own groups
        return f"/^4[0-9][0-9]([ -])4({detail}) (.*)$/ 550${{1}}5$2 {BACKOFF_MARK} ${text}"
    return (f"if /{pattern}/\n"
            f"/^4[0-9][0-9]([ -])4\\.([0-9]+\\.[0-9]+) (.*)$/ 550${{1}}5.$2 {BACKOFF_MARK} $3\n"
            f"/^4[0-9][0-9]([ -])(.*)$/ 550${{1}}5.7.1 {BACKOFF_MARK} $2\n"
            "endif")


def render_status_filter() -> str:
    """The `smtp_delivery_status_filter` regexp table: a bounce carrying the back-off mark is a deferral.

    Applied by bounce_append() (global/bounce.c, Postfix 3.0+): a result with a 4.X.X status is logged
    with defer_append, so the recipient stays queued with the receiver's own words as the reason.
    """
    return ("# Rendered by mailinfra (mailinfra/mta/replies.py): replies marked by smtp_reply_filter back off.\n"
            f"/^5(\\.[0-9]+\\.[0-9]+) (.*{BACKOFF_MARK}.*)$/ 4$1 $2\n")


def is_reputation_reply(reply: str) -> bool:
    """True when `reply` ("421 4.7.28 ...") is a reputation or policy deferral (used by PowerMTA's
    pattern list and the tests; Postfix matches the same patterns in its own tables)."""
    match = _REPLY.match(reply)
    if match is None:
        return False
    return any(re.search(r.pattern, match.group(1), re.IGNORECASE) for r in REPUTATION_REPLIES)
