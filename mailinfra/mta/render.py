"""Every rendered file of a host, by its MTA: the one entry point for preview, `mailinfra render` and tests."""

from __future__ import annotations

from mailinfra.errors import PlanError, UsageError
from mailinfra.metrics.render import render_metrics
from mailinfra.mta.files import RenderedFile
from mailinfra.mta.opendkim import render_opendkim
from mailinfra.mta.postfix import render_postfix
from mailinfra.plan.model import Plan


def render_host(plan: Plan, host: str) -> tuple[RenderedFile, ...]:
    """The files of host `host` (paths relative to the host's root, e.g. etc/postfix/main.cf)."""
    known = [h.name for h in plan.hosts]
    if host not in known:
        raise UsageError(f"HOST: received {host!r}, expected a host of stack {plan.stack}: {', '.join(known)}")
    _check_route_targets(plan)
    host_plan = plan.host(host)
    if host_plan.mta == "powermta":
        from mailinfra.mta.powermta import render_powermta

        return render_powermta(plan, host_plan)
    from mailinfra.shaping.plan import render_shaping

    # The automatic response (mailinfra.shaping) acts on the Postfix instances rendered here.
    return (render_postfix(plan, host_plan) + render_opendkim(plan, host_plan)
            + render_metrics(plan, host_plan) + render_shaping(plan, host_plan))


def render_all(plan: Plan) -> dict[str, tuple[RenderedFile, ...]]:
    """host name -> its files, for every host of the plan."""
    return {host.name: render_host(plan, host.name) for host in plan.hosts}


def _check_route_targets(plan: Plan) -> None:
    """A `hosts` route must end on PowerMTA hosts: a Postfix target would refuse the relayed mail (5xx = bounce)."""
    for route in (r for r in plan.routes if r.kind == "hosts"):
        postfix = [h for h in route.hosts if plan.host(h).mta == "postfix"]
        if postfix:
            raise PlanError(f"route {route.name}: hosts {', '.join(postfix)} run Postfix; a hosts route needs "
                            "PowerMTA hosts (Postfix route targets are not rendered yet)")
