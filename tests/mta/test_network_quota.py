"""AWS's security group rule quota, with prefix lists counted as AWS counts them (mailinfra.mta.network)."""

from __future__ import annotations

from mailinfra.model.load import load_stack
from mailinfra.mta.network import RULES_PER_DIRECTION, HostNetwork, NetworkRule, check_rule_quota, plan_host_network
from mailinfra.plan import build_plan


def _peers(count: int) -> NetworkRule:
    return NetworkRule("peer-r", "ingress", 25, "route r",
                       peers=tuple((f"ip{i}", f"192.0.2.{i}") for i in range(count)))


def test_a_prefix_list_counts_as_its_max_entries() -> None:
    """"If you create a prefix list with 20 maximum entries and you reference that prefix list in a security
    group rule, this counts as 20 security group rules" (Amazon VPC quotas, prefix lists): one rule resource
    of 59 peers plus two CIDR rules is 61 against the default 60 inbound rules per group."""
    cidr = NetworkRule("inject", "ingress", 10025, "injection", cidr="10.0.0.0/8")
    assert check_rule_quota(HostNetwork("h", (_peers(58), cidr, cidr), ())) == []
    assert check_rule_quota(HostNetwork("h", (_peers(59), cidr, cidr), ())) == [f"ingress: 61 > {RULES_PER_DIRECTION}"]


def test_prod_peers_of_a_route_are_one_rule_sized_to_its_peers() -> None:
    """Every prod host that a hosts route targets admits that route's sending EIPs as one rule (one prefix
    list), not one resource per EIP, and within the quota as AWS counts it."""
    plan = build_plan(load_stack("prod"))
    targets = {name for route in plan.routes if route.kind == "hosts" for name in route.hosts}
    assert targets
    for name in sorted(targets):
        network = plan_host_network(plan, plan.host(name))
        peer_rules = [rule for rule in network.ingress if rule.key.startswith("peer-")]
        assert len({rule.key for rule in peer_rules}) == len(peer_rules), name
        assert peer_rules and all(len(rule.peers) > 1 for rule in peer_rules), name
        assert all(rule.quota_weight == len(rule.peers) for rule in peer_rules), name
        assert check_rule_quota(network) == [], name
