"""`tls: dane` is DANE on the host: Postfix asks for DNSSEC and a local validating resolver answers with the AD bit.

Postfix uses TLSA records only from DNSSEC-validated answers (postconf(5) smtp_dns_support_level; TLS_README
"DANE"); the VPC's Route 53 Resolver never sets the AD bit even with DNSSEC validation on (Route 53 Developer
Guide, "Enabling DNSSEC validation"), so without a resolver on the host `dane` is opportunistic TLS.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from mailinfra.model.load import load_stack
from mailinfra.mta.render import render_host
from mailinfra.mta.resolver import DHCLIENT_HOOK, UNBOUND_DROP_IN
from mailinfra.plan import Plan, build_plan
from tests.mta.conftest import write_host
from tests.tooling import require_tool


@pytest.fixture(scope="module")
def prod() -> Plan:
    return build_plan(load_stack("prod"))


def _dane_hosts(plan: Plan) -> list[str]:
    hosts = [h.name for h in plan.hosts if h.mta == "postfix" and h.tls == "dane"]
    assert hosts, "prod has tls: dane hosts (the reference stack exercises DANE)"
    return hosts


def test_a_dane_host_resolves_through_its_own_validating_resolver(prod):
    for host in _dane_hosts(prod):
        files = {f.path: f.content for f in render_host(prod, host)}
        # Postfix trusts the AD bit of whatever resolver answers (it sets RES_TRUSTAD): only loopback is safe.
        nameservers = re.findall(r"^nameserver\s+(\S+)", files["etc/resolv.conf"], re.MULTILINE)
        assert nameservers == ["127.0.0.1"], host
        unbound = files[UNBOUND_DROP_IN]
        assert re.search(r"^\s*interface:\s*127\.0\.0\.1\s*$", unbound, re.MULTILINE), host
        assert re.search(r'^\s*module-config:\s*"validator iterator"\s*$', unbound, re.MULTILINE), host
        assert "forward-zone" not in unbound  # the VPC resolver strips the signatures unbound must check
        assert "make_resolv_conf" in files[DHCLIENT_HOOK]


def test_other_hosts_keep_the_vpc_resolver(prod):
    for host in (h for h in prod.hosts if h.name not in _dane_hosts(prod)):
        paths = {f.path for f in render_host(prod, host.name)}
        assert "etc/resolv.conf" not in paths and UNBOUND_DROP_IN not in paths, host.name


def test_postfix_asks_for_dnssec_on_every_dane_instance(prod, tmp_path: Path):
    """Real `postconf -c DIR -n`: each pool instance of a dane host does DANE with DNSSEC lookups."""
    postconf = require_tool("postconf")
    checked = 0
    for host in _dane_hosts(prod):
        root = write_host(tmp_path / host, render_host(prod, host))
        for main in sorted(root.glob("etc/postfix-*/main.cf")):
            done = subprocess.run([postconf, "-c", str(main.parent.resolve()), "-n"],
                                  capture_output=True, text=True, check=False)
            assert done.returncode == 0 and done.stderr == "", done.stderr
            settings = dict(line.split(" = ", 1) for line in done.stdout.splitlines() if " = " in line)
            assert settings["smtp_tls_security_level"] == "dane", main
            assert settings["smtp_dns_support_level"] == "dnssec", main
            checked += 1
    assert checked


def test_unbound_accepts_the_drop_in(prod, tmp_path: Path):
    """Real `unbound-checkconf` on Debian's layout: our drop-in plus the package's root trust anchor file."""
    checkconf = require_tool("unbound-checkconf")
    host = _dane_hosts(prod)[0]
    files = {f.path: f.content for f in render_host(prod, host)}
    drop_in = tmp_path / "mailinfra-dane.conf"
    drop_in.write_text(files[UNBOUND_DROP_IN])
    config = tmp_path / "unbound.conf"
    # The package's own settings, with its directories moved under tmp_path (no unbound installed here).
    config.write_text(f'server:\n    directory: "{tmp_path}"\n    chroot: ""\n    username: ""\n'
                      f'    auto-trust-anchor-file: "{tmp_path}/root.key"\ninclude: "{drop_in}"\n')
    # The root KSK-2017 DS record (IANA root-anchors.xml), the anchor Debian's unbound starts from.
    (tmp_path / "root.key").write_text(
        ". IN DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D\n")
    done = subprocess.run([checkconf, str(config)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
