"""Rendered Postfix + OpenDKIM: the real postconf/opendkim accept them, and separation holds."""

from __future__ import annotations

import re
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest

from mailinfra.mta.opendkim import plan_signers
from mailinfra.mta.postfix import PRIMARY_LOOPBACK, dsn_transports, plan_instances
from mailinfra.mta.render import render_host
from mailinfra.plan.model import Plan
from tests.tooling import require_tool

MAP_TRANSPORT = re.compile(r"randmap:\{([^}]*)\}")
MASTER_SERVICE = re.compile(r"^(\S+)\s+unix\s+.*\bsmtp$", re.MULTILINE)
MILTER_ENTRY = re.compile(r"\{\s*(unix:\S+),\s*default_action=(\w+)\s*\}")
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
    """`opendkim -n` (OpenDKIM's configuration check) accepts every signer's rendered config of every
    Postfix host; each signer has one SignatureAlgorithm, its own Unix socket and PID file."""
    plan, dirs = rendered_stack
    opendkim = require_tool("opendkim")
    for host in _postfix_hosts(plan):
        root = dirs[host].resolve()
        signers = plan_signers(plan, plan.host(host))
        assert len({s.socket_path for s in signers}) == len({s.pid_file for s in signers}) == len(signers)
        for signer in signers:
            conf = (root / signer.conf.lstrip("/")).read_text()
            assert re.search(rf"^SignatureAlgorithm\s+{signer.algorithm}$", conf, re.MULTILINE)
            # A Unix-domain socket (an inet one stalls ~40 ms per milter round trip): the path Postfix names.
            assert re.findall(r"^Socket\s+(\S+)$", conf, re.MULTILINE) == [f"local:{signer.socket_path}"]
            assert signer.milter == f"unix:{signer.socket_path}" and signer.socket_path.startswith("/run/opendkim/")
            # The config names /etc/opendkim/...; point it at the rendered copy for the check.
            local = root / f"{signer.service}-check.conf"
            local.write_text(conf.replace("/etc/opendkim/", f"{root}/etc/opendkim/"))
            result = subprocess.run([opendkim, "-n", "-x", str(local)], capture_output=True, text=True,
                                    check=False)
            assert (result.returncode, result.stderr) == (0, ""), f"{host}/{signer.service}: {result.stderr}"


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
    """Every stream a Postfix host sends for has its sending domain and active RSA selector in the RSA
    signer's SigningTable, its Ed25519 selector (if any) in the Ed25519 signer's, both in the KeyTable;
    each SigningTable names only its signer's selectors, and every milter is on each instance's list."""
    plan, dirs = rendered_stack
    for host in _postfix_hosts(plan):
        signers = {s.algorithm: s for s in plan_signers(plan, plan.host(host))}
        tables = {a: (dirs[host] / s.signing_table.lstrip("/")).read_text() for a, s in signers.items()}
        keys = (dirs[host] / "etc/opendkim/KeyTable").read_text()
        for stream in (plan.stream(s) for s in plan.host(host).streams):
            wanted = [("rsa-sha256", stream.dkim_selector)]
            wanted += [("ed25519-sha256", stream.ed25519_selector)] if stream.ed25519_selector else []
            for algorithm, selector in wanted:
                name = f"{selector}._domainkey.{stream.sending_domain}"
                assert f"*@{stream.sending_domain} {name}\n" in tables[algorithm]
                assert all(name not in table for a, table in tables.items() if a != algorithm)
                assert re.search(rf"^{re.escape(name)} {re.escape(stream.sending_domain)}:{selector}:/etc/"
                                 r"opendkim/keys/\S+$", keys, re.MULTILINE)
        for instance in plan_instances(plan, plan.host(host)):
            milters = _postconf("-c", str((dirs[host] / instance.config_dir.lstrip("/")).resolve()), "-h",
                                "smtpd_milters").stdout.strip()
            # Per-milter settings (Postfix >= 3.0, MILTER_README "Different settings for different Milter
            # applications"): `{ socket, default_action=... }` per signer, in the signers' order.
            assert MILTER_ENTRY.findall(milters) == [(s.milter, s.default_action) for s in signers.values()]


