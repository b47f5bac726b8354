"""Inbox placement: the seed mailboxes' IMAP passwords, delivered to the one host that reads the seeds.

Each password comes from the stack's Pulumi secret config (`monitoring.seeds.<s>.password_secret`, read with
`config.require_secret`, so it stays a secret in state and outputs), lands in an SSM SecureString of the reader
host's own (its role reads only its own parameters) and is written at boot into a root-only file, which the
reader service receives as a systemd credential (mailinfra.placement.render).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.tags import stack_tags
from mailinfra.placement.render import SEED_PASSWORD_DIR, seed_password_files
from mailinfra.plan.model import Plan

NAMESPACE = "mailinfra"


def seed_parameter_name(stack: str, host: str, seed: str) -> str:
    """Per Pulumi stack and host, beside the host's other secrets."""
    return f"/mailinfra/{stack}/{host}/placement/seed-{seed}"


@dataclass
class PlacementSeedsArgs:
    plan: Plan


class PlacementSeeds(pulumi.ComponentResource):
    def __init__(self, name: str, args: PlacementSeedsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mailinfra:placement:PlacementSeeds", name, None, opts)
        plan = args.plan
        config = pulumi.Config(NAMESPACE)
        child = pulumi.ResourceOptions(parent=self)
        self.parameters: dict[str, list[aws.ssm.Parameter]] = {}
        # host -> (parameter, path, owner, mode, directories): what the boot script writes
        self.deliveries: dict[str, list[tuple[str, str, str, str, tuple[str, ...]]]] = {}
        for host in plan.hosts:
            files = dict(seed_password_files(plan, host))
            if not files:
                continue
            self.parameters[host.name] = [
                aws.ssm.Parameter(
                    f"{name}-{host.name}-{seed.name}",
                    name=seed_parameter_name(plan.stack, host.name, seed.name),
                    type="SecureString",
                    value=config.require_secret(seed.password_secret),
                    description=f"IMAP password of seed {seed.name} ({seed.provider}) for host {host.name}",
                    tags=stack_tags(plan.environment, host=host.name, purpose="placement"),
                    opts=child)
                for seed in plan.seeds
            ]
            self.deliveries[host.name] = [
                (seed_parameter_name(plan.stack, host.name, seed), path, "root:root", "0600", (SEED_PASSWORD_DIR,))
                for seed, path in files.items()
            ]
        self.register_outputs({"seeds": [s.name for s in plan.seeds]})
