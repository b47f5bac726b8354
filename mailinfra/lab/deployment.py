"""The lab's deployment: the resources `pulumi up` would create for the lab's stack, with the lab's secrets.

The lab is built from what the program declares, not from the plan: its DKIM keys go in as the stack's
public keys and config secrets (as `mailinfra dkim keygen` and `pulumi config set --secret` would put
them), its route passwords as the routes' config secrets, and the program runs as `pulumi up` under the
mock runtime (mailinfra.deployment.program). Each lab piece then reads the resources it needs through
the provider translations in mailinfra.deployment.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from mailinfra.deployment.program import Deployment, deployment_config, run_deployment
from mailinfra.lab.keys import LabKey
from mailinfra.model.load import NAMESPACE
from mailinfra.plan.model import Plan


def deploy_lab(plan: Plan, keys: Sequence[LabKey], route_markers: Mapping[str, str],
               stacks_dir: Path | None = None) -> Deployment:
    """Run the program for `plan`'s stack as of its date, with the lab keys and route passwords
    (`stacks_dir`: where its stack file is, default the project's stacks/).

    `route_markers`: the lab credentials by secret marker (lab.route_credentials): those named
    `mailinfra:<key>` are route passwords the program reads from config.
    """
    secrets = {name.removeprefix(f"{NAMESPACE}:"): value for name, value in route_markers.items()
               if name.startswith(f"{NAMESPACE}:")}
    dkim = [(k.domain, k.selector, k.public_key, k.private_path.read_text(encoding="ascii")) for k in keys]
    config, secret_keys = deployment_config(plan.stack, dkim_keys=dkim, secrets=secrets, stacks_dir=stacks_dir)
    return run_deployment(plan.stack, config, secret_keys, as_of=plan.as_of)
