"""The review's cost section: the monthly cost before and after the change, by component (like Infracost).

Both sides are priced with the working tree's volume assumptions and the pinned price table, so the delta is
what the config change does, not a change of assumptions.
"""

from __future__ import annotations

from mailinfra.cost import cost_plan, load_aws_prices, usage_of
from mailinfra.errors import ConfigErrors, MailinfraError
from mailinfra.model.load import Stack
from mailinfra.plan.model import Plan


def render_cost_delta(base_stack: Stack | None, base: Plan | None, head_stack: Stack, head: Plan) -> list[str]:
    usage = usage_of(head_stack)
    try:
        after = cost_plan(head_stack, head, usage).estimate
        before = cost_plan(base_stack, base, usage).estimate if base_stack and base else None
    except (ConfigErrors, MailinfraError) as exc:
        # A review must not fail on pricing: say why it is not priced (an unpriced region or instance type).
        return ["### Cost", "", f"Not priced: {str(exc).splitlines()[0]}", ""]
    old = before.by_component() if before else {}
    new = after.by_component()
    # Every EIP is protected and retained (components/ip_pool.py): removing an IP from the stack leaves its
    # address allocated, and AWS bills an allocated public IPv4 address per hour whether associated or not.
    retained = _removed_ips(base, head)
    prices = load_aws_prices()
    retained_usd = len(retained) * prices.hours_per_month * prices.global_.public_ipv4_hour.usd
    if retained:
        new["Public IPv4"] = new.get("Public IPv4", 0.0) + retained_usd
    total_old, total_new = sum(old.values()), sum(new.values())
    volume = (f"{usage.messages_per_month:,.0f} messages/month" if usage.stated
              else "no stated volume (usage lines at 0)")
    note = (f"_Monthly, list prices of {after.prices_date} ({after.prices_path}), {after.region}, at {volume}; "
            f"`mailinfra cost {head_stack.name}` lists every line with its source._")
    changed = [c for c in sorted({*old, *new}) if abs(new.get(c, 0.0) - old.get(c, 0.0)) >= 0.005]
    if not changed:
        kept = (f" (removed IPs {', '.join(retained)} keep their retained Elastic IPs, still billed)"
                if retained else "")
        return ["### Cost", "", f"No cost change: ${total_new:,.2f} a month{kept}.", "", note, ""]
    out = [f"### Cost ({_signed(total_new - total_old)} a month)", "",
           "| component | before | after | change |", "|---|---:|---:|---:|"]
    for c in changed:
        was, now = old.get(c, 0.0), new.get(c, 0.0)
        out.append(f"| {c} | ${was:,.2f} | ${now:,.2f} | {_signed(now - was)} |")
    out += [f"| **total** | ${total_old:,.2f} | ${total_new:,.2f} | **{_signed(total_new - total_old)}** |", ""]
    if retained:
        out += [f"Removed IPs {', '.join(retained)}: their Elastic IPs are retained (protect, retain_on_delete), so "
                f"they stay allocated and billed (${retained_usd:,.2f} a month, counted above) until released by "
                "hand (`aws ec2 release-address`).", ""]
    return [*out, note, ""]


def _removed_ips(base: Plan | None, head: Plan) -> list[str]:
    """IPs of the base that the head no longer has under their name or as a previous name (a rename)."""
    if base is None:
        return []
    kept = {name for ip in head.ips for name in (ip.name, *ip.previous_names)}
    return sorted(ip.name for ip in base.ips if ip.name not in kept)


def insert_cost_section(markdown: str, section: list[str]) -> str:
    """The cost section goes before the topology diagram (the comment's last section), else at the end."""
    text = "\n".join(section)
    marker = "### Topology"
    at = markdown.rfind(marker)
    return markdown[:at] + text + "\n" + markdown[at:] if at >= 0 else markdown.rstrip("\n") + "\n\n" + text


def _signed(usd: float) -> str:
    return f"+${usd:,.2f}" if usd >= 0 else f"-${-usd:,.2f}"
