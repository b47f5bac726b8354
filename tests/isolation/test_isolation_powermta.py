"""PowerMTA renders `mailinfra:isolations` (issue 14): an isolated IP leaves its pool, an isolated pool x
provider's <domain> blocks go to the stream's route; every config passes the PowerMTA checker."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import yaml

from mailinfra.model.load import STACKS_DIR, validate_config
from mailinfra.mta.pmta_check import check_powermta
from mailinfra.mta.powermta import CONFIG_PATH, render_powermta
from mailinfra.plan.build import build_plan
from mailinfra.plan.model import Plan
from mailinfra.warmup import PROVIDER_DOMAINS

AS_OF = dt.date(2026, 12, 20)
REASON = {"reason": "Spamhaus SBL listing (OPS-413)", "since": "2026-12-18"}


def plan_of(stack: str, isolations: dict[str, object]) -> Plan:
    raw = yaml.safe_load((STACKS_DIR / f"Pulumi.{stack}.yaml").read_text())["config"]
    config = {k.split(":", 1)[1]: v for k, v in raw.items() if k.startswith("mailinfra:")}
    config["isolations"] = isolations
    return build_plan(validate_config(config, stack, f"Pulumi.{stack}.yaml"), AS_OF)


def config_text(plan: Plan, host: str) -> str:
    (file,) = [f for f in render_powermta(plan, plan.host(host)) if f.path == CONFIG_PATH]
    assert check_powermta(file.content, [plan.ip(i).address for i in plan.host(host).ips]) == []
    return file.content


def block(text: str, opening: str) -> str:
    """The text of the block opened by `opening` up to its closing tag (blocks of one kind do not nest)."""
    kind = opening.split(maxsplit=1)[0].lstrip("<")
    start = text.index(opening)
    return text[start:text.index(f"</{kind}>", start)]


def pool_members(text: str, pool: str) -> set[str]:
    return set(re.findall(r"virtual-mta (\S+)", block(text, f"<virtual-mta-pool pool-{pool}>")))


def domain_block(text: str, vmta: str, domain: str) -> str:
    vmta_text = text[text.index(f"<virtual-mta {vmta}>"):]
    return block(vmta_text[:vmta_text.index("</virtual-mta>")], f"<domain {domain}>")


def test_an_isolated_ip_leaves_its_pool_and_sends_nothing() -> None:
    """GIVEN `ip:mc1` isolated (to its siblings) on staging's PowerMTA host THEN pool-mkt-cold lists only
    ip-mc2 (PowerMTA rotates a pool across its members), and ip-mc1's blocks hold its queue."""
    assert pool_members(config_text(plan_of("staging", {}), "pmta1"), "mkt-cold") == {"ip-mc1", "ip-mc2"}
    text = config_text(plan_of("staging", {"ip:mc1": REASON}), "pmta1")
    assert pool_members(text, "mkt-cold") == {"ip-mc2"}
    assert "max-smtp-out 0" in domain_block(text, "ip-mc1", "gmail.com")
    assert "max-smtp-out 0" not in domain_block(text, "ip-mc2", "gmail.com")


@pytest.mark.parametrize(("stack", "host", "target", "pool", "ips"), [
    ("staging", "pmta1", "pool:mkt-cold@gmail", "mkt-cold", ("mc1", "mc2")),
    # bulk-relay: the stream has no throttle fallback, so there is no backoff reroute to reuse.
    ("prod", "bulk2", "pool:net-bulk@gmail", "net-bulk", ("net-bk1", "net-bk9")),
])
def test_an_isolated_pool_x_provider_goes_to_the_route_for_that_provider_only(
        stack: str, host: str, target: str, pool: str, ips: tuple[str, ...]) -> None:
    plan = plan_of(stack, {target: REASON})
    route = plan.route(plan.stream(plan.pool(pool).stream).route or "")
    text = config_text(plan, host)
    hop = f"smtp-hosts [{route.smtp_host}]:{route.port}"
    for ip in ips:
        for domain in PROVIDER_DOMAINS["gmail"]:
            gmail = domain_block(text, f"ip-{ip}", domain)
            assert hop in gmail and "require-starttls yes" in gmail and "auth-username" in gmail
        assert "smtp-hosts" not in domain_block(text, f"ip-{ip}", PROVIDER_DOMAINS["yahoo"][0])
    # Still members, warm values untouched: the same directives as without the isolation, besides the route.
    plain = config_text(plan_of(stack, {}), host)
    assert pool_members(text, pool) == pool_members(plain, pool)
    for ip in ips:
        without_route = [line for line in domain_block(text, f"ip-{ip}", "gmail.com").splitlines()
                         if line.strip() and not line.strip().startswith("#") and line.strip().split()[0]
                         not in ("smtp-hosts", "use-starttls", "require-starttls", "auth-username",
                                 "auth-password")]
        assert without_route == [line for line in domain_block(plain, f"ip-{ip}", "gmail.com").splitlines()
                                 if line.strip()]
