"""Postfix applies `mailinfra:isolations` (issue 14): an isolated pool or IP leaves the weighted rotation for
the providers it covers, and its mail goes to the declared alternative; checked with the real postconf and
postmap reading the rendered instance (postconf(5) "randmap": each entry is picked with equal probability)."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
from collections import Counter
from pathlib import Path

import pytest
import yaml

from mailinfra.model.load import validate_config
from mailinfra.mta.postfix import ROUTE_TRANSPORT, plan_instances
from mailinfra.mta.render import render_host
from mailinfra.plan.build import build_plan
from mailinfra.plan.model import Plan
from mailinfra.review.diff import diff_plans
from mailinfra.warmup import PROVIDER_DOMAINS
from tests.isolation.test_isolation_config import config_with
from tests.mta.conftest import STACKS_DIR, write_host
from tests.tooling import require_tool

# dev on 2026-12-20: every pool of mta1 sends to every provider (the preconditions below check it).
AS_OF = dt.date(2026, 12, 20)
DRAWS = 60  # a transport with a 1/2 share is missed 60 times with p = 1e-18
REASON = {"reason": "Gmail 550 5.7.1 on the cold pool (OPS-412)", "since": "2026-12-18"}


def plan_with(isolations: dict[str, object]) -> Plan:
    return build_plan(validate_config(config_with(isolations), "dev", "Pulumi.dev.yaml"), AS_OF)


def rendered_instance(plan: Plan, pool: str, root: Path) -> Path:
    write_host(root, render_host(plan, "mta1"))
    return (root / "etc" / f"postfix-{pool}").resolve()


def postconf(directory: Path, *args: str) -> str:
    result = subprocess.run([require_tool("postconf"), "-c", str(directory), *args], capture_output=True,
                            text=True, check=False)
    # Any stderr line is an error (unused parameter, overriding entry).
    assert result.returncode == 0 and result.stderr == "", result.stderr
    return result.stdout


def picks(directory: Path, domain: str) -> Counter[str]:
    """What Postfix's own transport_maps lookup (postmap -q, each table in turn as trivial-rewrite reads
    them) returns for `domain`, DRAWS times: the randmap is drawn anew on every lookup."""
    maps = postconf(directory, "-h", "transport_maps").strip()
    tables = re.findall(r"pipemap:\{inline:\{[^}]*\}, randmap:\{[^}]*\}\}|inline:\{[^}]*\}", maps)
    postmap = require_tool("postmap")
    result: Counter[str] = Counter()
    for _ in range(DRAWS):
        for table in tables:
            done = subprocess.run([postmap, "-c", str(directory), "-q", domain, table], capture_output=True,
                                  text=True, check=False)
            if done.returncode == 0:
                result[done.stdout.strip()] += 1
                break
    return result


def test_an_isolated_pool_x_provider_goes_to_the_route_for_that_provider_only(tmp_path: Path) -> None:
    """GIVEN `pool:mkt-cold@gmail` isolated to its route WHEN Postfix looks up gmail.com and yahoo.com
    THEN every gmail.com pick is the route transport towards the relay, yahoo.com still rotates across
    the pool's own IPs, and the master.cf service binds to a pool address with no fallback of its own."""
    plain = rendered_instance(plan_with({}), "mkt-cold", tmp_path / "plain")
    assert {p.split(":")[0] for p in picks(plain, "gmail.com")} == {"mc1_gmail", "mc2_gmail"}  # precondition
    plan = plan_with({"pool:mkt-cold@gmail": REASON})
    directory = rendered_instance(plan, "mkt-cold", tmp_path / "isolated")
    relay = plan.route("relay")
    assert picks(directory, "gmail.com") == Counter({f"{ROUTE_TRANSPORT}:[{relay.smtp_host}]:{relay.port}": DRAWS})
    assert set(picks(directory, "yahoo.com")) == {"mc1_yahoo", "mc2_yahoo"}
    service = postconf(directory, "-M", f"{ROUTE_TRANSPORT}/unix")
    assert f"smtp_bind_address={plan.ip('mc1').address}" in service and "smtp_fallback_relay=" in service
    # Mail already held by an isolated transport goes back to the queue and is looked up again.
    deferred = postconf(directory, "-h", "defer_transports").replace(",", " ").split()
    assert set(deferred) >= {"mc1_gmail", "mc2_gmail"} and not {"mc1_yahoo", "mc2_yahoo"} & set(deferred)
    # The relay authenticates (SASL) and must verify its certificate, as for smtp_fallback_relay.
    assert postconf(directory, "-h", "smtp_sasl_auth_enable").strip() == "yes"


