"""Drift: compare the plan with the live world (DNS, AWS, Pulumi) and report every difference."""

from __future__ import annotations

from mailinfra.drift.model import DriftReport, DriftResult, Status

__all__ = ["DriftReport", "DriftResult", "Status"]
