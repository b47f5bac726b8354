"""The mailinfra policy pack: `pulumi preview --policy-pack policy` (starts a gRPC server; CLI only).

The Python policy host runs this folder with `runpy.run_path(<pack dir>)` (pulumi/policy/__main__.py),
which puts the folder itself first on sys.path: `policies` and `mailinfra_policy` import as they are.
Nothing outside this folder is imported: `pulumi policy publish` uploads only the folder, and Pulumi
Cloud installs only requirements.txt into the pack's own virtualenv.
"""

from __future__ import annotations

from policies import POLICIES
from pulumi_policy import EnforcementLevel, PolicyPack

PolicyPack(name="mailinfra", policies=POLICIES, enforcement_level=EnforcementLevel.MANDATORY)
