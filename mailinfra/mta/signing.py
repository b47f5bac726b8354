"""What every DKIM signature of ours covers, whichever signer writes it (one place: the signer configs read it).

Why these headers (RFC 6376 §5.4, §8.15; RFC 8058 §4):
- RFC 8058 §4: a receiver honours one-click unsubscribe only when *both* List-Unsubscribe and
  List-Unsubscribe-Post are covered by a valid DKIM signature (h=). OpenDKIM's built-in list (RFC 4871's
  "SHOULD sign" set) has List-Unsubscribe but not List-Unsubscribe-Post, so one-click silently failed.
- Message-ID and Feedback-ID: Gmail's Postmaster Tools groups its feedback loop only by a Feedback-ID
  signed by a verified domain; a Message-ID outside the signature can be swapped (replay detection keys on it).
- The rest (Date, Subject, To, Cc, Reply-To, In-Reply-To, References, MIME-Version, Content-Type,
  Content-Transfer-Encoding, List-Id) is what a recipient reads or what decides how the body is shown.
- Oversigned (RFC 6376 §8.15, "h=" naming a header once more than it occurs): From, and the unsubscribe
  pair, so nobody can add a second From, or a List-Unsubscribe(-Post) to mail that had none (a
  transactional message turned into a "one-click" one), without breaking the signature.
- Canonicalization relaxed/relaxed (RFC 6376 §3.4.2, §3.4.4): "simple" body canonicalization fails as soon
  as a relay re-wraps lines or touches trailing whitespace; relaxed tolerates exactly that and nothing more.
"""

from __future__ import annotations

SIGNED_HEADERS = (
    "From", "Reply-To", "Subject", "Date", "Message-ID", "To", "Cc", "In-Reply-To", "References",
    "MIME-Version", "Content-Type", "Content-Transfer-Encoding",
    "List-Id", "List-Unsubscribe", "List-Unsubscribe-Post", "Feedback-ID",
)
OVERSIGNED_HEADERS = ("From", "List-Unsubscribe", "List-Unsubscribe-Post")
CANONICALIZATION = "relaxed/relaxed"
