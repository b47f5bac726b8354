"""Test-wide settings."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

# These machines are shared and noisy (and CI's has 2 cores): input generation (st.emails above all)
# can exceed Hypothesis's timing health check with nothing wrong in the code under test. The properties
# still run every example; only the wall-clock checks on generation and per-example deadlines are off.
settings.register_profile("mailinfra", suppress_health_check=[HealthCheck.too_slow], deadline=None)
settings.load_profile("mailinfra")
