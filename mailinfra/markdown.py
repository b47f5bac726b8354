"""Text into GitHub-flavoured Markdown cells exactly as written: nothing swallowed as HTML, nothing cut."""

from __future__ import annotations

import re

# DKIM key material (p=<base64>): long and unreadable; the review shows its ends, the zone files all of it.
_KEY = re.compile(r"p=([A-Za-z0-9+/=]{48,})")


def abbreviate_keys(value: str) -> str:
    return _KEY.sub(lambda m: f"p={m.group(1)[:24]}…{m.group(1)[-12:]}", value)


def escape_markdown(text: str) -> str:
    """Plain text for a table cell: `fbl@<your domain>` must not become an HTML tag GitHub drops."""
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace("|", "\\|").replace("\n", " "))


def code_span(text: str) -> str:
    """A code span in a table cell (GFM: `|` still ends the cell inside backticks unless escaped)."""
    fence = "``" if "`" in text else "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text.replace('|', chr(92) + '|')}{pad}{fence}"
