"""A `tls: dane` host gets what its validating resolver needs from the deployment: the package at first boot,
its files in the config manifest, and DNS egress (unbound recurses itself: the VPC resolver, which security
groups do not filter, never returns the DNSSEC records or AD bit DANE needs)."""

from __future__ import annotations

import yaml

from mailinfra.mta.resolver import UNBOUND_DROP_IN
from tests.pulumi.conftest import manifest_files, resources_of, user_data_of

EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"


def test_dane_hosts_install_unbound_and_may_reach_name_servers(mock_runs, plans):
    run, plan = mock_runs("prod"), plans("prod")
    dane = {h.name for h in plan.hosts if h.mta == "postfix" and h.tls == "dane"}
    assert dane
    for host in plan.hosts:
        packages = yaml.safe_load(user_data_of(run, host.name))["packages"]
        files = manifest_files(run, host.name)
        dns_out = {(r["inputs"]["ipProtocol"], r["inputs"]["fromPort"], r["inputs"]["toPort"], r["inputs"]["cidrIpv4"])
                   for r in resources_of(run, EGRESS)
                   if r["name"].startswith(f"host-{host.name}-") and r["inputs"]["fromPort"] == 53}
        if host.name in dane:
            assert "unbound" in packages, host.name
            assert f"/{UNBOUND_DROP_IN}" in files and "/etc/resolv.conf" in files, host.name
            assert dns_out == {("udp", 53, 53, "0.0.0.0/0"), ("tcp", 53, 53, "0.0.0.0/0")}, host.name
        else:
            assert "unbound" not in packages and not dns_out, host.name
