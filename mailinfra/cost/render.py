"""The cost as a terminal table, JSON or Markdown (sinks chosen at the edge). Every priced line names its source."""

from __future__ import annotations

import json
from collections.abc import Sequence

from mailinfra.cost.compare import OwnVsRent
from mailinfra.cost.estimate import CostEstimate, CostLine

FORMATS = ("table", "json", "markdown")


def render_cost(fmt: str, estimate: CostEstimate, rent: OwnVsRent, esp_path: str) -> str:
    if fmt == "json":
        return render_json(estimate, rent, esp_path)
    if fmt == "markdown":
        return render_markdown(estimate, rent, esp_path)
    return render_table(estimate, rent, esp_path)


def source_url(source: str) -> str:
    """A source's address (its first word); the verification note follows it in the table's footer."""
    return source.split(maxsplit=1)[0] if source.strip() else source


def render_json(estimate: CostEstimate, rent: OwnVsRent, esp_path: str) -> str:
    usage = estimate.usage
    doc = {
        "stack": estimate.stack, "region": estimate.region, "currency": "USD",
        "prices": {"aws": estimate.prices_path, "esp": esp_path, "date": estimate.prices_date},
        "usage": {"messages_per_month": usage.messages_per_month, "average_message_kb": usage.average_message_kb,
                  "fallback_share": usage.fallback_share, "stated": usage.stated},
        "lines": [line.as_dict() for line in estimate.lines],
        "totals": {"fixed_usd": round(estimate.fixed_usd, 2),
                   "usage_usd": round(estimate.total_usd - estimate.fixed_usd, 2),
                   "monthly_usd": round(estimate.total_usd, 2)},
        "own_vs_rent": {"messages_per_month": rent.messages, "owned_usd": round(rent.owned_usd, 2),
                        "options": [o.as_dict() for o in rent.options]},
    }
    return json.dumps(doc, indent=2) + "\n"


def _heading(estimate: CostEstimate, esp_path: str) -> list[str]:
    usage = estimate.usage
    volume = (f"{usage.messages_per_month:,.0f} messages/month" if usage.stated
              else "no volume stated (volume.messages_per_month or --volume): usage lines at 0")
    return [f"mailinfra cost {estimate.stack}: {estimate.region}, {volume}, {usage.average_message_kb:g} KB average, "
            f"{usage.fallback_share:.1%} via SES",
            f"prices: {estimate.prices_path} ({estimate.prices_date}); ESP plans: {esp_path}"]


def _quantity(line: CostLine) -> str:
    return f"{line.quantity:,.2f} {line.unit}" if line.quantity < 100 else f"{line.quantity:,.0f} {line.unit}"


def _unit_price(usd: float) -> str:
    return f"${usd:,.4f}".rstrip("0").rstrip(".") if usd else "$0"


def _breakeven(messages: float | None) -> str:
    if messages is None:
        return "none: renting stays cheaper"
    return f"{messages:,.0f} messages/month"


def render_table(estimate: CostEstimate, rent: OwnVsRent, esp_path: str) -> str:
    rows = [("component", "item", "quantity", "unit price", "monthly", "source")]
    rows += [(line.component, line.item, _quantity(line), _unit_price(line.unit_usd), f"${line.monthly_usd:,.2f}",
              source_url(line.source)) for line in estimate.lines]
    rows.append(("total", f"fixed ${estimate.fixed_usd:,.2f} + usage ${estimate.total_usd - estimate.fixed_usd:,.2f}",
                 "", "", f"${estimate.total_usd:,.2f}", f"the lines above ({estimate.prices_path})"))
    out = [*_heading(estimate, esp_path), "", *_columns(rows), ""]
    out.append(f"Own vs rent at {rent.messages:,.0f} messages/month (owned, as above: ${rent.owned_usd:,.2f}); "
               "break-even: the volume where owned = rented")
    options = [("option", "monthly", "break-even", "source")]
    options += [(o.name, f"${o.monthly_usd:,.2f}", _breakeven(o.break_even_messages), source_url(o.source))
                for o in rent.options]
    out += ["", *_columns(options), "", "Sources:"]
    seen: dict[str, str] = {}
    for source in [*(line.source for line in estimate.lines), *(o.source for o in rent.options)]:
        seen.setdefault(source_url(source), source)
    out += [f"  {source}" for source in seen.values()]
    return "\n".join(out) + "\n"


def _columns(rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    right = {2, 3, 4} if len(rows[0]) == 6 else {1}
    return ["  ".join(cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
                      for i, cell in enumerate(row)).rstrip() for row in rows]


def render_markdown(estimate: CostEstimate, rent: OwnVsRent, esp_path: str) -> str:
    out = [f"## {_heading(estimate, esp_path)[0]}", "", f"_{_heading(estimate, esp_path)[1]}_", "",
           "| component | item | quantity | unit price | monthly | source |", "|---|---|---:|---:|---:|---|"]
    out += [f"| {line.component} | {_cell(line.item)} | {_quantity(line)} | {_unit_price(line.unit_usd)} | "
            f"${line.monthly_usd:,.2f} | {_cell(line.source)} |" for line in estimate.lines]
    out += [f"| **total** | fixed ${estimate.fixed_usd:,.2f} + usage ${estimate.total_usd - estimate.fixed_usd:,.2f}"
            f" | | | **${estimate.total_usd:,.2f}** | the lines above |", "",
            f"### Own vs rent at {rent.messages:,.0f} messages/month (owned: ${rent.owned_usd:,.2f})", "",
            "| option | monthly | break-even (owned = rented) | source |", "|---|---:|---:|---|"]
    out += [f"| {o.name} | ${o.monthly_usd:,.2f} | {_breakeven(o.break_even_messages)} | {_cell(o.source)} |"
            for o in rent.options]
    return "\n".join(out) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
