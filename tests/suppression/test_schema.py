"""bounces.suppression and bounces.fbl_addresses: documented defaults, one-line errors in the house form."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailinfra.model.load import load_stack
from mailinfra.model.schema import StreamKind, Suppression, SuppressionStoreKind
from tests.model.test_validation import FILE, dev_text, in_tmp, line_of, load_errors, put

__all__ = ["in_tmp"]


def test_defaults_are_the_documented_ones() -> None:
    """docs/configuration.md "bounces.suppression" lists these defaults."""
    assert Suppression() == Suppression(
        store=SuppressionStoreKind.SQLITE, soft_bounce_threshold=3, soft_bounce_window_days=7, soft_expiry_days=30,
        complaint_streams=[StreamKind.MARKETING, StreamKind.BULK], token_max_age_days=60,
        verp_secret="verp_secret", verp_secret_previous=None)


def test_fbl_addresses_unite_with_the_old_key(in_tmp: Path) -> None:
    Path(FILE).write_text(dev_text(put("bounces", "fbl_addresses", value=["ARF@example.com", "fbl@example.com"])))
    assert load_stack(FILE).config.bounces.feedback_addresses == ["arf@example.com", "fbl@example.com"]


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("store", "redis", "received 'redis', expected one of 'sqlite' or 'dynamodb'"),
    ("soft_bounce_threshold", 0, "received 0, expected a whole number of at least 1"),
    ("complaint_streams", ["weekly"], "received 'weekly', expected one of 'transactional', 'marketing' or 'bulk'"),
    ("token_max_age_days", 3, "received 3, expected a whole number of at least 7"),
])
def test_bad_suppression_key_is_one_line(in_tmp: Path, key: str, value: object, expected: str) -> None:
    text = dev_text(put("bounces", "suppression", value={key: value}))
    [line] = load_errors(text)
    anchors = ("mailinfra:bounces:", "suppression:", f"{key}:") + (("- weekly",) if isinstance(value, list) else ())
    at = line_of(text, *anchors)
    dotted = f"mailinfra:bounces.suppression.{key}" + ("[0]" if isinstance(value, list) else "")
    assert line == f"{FILE}:{at}: {dotted}: {expected}"


def test_bad_fbl_address_is_one_line(in_tmp: Path) -> None:
    text = dev_text(put("bounces", "fbl_addresses", value=["not-an-address"]))
    [line] = load_errors(text)
    at = line_of(text, "mailinfra:bounces:", "- not-an-address")
    assert line == (f"{FILE}:{at}: mailinfra:bounces.fbl_addresses[0]: received 'not-an-address', expected an "
                    "email address such as fbl@example.com")
