"""A dev stack with seed mailboxes: the plan every placement test reads."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import yaml

from mailinfra.model.load import STACKS_DIR, Stack, validate_config
from mailinfra.plan.build import build_plan
from mailinfra.plan.model import Plan

DEV = yaml.safe_load((STACKS_DIR / "Pulumi.dev.yaml").read_text())["config"]
AS_OF = dt.date(2026, 12, 20)
SEEDS = {
    "gmail-1": {"provider": "gmail", "address": "seed.one@gmail.com", "imap_host": "imap.gmail.com",
                "password_secret": "seed_gmail_1"},
    "outlook-1": {"provider": "microsoft", "address": "seed.two@outlook.com", "imap_host": "outlook.office365.com",
                  "password_secret": "seed_outlook_1"},
}


def stack_with_seeds(seeds: dict[str, Any] | None = None, **monitoring: Any) -> Stack:
    raw = {k.split(":", 1)[1]: v for k, v in DEV.items() if k.startswith("mailinfra:")}
    raw["monitoring"] = {"seeds": SEEDS if seeds is None else seeds, **monitoring}
    return validate_config(raw, "dev", "Pulumi.dev.yaml")


@pytest.fixture(scope="session")
def seeded_plan() -> Plan:
    return build_plan(stack_with_seeds(), AS_OF)
