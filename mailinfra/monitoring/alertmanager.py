"""Alertmanager's config: one receiver with the stack's routing (email, webhooks), grouped per pool x
provider; the limit-level complaint alert inhibits its target-level twin (pure)."""

from __future__ import annotations

from typing import Any

from mailinfra.plan.model import Plan

RECEIVER = "mailinfra"


def render_alertmanager_config(plan: Plan) -> dict[str, Any]:
    routing = plan.monitoring.routing
    receiver: dict[str, Any] = {"name": RECEIVER}
    if routing.email_to:
        sender = routing.email_from or f"alerts@{plan.streams[0].org_domain}"
        receiver["email_configs"] = [{"to": address, "from": sender, "smarthost": routing.email_smarthost,
                                      "require_tls": True, "send_resolved": True} for address in routing.email_to]
    if routing.webhook_urls:
        receiver["webhook_configs"] = [{"url": url, "send_resolved": True} for url in routing.webhook_urls]
    return {
        # No receiver configs = alerts go nowhere (valid, and flagged by the audit: monitoring-no-routing).
        "route": {"receiver": RECEIVER, "group_by": ["alertname", "stream", "pool", "provider"],
                  "group_wait": "30s", "group_interval": "5m", "repeat_interval": "4h"},
        "receivers": [receiver],
        "inhibit_rules": [{
            "source_matchers": ['alertname="MailinfraComplaintRateAboveLimit"'],
            "target_matchers": ['alertname="MailinfraComplaintRateAboveTarget"'],
            "equal": ["stream", "pool", "provider"]}],
    }
