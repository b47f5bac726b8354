"""PowerMTA: relay and SES fallbacks require STARTTLS; the config names a postmaster.

PowerMTA cannot be installed here: the directives are those of the PowerMTA 5.0 User's Guide (<domain>
`use-starttls`, `require-starttls`; top-level `postmaster`), and pmta_check accepts them where the Guide does.
Without `require-starttls`, PowerMTA sends to a relay that does not offer STARTTLS in plaintext, credentials
(`auth-password`) included.
"""

from __future__ import annotations

import re
from pathlib import Path

from mailinfra.plan.model import Plan

BLOCK = re.compile(r"^<virtual-mta (fallback-\S+)>\n(.*?)^</virtual-mta>", re.MULTILINE | re.DOTALL)


def test_relay_and_ses_fallbacks_require_starttls(rendered_stack: tuple[Plan, dict[str, Path]]) -> None:
    plan, dirs = rendered_stack
    relays = {f"[{r.smtp_host}]:{r.port}" for r in plan.routes if r.kind in ("relay", "ses")}
    for host in (h for h in plan.hosts if h.mta == "powermta"):
        config = (dirs[host.name] / "etc/pmta/config").read_text()
        for name, body in BLOCK.findall(config):
            hosts = set(re.search(r"smtp-hosts (.*)", body).group(1).split())  # type: ignore[union-attr]
            if hosts & relays:
                assert re.search(r"^\s+use-starttls yes$", body, re.MULTILINE), (host.name, name)
                assert re.search(r"^\s+require-starttls yes$", body, re.MULTILINE), (host.name, name)
            if "auth-password" in body:
                assert "require-starttls yes" in body, (host.name, name)


def test_every_powermta_config_names_a_postmaster_whose_domain_receives_mail(
        rendered_stack: tuple[Plan, dict[str, Path]]) -> None:
    plan, dirs = rendered_stack
    mx_names = {r.name for r in plan.records if r.type == "MX"}
    for host in (h for h in plan.hosts if h.mta == "powermta"):
        config = (dirs[host.name] / "etc/pmta/config").read_text()
        found = re.findall(r"^postmaster (\S+)$", config, re.MULTILINE)
        assert len(found) == 1, host.name
        assert found[0].split("@")[1] in mx_names, found
