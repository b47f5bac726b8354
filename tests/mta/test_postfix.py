"""Rendered Postfix + OpenDKIM: the real postconf/opendkim accept them, and separation holds."""

from __future__ import annotations

import re
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest

from mailinfra.mta.postfix import plan_instances
from mailinfra.mta.render import render_host
from mailinfra.plan.model import Plan
from tests.tooling import require_tool

MAP_TRANSPORT = re.compile(r"randmap:\{([^}]*)\}")
MASTER_SERVICE = re.compile(r"^(\S+)\s+unix\s+.*\bsmtp$", re.MULTILINE)
BIND = re.compile(r"^(\S+) unix .*\n\s+-o smtp_bind_address=(\S+)", re.MULTILINE)


def _postfix_hosts(plan: Plan) -> list[str]:
    return [h.name for h in plan.hosts if h.mta == "postfix"]


def _instance_dirs(host_dir: Path) -> list[Path]:
    return sorted(p for p in (host_dir / "etc").iterdir() if p.name == "postfix" or p.name.startswith("postfix-"))


def _postconf(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([require_tool("postconf"), *args], capture_output=True, text=True, check=False)


def test_postconf_accepts_every_instance(rendered_stack: tuple[Plan, dict[str, Path]]) -> None:
    """`postconf -c DIR -n` prints no warning at all for every instance of every Postfix host."""
    plan, dirs = rendered_stack
    for host in _postfix_hosts(plan):
        for instance in _instance_dirs(dirs[host]):
            result = _postconf("-c", str(instance.resolve()), "-n")
            assert result.returncode == 0, f"{host}/{instance.name}: {result.stderr}"
            assert result.stderr == "", f"{host}/{instance.name}: {result.stderr}"


def test_every_mapped_transport_exists(rendered_stack: tuple[Plan, dict[str, Path]]) -> None:
    """Each transport a map can choose is a service in that instance's master.cf (postconf -M)."""
    plan, dirs = rendered_stack
    checked = 0
    for host in _postfix_hosts(plan):
        for instance in _instance_dirs(dirs[host]):
            main = (instance / "main.cf").read_text()
            names = {n.strip() for group in MAP_TRANSPORT.findall(main) for n in group.split(",") if n.strip()}
            for name in sorted(names):
                result = _postconf("-c", str(instance.resolve()), "-M", f"{name}/unix")
                assert result.stdout.startswith(name), f"{host}/{instance.name}: {name}: {result.stderr}"
                checked += 1
    assert checked or not _postfix_hosts(plan)


def test_postconf_check_catches_a_typo(tmp_path: Path) -> None:
    """The check can fail: a misspelt parameter is reported on stderr."""
    (tmp_path / "main.cf").write_text("smtp_bind_adress = 192.0.2.1\n")
    (tmp_path / "master.cf").write_text("")
    assert "unused parameter" in _postconf("-c", str(tmp_path), "-n").stderr
    missing = _postconf("-c", str(tmp_path), "-M", "nosuch/unix")
    assert not missing.stdout


def test_opendkim_accepts_config(rendered_stack: tuple[Plan, dict[str, Path]]) -> None:
    """`opendkim -n` (OpenDKIM's configuration check) accepts the rendered config of every Postfix host."""
    plan, dirs = rendered_stack
    opendkim = require_tool("opendkim")
    for host in _postfix_hosts(plan):
        root = dirs[host].resolve()
        conf = root / "etc/opendkim.conf"
        # The config names /etc/opendkim/...; point it at the rendered copy for the check.
        local = root / "opendkim-check.conf"
        local.write_text(conf.read_text().replace("/etc/opendkim/", f"{root}/etc/opendkim/"))
        result = subprocess.run([opendkim, "-n", "-x", str(local)], capture_output=True, text=True, check=False)
        assert (result.returncode, result.stderr) == (0, ""), f"{host}: {result.stderr}"


def test_opendkim_check_catches_unknown_parameter(tmp_path: Path) -> None:
    """The OpenDKIM check can fail: an unknown parameter is a configuration error."""
    conf = tmp_path / "opendkim.conf"
    conf.write_text("Mode s\nSigningTabel refile:/nonexistent\n")
    result = subprocess.run([require_tool("opendkim"), "-n", "-x", str(conf)], capture_output=True, text=True,
                            check=False)
    assert result.returncode != 0


def _bound_addresses(plan: Plan, dirs: dict[str, Path]) -> list[tuple[str, str, str]]:
    """(host, instance, address) of every transport in every instance's master.cf."""
    found = []
    for host in _postfix_hosts(plan):
        for instance in _instance_dirs(dirs[host]):
            found += [(host, instance.name, address)
                      for _, address in BIND.findall((instance / "master.cf").read_text())]
    return found


def test_no_ip_in_two_streams(rendered_stack: tuple[Plan, dict[str, Path]]) -> None:
    """An address is bound by transports of one stream's instance only."""
    plan, dirs = rendered_stack
    stream_of_instance = {f"postfix-{p.name}": p.stream for p in plan.pools}
    streams_by_address: dict[str, set[str]] = defaultdict(set)
    for _, instance, address in _bound_addresses(plan, dirs):
        streams_by_address[address].add(stream_of_instance[instance])
    assert all(len(s) == 1 for s in streams_by_address.values()), streams_by_address


def test_every_pool_ip_on_exactly_one_host_and_instance(rendered_stack: tuple[Plan, dict[str, Path]]) -> None:
    """Each IP of a Postfix-hosted pool is bound in exactly one instance of exactly one host, its pool's."""
    plan, dirs = rendered_stack
    placements: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for host, instance, address in _bound_addresses(plan, dirs):
        placements[address].add((host, instance))
    for ip in plan.ips:
        if plan.host(ip.host).mta != "postfix":
            continue
        assert placements[ip.address] == {(ip.host, f"postfix-{ip.pool}")}, ip.name


def test_every_stream_has_a_signing_entry(rendered_stack: tuple[Plan, dict[str, Path]]) -> None:
    """Every stream a Postfix host sends for has its sending domain and active selector in the SigningTable."""
    plan, dirs = rendered_stack
    for host in _postfix_hosts(plan):
        signing = (dirs[host] / "etc/opendkim/SigningTable").read_text()
        keys = (dirs[host] / "etc/opendkim/KeyTable").read_text()
        for stream in (plan.stream(s) for s in plan.host(host).streams):
            name = f"{stream.dkim_selector}._domainkey.{stream.sending_domain}"
            assert f"*@{stream.sending_domain} {name}\n" in signing
            assert re.search(rf"^{re.escape(name)} {re.escape(stream.sending_domain)}:{stream.dkim_selector}:/etc/"
                             r"opendkim/keys/\S+$", keys, re.MULTILINE)


def test_instances_fail_closed(rendered_stack: tuple[Plan, dict[str, Path]]) -> None:
    """Every instance: error default transport, enforced bind address, tempfail milter, mynetworks = injection."""
    plan, dirs = rendered_stack
    for host in _postfix_hosts(plan):
        for instance in plan_instances(plan, plan.host(host)):
            result = _postconf("-c", str((dirs[host] / instance.config_dir.lstrip("/")).resolve()), "-h",
                               "default_transport", "smtp_bind_address_enforce", "milter_default_action",
                               "mynetworks", "smtpd_relay_restrictions")
            default, enforce, milter, networks, relay = result.stdout.splitlines()
            assert default.startswith("error:")
            assert (enforce, milter) == ("yes", "tempfail")
            assert networks.split(", ") == ["127.0.0.0/8", *plan.host(host).injection_cidrs]
            assert relay == "permit_mynetworks, reject_unauth_destination"


def test_fallback_relay_follows_route(rendered_stack: tuple[Plan, dict[str, Path]]) -> None:
    """A stream with a route has it as smtp_fallback_relay, never on the host's own name."""
    plan, _ = rendered_stack
    for host in _postfix_hosts(plan):
        for instance in plan_instances(plan, plan.host(host)):
            route = plan.route(instance.stream.route) if instance.stream.route else None
            if route is None:
                assert instance.fallback == ()
            elif route.kind == "hosts":
                assert instance.fallback == tuple(f"[{plan.host(h).fqdn}]:25" for h in route.hosts)
                assert f"[{plan.host(host).fqdn}]:25" not in instance.fallback
            else:
                assert instance.fallback == (f"[{route.smtp_host}]:{route.port}",)


def test_secrets_are_placeholders(rendered_stack: tuple[Plan, dict[str, Path]]) -> None:
    """SASL files are 0600 and carry marked placeholders for every password, listed on the file."""
    plan, _ = rendered_stack
    for host in _postfix_hosts(plan):
        for item in render_host(plan, host):
            if item.path.endswith("sasl_passwd"):
                assert item.mode == 0o600
                assert item.secret_placeholders
                for name in item.secret_placeholders:
                    assert f"@@SECRET:{name}@@" in item.content
            else:
                assert "@@SECRET:" not in item.content


@pytest.mark.parametrize("host", ["nosuch"])
def test_unknown_host_is_a_usage_error(stack_plan: Plan, host: str) -> None:
    """render_host names the known hosts when asked for another one."""
    from mailinfra.errors import UsageError

    with pytest.raises(UsageError, match="expected a host of stack"):
        render_host(stack_plan, host)


def test_postfix_route_target_is_refused(stack_plan: Plan) -> None:
    """GIVEN a hosts route ending on a Postfix host WHEN rendering THEN a PlanError names the route and host."""
    import dataclasses

    from mailinfra.errors import PlanError
    from mailinfra.plan.model import RoutePlan

    postfix = [h.name for h in stack_plan.hosts if h.mta == "postfix"]
    route = RoutePlan("to-postfix", "hosts", None, 25, None, None, None, (postfix[0],), None, ())
    broken = dataclasses.replace(stack_plan, routes=(*stack_plan.routes, route))
    with pytest.raises(PlanError, match=f"route to-postfix: hosts {postfix[0]} run Postfix"):
        render_host(broken, postfix[0])