def test_only_the_rsa_signer_is_required(rendered_stack: tuple[Plan, dict[str, Path]]) -> None:
    """A dead Ed25519 signer lets mail go on RSA-signed (default_action=accept for its milter, On-Default
    accept in its opendkim.conf); a dead RSA signer defers it (tempfail): every receiver verifies RSA
    (RFC 8301), few Ed25519 (RFC 8463 adds it beside RSA). Postfix's own parser reads the per-milter
    action: postconf -h returns the value it will use."""
    plan, dirs = rendered_stack
    for host in _postfix_hosts(plan):
        signers = plan_signers(plan, plan.host(host))
        actions = {s.algorithm: s.default_action for s in signers}
        assert actions["rsa-sha256"] == "tempfail"
        assert actions.get("ed25519-sha256", "accept") == "accept"
        for instance in plan_instances(plan, plan.host(host)):
            milters = _postconf("-c", str((dirs[host] / instance.config_dir.lstrip("/")).resolve()), "-h",
                                "smtpd_milters").stdout.strip()
            assert dict(MILTER_ENTRY.findall(milters)) == {s.milter: actions[s.algorithm]
                                                           for s in signers}
        for signer in signers:
            conf = (dirs[host] / signer.conf.lstrip("/")).read_text()
            on_default = re.findall(r"^On-Default\s+(\S+)$", conf, re.MULTILINE)
            assert on_default == ([] if signer.required else ["accept"]), signer.service


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


def _top_level_tables(value: str) -> list[str]:
    """The tables of a Postfix map list (`a:{...}, b:{...}`), split at commas outside braces."""
    tables, depth, current = [], 0, ""
    for char in value:
        depth += {"{": 1, "}": -1}.get(char, 0)
        if char == "," and depth == 0:
            tables.append(current.strip())
            current = ""
        else:
            current += char
    return [t for t in [*tables, current.strip()] if t]


def _lookup(config: str, tables: list[str], key: str) -> str:
    """What the first table of the list answers for `key` (postmap -q, as trivial-rewrite would)."""
    for table in tables:
        result = subprocess.run([require_tool("postmap"), "-c", config, "-q", key, table], capture_output=True,
                                text=True, check=False)
        assert result.stderr == "", f"{table}: {result.stderr}"
        if result.returncode == 0:
            return result.stdout.strip()
    return ""


def test_dsns_to_own_return_paths_go_to_the_primary(rendered_stack: tuple[Plan, dict[str, Path]]) -> None:
    """On a bounce host, every return-path domain resolves (transport_maps) to the primary on loopback by
    an explicit [nexthop] (no MX lookup, so no 'loops back to myself'); elsewhere the stream's own return
    path leaves by its pool's transports (normal MX routing). Each instance's myhostname differs from
    the primary's, so the primary's greeting is not taken for a loop."""
    plan, dirs = rendered_stack
    return_paths = {s.return_path for s in plan.streams}
    for host in _postfix_hosts(plan):
        primary = _postconf("-c", str((dirs[host] / "etc/postfix").resolve()), "-h", "myhostname").stdout.strip()
        for instance in plan_instances(plan, plan.host(host)):
            config = str((dirs[host] / instance.config_dir.lstrip("/")).resolve())
            hostname, maps = _postconf("-c", config, "-h", "myhostname", "transport_maps").stdout.splitlines()
            assert hostname != primary
            tables = _top_level_tables(maps)
            if plan.host(host).accepts_bounces:
                for domain in return_paths:
                    assert _lookup(config, tables, domain) == f"smtp:[{PRIMARY_LOOPBACK}]:25", (host, instance.name)
                assert _postconf("-c", config, "-M", "smtp/unix").stdout.startswith("smtp")
            else:
                transport = _lookup(config, tables, instance.stream.return_path)
                # The pool's IPs (their DSN twins when the stream has a route: test_fallback.py).
                names = {t.name for t in (*instance.transports, *dsn_transports(instance))}
                assert transport in names, (host, instance.name, transport)
        primary_main = (dirs[host] / "etc/postfix/main.cf").read_text()
        if plan.host(host).accepts_bounces:
            # The primary accepts them on every address, loopback included.
            assert "inet_interfaces = all" in primary_main
