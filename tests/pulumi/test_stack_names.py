"""Names AWS keeps unique per account (IAM users, SSM parameters) come from the Pulumi stack, so a stack made
with `pulumi stack init staging2 --copy-config-from staging` (which keeps `environment: staging`) can share
the account with the stack it was copied from."""

from __future__ import annotations

from typing import Any

from tests.pulumi.conftest import manifest_of, preview_config, resources_of, run_mock

PARAMETER = "aws:ssm/parameter:Parameter"
IAM_USER = "aws:iam/user:User"


def _account_wide_names(run: dict[str, Any]) -> set[str]:
    # IAM user names are unique per account; SSM parameter names per account and region (IAM User Guide,
    # "IAM object quotas... names must be unique"; SSM PutParameter: ParameterAlreadyExists).
    return {r["inputs"]["name"] for r in resources_of(run, PARAMETER) + resources_of(run, IAM_USER)}


def test_a_copied_stack_shares_no_account_wide_name_with_its_original(mock_runs, tmp_path):
    """GIVEN staging2, a copy of staging's config (environment: staging kept) WHEN previewed THEN none of its
    IAM user or SSM parameter names is one staging creates, and its hosts fetch their own parameters."""
    original = mock_runs("staging")
    config, secret_keys = preview_config("staging")
    assert config["mailinfra:environment"] == "staging"
    copy = run_mock("staging2", tmp_path, config, secret_keys)
    assert "error" not in copy, copy.get("error")
    names = _account_wide_names(copy)
    assert names and not names & _account_wide_names(original)
    assert all(n.startswith("/mailinfra/staging2/") for n in names if n.startswith("/"))
    assert {r["inputs"]["name"] for r in resources_of(copy, IAM_USER)} == {"mailinfra-staging2-ses-smtp"}
    # The environment stays what it is: a label.
    assert {r["inputs"]["tags"]["environment"] for r in resources_of(copy, PARAMETER)} == {"staging"}
    # Every secret a host fetches at boot is one of this stack's parameters.
    parameters = {r["inputs"]["name"] for r in resources_of(copy, PARAMETER)}
    for host in ("mta1", "pmta1"):
        fetched = _fetched_parameters(manifest_of(copy, host))
        assert fetched and fetched <= parameters, host


def _fetched_parameters(manifest: dict[str, Any]) -> set[str]:
    """The SSM parameters a host's mailinfra-apply-config reads: its secrets and the fills of its files."""
    names = {s["parameter"] for s in manifest["secrets"]}
    return names | {parameter for f in manifest["files"] for _, parameter in f.get("fills") or ()}