def test_an_isolated_ip_hands_its_share_to_its_siblings_at_their_own_pace(tmp_path: Path) -> None:
    """GIVEN `ip:tx2` isolated (to its siblings) WHEN Postfix looks up every provider's domain THEN only
    tx1 is ever picked, and tx1's rate delays are those of the plan without the isolation (its cap does not
    grow: the siblings carry the share within their own limits)."""
    plain_dir = rendered_instance(plan_with({}), "tx", tmp_path / "plain")
    assert "tx2_gmail" in picks(plain_dir, "gmail.com")  # precondition: tx2 sends
    plan = plan_with({"ip:tx2": REASON})
    directory = rendered_instance(plan, "tx", tmp_path / "isolated")
    for provider in ("gmail", "yahoo", "microsoft"):
        domain = PROVIDER_DOMAINS[provider][0]
        assert set(picks(directory, domain)) == {f"tx1_{provider}"}, provider
    assert tx1_parameters(directory) == tx1_parameters(plain_dir) != {}
    assert plan.warmup == plan_with({}).warmup  # warm state intact


def tx1_parameters(directory: Path) -> dict[str, str]:
    pairs = (line.partition(" = ") for line in postconf(directory, "-n").splitlines())
    return {name: value for name, _, value in pairs if name.startswith("tx1_")}


def test_an_isolation_never_rotates_onto_another_streams_pool() -> None:
    """Every rotation entry of every instance is one of that pool's own transports or its stream's route."""
    plan = plan_with({"pool:mkt-cold": REASON, "ip:bk1": REASON, "pool:tx@microsoft": REASON})
    for instance in plan_instances(plan, plan.host("mta1")):
        own = {t.name for t in instance.transports}
        route = set(instance.route_transport.hops()) if instance.route_transport else set()
        for provider, entries in instance.rotation.items():
            assert set(entries) <= own | route, (instance.pool, provider, entries)
        routed = any(set(entries) & route for entries in instance.rotation.values())
        assert routed == (instance.pool in ("mkt-cold", "tx")), instance.pool


@pytest.mark.parametrize(("target", "pool"), [("pool:mkt-cold@gmail", "mkt-cold"), ("pool:tx", "tx")])
def test_the_review_names_the_route_the_rendering_sends_to(target: str, pool: str) -> None:
    """What `mailinfra review` says moves where is where the rendered rotation sends it."""
    before, after = plan_with({}), plan_with({target: REASON})
    (change,) = diff_plans(before, after).isolations
    (instance,) = [i for i in plan_instances(after, after.host("mta1")) if i.pool == pool]
    assert instance.route_transport is not None
    route = after.route(change.destination.removeprefix("route "))
    expected = (f"[{route.smtp_host}]:{route.port}",)
    assert instance.route_transport.destinations == expected
    providers = [p for p in instance.rotation if after.isolations[0].provider in (None, p)]
    for provider in providers:
        assert instance.rotation[provider] == instance.route_transport.hops(), provider


def test_an_isolated_pool_still_returns_its_dsns_from_its_own_ips(tmp_path: Path) -> None:
    """GIVEN prod's com-bulk isolated to its route WHEN bulk1 (not the bounce MX) renders THEN the return path's
    rotation names only the IPs' `_dsn` services, each one master.cf defines (postconf -M), never the route's
    `route:[relay]:587` hop (it was rendered as `route:[...]:587_dsn`, a port that does not exist, and would
    have sent our bounces through the relay)."""
    raw = yaml.safe_load((STACKS_DIR / "Pulumi.prod.yaml").read_text())["config"]
    config = {k.split(":", 1)[1]: v for k, v in raw.items() if k.startswith("mailinfra:")}
    config["isolations"] = {"pool:com-bulk": REASON}
    plan = build_plan(validate_config(config, "prod", "Pulumi.prod.yaml"), AS_OF)
    write_host(tmp_path, render_host(plan, "bulk1"))
    directory = (tmp_path / "etc" / "postfix-com-bulk").resolve()
    return_path = plan.stream(plan.pool("com-bulk").stream).return_path
    table = next(t for t in re.findall(r"pipemap:\{inline:\{[^}]*\}, randmap:\{[^}]*\}\}",
                                       postconf(directory, "-h", "transport_maps")) if f"{return_path}=" in t)
    services = re.search(r"randmap:\{ ([^}]*) \}", table)
    assert services is not None
    names = [n.strip() for n in services[1].split(",")]
    assert names and all(n.endswith("_dsn") and ":" not in n for n in names), names
    for name in names:
        assert postconf(directory, "-M", f"{name}/unix").startswith(name), name
