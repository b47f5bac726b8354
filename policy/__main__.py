"""The mailinfra policy pack: `pulumi preview --policy-pack policy` (starts a gRPC server; CLI only)."""

from __future__ import annotations

import sys
from pathlib import Path

# The pack folder is not a package; make `policies` and the project's `mailinfra` importable.
HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from policies import POLICIES  # noqa: E402
from pulumi_policy import PolicyPack  # noqa: E402

PolicyPack(name="mailinfra", policies=POLICIES)
