"""The seed mailboxes' passwords under the mocks: read with `config.require_secret` (a secret input of the SSM
parameter, never a plain value), one SecureString per seed on the seed reader's host only, written at boot
into the root-only files the reader receives as systemd credentials."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from components.placement import seed_parameter_name
from mailinfra.placement.render import SEED_PASSWORD_DIR, reader_host
from mailinfra.plan.model import Plan
from tests.pulumi.conftest import manifest_of, resources_of

PARAMETER = "aws:ssm/parameter:Parameter"


def test_seed_passwords_reach_the_reader_host_only_as_secrets(mock_runs: Callable[[str], dict[str, Any]],
                                                              plans: Callable[[str], Plan]) -> None:
    run, plan = mock_runs("dev"), plans("dev")
    reader = reader_host(plan)
    assert reader is not None and plan.seeds
    params = {r["inputs"]["name"]: r for r in resources_of(run, PARAMETER) if "/placement/" in r["inputs"]["name"]}
    assert set(params) == {seed_parameter_name(plan.stack, reader, s.name) for s in plan.seeds}
    for resource in params.values():
        assert resource["inputs"]["type"] == "SecureString"
        assert "value" in resource["secret_inputs"]  # config.require_secret: a Pulumi secret end to end
        assert resource["parent"] == "placement"
    for host in plan.hosts:
        secrets = {s["path"]: s for s in manifest_of(run, host.name)["secrets"]}
        seeds = {p: s for p, s in secrets.items() if p.startswith(SEED_PASSWORD_DIR + "/")}
        if host.name != reader:
            assert seeds == {}
            continue
        assert set(seeds) == {f"{SEED_PASSWORD_DIR}/{s.name}" for s in plan.seeds}
        for seed in plan.seeds:
            entry = seeds[f"{SEED_PASSWORD_DIR}/{seed.name}"]
            assert entry["parameter"] == seed_parameter_name(plan.stack, reader, seed.name)
            assert (entry["owner"], entry["mode"]) == ("root:root", "0600")
