"""`mailinfra cost`: quantities from the plan, prices from the pinned table, own vs rent, and the CLI's errors.

Expected numbers are computed here from the stack file and the pinned price table read as plain YAML, never by
calling the code under test; the rates they rest on are AWS's published ones (cited per test).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from mailinfra.cli.main import main
from mailinfra.cost import Usage, cost_plan, load_aws_prices, load_esp_prices, solve_break_even, usage_of
from mailinfra.cost.compare import compare_own_vs_rent
from mailinfra.cost.estimate import estimate_cost
from mailinfra.errors import ConfigErrors
from mailinfra.model.load import STACKS_DIR, load_stack
from mailinfra.plan.build import build_plan

PINNED = Path(__file__).resolve().parents[2] / "mailinfra" / "cost" / "prices" / "aws-2026-12-02.yaml"
ESP = PINNED.with_name("esp-2026-12-02.yaml")
HOURS = 730  # AWS's month of an always-on resource (365 x 24 / 12), as its Pricing Calculator uses
# VPC pricing: every public IPv4 address, in use or idle, $0.005 per IP per hour since 2024-02-01
# (https://aws.amazon.com/blogs/aws/new-aws-public-ipv4-address-charge-public-ip-insights/).
IPV4_PER_HOUR = 0.005
URL = re.compile(r"https://\S+$")


def stack_yaml(name: str) -> dict[str, Any]:
    return yaml.safe_load((STACKS_DIR / f"Pulumi.{name}.yaml").read_text())["config"]


def pinned() -> dict[str, Any]:
    return yaml.safe_load(PINNED.read_text())


def cost_of(name: str, usage: Usage | None = None) -> Any:
    stack = load_stack(name)
    return cost_plan(stack, build_plan(stack), usage or usage_of(stack))


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["cost", *argv])
    out, err = capsys.readouterr()
    return code, out, err


# ------------------------------------------------------------------ quantities from the plan


def test_prod_instances_and_ips_are_priced_from_the_stack() -> None:
    """prod: N hosts of type T -> N x 730 h x T's us-east-1 price; M EIPs -> M x 730 h x $0.005."""
    config = stack_yaml("prod")
    types = Counter(h.get("instance_type", "c6i.large") for h in config["mailinfra:hosts"].values())
    ips = sum(len(pool["ips"]) for pool in config["mailinfra:pools"].values())
    hourly = pinned()["regions"]["us-east-1"]["ec2_hour"]
    lines = cost_of("prod").estimate.lines
    ec2 = {line.item.split(" x ")[0]: round(line.monthly_usd, 6) for line in lines if line.component == "EC2"}
    assert ec2 == {t: round(n * HOURS * hourly[t]["usd"], 6) for t, n in types.items()}
    (ipv4,) = [line for line in lines if line.component == "Public IPv4"]
    assert ips == 58
    assert ipv4.quantity == ips * HOURS
    assert ipv4.monthly_usd == pytest.approx(ips * HOURS * IPV4_PER_HOUR)  # $211.70


def test_region_changes_the_instance_price() -> None:
    """The same topology in eu-central-1 is priced at that region's rates (the table is region-aware)."""
    stack = load_stack("prod")
    plan = build_plan(stack)
    usage = Usage(0, 50, 0, stated=False)
    east = estimate_cost(plan, "us-east-1", load_aws_prices(), usage, where=stack.source)
    frankfurt = estimate_cost(plan, "eu-central-1", load_aws_prices(), usage, where=stack.source)
    rates = pinned()["regions"]
    types = Counter(h.instance_type for h in plan.hosts)
    for estimate, region in ((east, "us-east-1"), (frankfurt, "eu-central-1")):
        ec2 = sum(line.monthly_usd for line in estimate.lines if line.component == "EC2")
        assert ec2 == pytest.approx(sum(n * HOURS * rates[region]["ec2_hour"][t]["usd"] for t, n in types.items()))
    assert frankfurt.by_component()["EC2"] > east.by_component()["EC2"]


def test_usage_lines_follow_the_stated_volume() -> None:
    """Data transfer out: (1 - SES share) x volume x size, 100 GB free, then $0.09/GB (first 10 TB tier)."""
    config = stack_yaml("prod")["mailinfra:volume"]
    messages, kb, share = config["messages_per_month"], config["average_message_kb"], config["fallback_share"]
    lines = {(line.component, line.item.split(":")[0]): line for line in cost_of("prod").estimate.lines}
    gb = messages * (1 - share) * kb * 1024 / 1024**3
    transfer = pinned()["regions"]["us-east-1"]["transfer_out_gb"]
    assert lines[("Data transfer", "out to the internet")].quantity == pytest.approx(gb)
    assert gb < 10240 + 100  # inside the first tier
    assert lines[("Data transfer", "out to the internet")].monthly_usd == pytest.approx(
        (gb - transfer["free_gb"]) * transfer["tiers"][0]["usd"])
    # SES: $0.10 per 1,000 recipients (a la carte) on the fallback share.
    assert lines[("SES", "fallback")].monthly_usd == pytest.approx(messages * share / 1000 * 0.10)


def test_no_stated_volume_prices_the_topology_alone() -> None:
    """dev states no volume: usage lines are at 0 and the table says so."""
    cost = cost_of("dev")
    assert not cost.estimate.usage.stated
    assert all(line.monthly_usd == 0 for line in cost.estimate.lines if line.usage_based)
    assert cost.estimate.total_usd == pytest.approx(cost.estimate.fixed_usd)


# ------------------------------------------------------------------ own vs rent


def test_break_even_of_two_lines_is_where_they_meet() -> None:
    """rent = 100 + 0.001 V, own = 500 + 0.0001 V meet at V = 400 / 0.0009."""
    found = solve_break_even(lambda v: 100 + v * 0.001, lambda v: 500 + v * 0.0001, [])
    assert found == pytest.approx(400 / 0.0009)
    assert solve_break_even(lambda v: 10.0, lambda v: 5.0, []) == 0.0  # owning is cheaper from the start
    assert solve_break_even(lambda v: 1.0, lambda v: 5.0 + v, []) is None  # renting always cheaper


def test_break_even_volume_costs_the_same_owned_and_rented() -> None:
    """At each ESP's break-even volume the owned topology and the plan cost the same (ESP list prices pinned)."""
    stack = load_stack("prod")
    plan = build_plan(stack)
    usage = usage_of(stack)
    aws, esp = load_aws_prices(), load_esp_prices()
    rent = compare_own_vs_rent(plan, "us-east-1", aws, esp, usage, where=stack.source)
    offers = yaml.safe_load(ESP.read_text())["plans"]
    for option in rent.options:
        volume = option.break_even_messages
        assert volume is not None and volume > 0, option
        owned = estimate_cost(plan, "us-east-1", aws, Usage(volume, usage.average_message_kb, usage.fallback_share),
                              where=stack.source).total_usd
        if option.key == "ses":  # $0.10 per 1,000 + $0.12 per GB (SES a la carte)
            rented = volume / 1000 * 0.10 + volume * usage.average_message_kb * 1024 / 1024**3 * 0.12
        else:
            rented = _rented_by_hand(offers[option.key], volume)
        assert rented == pytest.approx(owned, rel=1e-9), option.name


def _rented_by_hand(offer: dict[str, Any], volume: float) -> float:
    """The vendor's arithmetic written out: base, then each overage band's messages at its rate."""
    bands = offer.get("overage_bands") or [{"from_messages": offer["included"], "per_1000": offer["overage_per_1000"]}]
    total = offer["base_usd"]
    for i, band in enumerate(bands):
        end = bands[i + 1]["from_messages"] if i + 1 < len(bands) else volume
        total += max(0, min(volume, end) - band["from_messages"]) / 1000 * band["per_1000"]
    return float(total)


@pytest.mark.parametrize(("volume", "expected"), [
    (50_000, 90.0),  # inside the 100K the base includes
    (300_000, 90 + 150 * 0.80 + 50 * 0.65),  # 100K-250K at $0.80, then $0.65
    (30_000_000, 90 + 150 * 0.80 + 500 * 0.65 + 250 * 0.50 + 1500 * 0.40 + 27_500 * 0.35),
])
def test_mailgun_scale_overage_follows_the_vendors_volume_bands(volume: int, expected: float) -> None:
    """Mailgun bills overage per 1,000 at the rate of the month's volume so far ($0.80 down to $0.35, help centre)."""
    assert load_esp_prices().plans["mailgun-scale"].monthly_usd(volume) == pytest.approx(expected)


def test_overage_bands_that_skip_the_allowance_are_one_line_naming_the_file(tmp_path: Path) -> None:
    """A band table that does not start at the plan's included messages is refused at load, in one line."""
    doc = yaml.safe_load(ESP.read_text())
    doc["plans"]["mailgun-scale"]["overage_bands"][0]["from_messages"] = 50_000
    bad = tmp_path / "esp.yaml"
    bad.write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigErrors) as caught:
        load_esp_prices(bad)
    (line,) = str(caught.value).splitlines()
    assert "esp.yaml" in line and "mailgun-scale" in line and "must start at included (100000)" in line


def test_sendgrid_break_even_in_prod_is_near_the_rule_of_thumb() -> None:
    """With prod's fixed cost, SendGrid Pro's list price meets owning between 1 and 5 M messages a month."""
    (sendgrid,) = [o for o in cost_of("prod").rent.options if o.key == "sendgrid-pro"]
    assert sendgrid.break_even_messages is not None
    assert 1_000_000 < sendgrid.break_even_messages < 5_000_000


# ------------------------------------------------------------------ the command


def test_every_table_line_names_its_price_source(capsys: pytest.CaptureFixture[str]) -> None:
    """`mailinfra cost prod`: every priced line and every own-vs-rent line ends in its source, listed below."""
    code, out, _ = run_cli(capsys, "prod")
    assert code == 0
    body, _, sources = out.partition("\nSources:\n")
    rows = [line for line in body.splitlines() if line.startswith(("EC2", "EBS", "Public IPv4", "S3 ", "SSM",
                                                                    "Route53", "Data transfer", "SES ", "SNS",
                                                                    "SQS", "Amazon SES", "SendGrid", "Mailgun",
                                                                    "Postmark", "total"))]
    assert len(rows) >= 14
    listed = {line.split()[0] for line in sources.splitlines() if line.strip()}
    for row in rows:
        if row.startswith("total"):
            assert row.endswith("(mailinfra/cost/prices/aws-2026-12-02.yaml)"), row
            continue
        match = URL.search(row)
        assert match, row
        assert match.group(0) in listed, row
    assert "Elastic IPs" in out and "$211.70" in out


def test_json_carries_quantities_unit_prices_and_sources(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "prod", "--format", "json", "--volume", "5000000")
    assert code == 0
    doc = json.loads(out)
    assert doc["usage"]["messages_per_month"] == 5_000_000
    for line in doc["lines"]:
        assert {"quantity", "unit", "unit_usd", "monthly_usd", "source"} <= set(line)
        assert line["source"].startswith("https://")
    ipv4 = next(line for line in doc["lines"] if line["component"] == "Public IPv4")
    assert (ipv4["quantity"], ipv4["unit_usd"]) == (58 * HOURS, IPV4_PER_HOUR)
    assert doc["totals"]["monthly_usd"] == pytest.approx(sum(line["monthly_usd"] for line in doc["lines"]), abs=0.01)
    assert {o["key"] for o in doc["own_vs_rent"]["options"]} == {"ses", "sendgrid-pro", "mailgun-scale",
                                                                  "postmark-pro"}


def test_markdown_table_has_a_source_column(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "prod", "--format", "markdown")
    assert code == 0
    rows = [line for line in out.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows and all(line.rstrip(" |").split("| ")[-1].startswith(("https://", "source", "the lines above"))
                        for line in rows), rows


def _stack_in(tmp_path: Path, region: str) -> Path:
    text = (STACKS_DIR / "Pulumi.dev.yaml").read_text().replace("aws:region: us-east-1", f"aws:region: {region}")
    text = text.replace("availability_zone: us-east-1", f"availability_zone: {region}")
    path = tmp_path / "Pulumi.far.yaml"
    path.write_text(text)
    return path


def test_an_unknown_region_is_refused_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, str(_stack_in(tmp_path, "ap-south-1")))
    assert code == 1 and not out
    assert err.count("\n") == 1, err
    assert "Pulumi.far.yaml: aws:region: received 'ap-south-1', expected a region priced in " \
           "mailinfra/cost/prices/aws-2026-12-02.yaml: eu-central-1, eu-west-1, us-east-1, us-west-2" in err


def test_prices_file_overrides_the_pinned_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--prices FILE: the same shape with another IPv4 rate changes that line, and only the listed regions exist."""
    table = pinned()
    table["global"]["public_ipv4_hour"] = {"usd": 0.01, "source": "https://example.com/negotiated"}
    path = tmp_path / "prices.yaml"
    path.write_text(yaml.safe_dump(table))
    code, out, _ = run_cli(capsys, "prod", "--format", "json", "--prices", str(path))
    assert code == 0
    ipv4 = next(line for line in json.loads(out)["lines"] if line["component"] == "Public IPv4")
    assert ipv4["monthly_usd"] == pytest.approx(58 * HOURS * 0.01)
    assert ipv4["source"] == "https://example.com/negotiated"


@pytest.mark.parametrize(("edit", "expected"), [
    (lambda t: t["global"]["public_ipv4_hour"].update(usd="cheap"),
     "global.public_ipv4_hour.usd: received 'cheap', expected a valid number"),
    (lambda t: t["regions"]["us-east-1"].pop("ebs_gp3_gb_month"),
     "regions.us-east-1.ebs_gp3_gb_month: received nothing, expected a value"),
    (lambda t: t["regions"]["us-east-1"]["ec2_hour"]["c6i.large"].update(usd=-1),
     "regions.us-east-1.ec2_hour.c6i.large.usd: received -1, expected"),
])
def test_a_bad_prices_file_is_one_line_naming_file_and_key(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                          edit: Any, expected: str) -> None:
    table = pinned()
    edit(table)
    path = tmp_path / "prices.yaml"
    path.write_text(yaml.safe_dump(table))
    code, _, err = run_cli(capsys, "prod", "--prices", str(path))
    assert code == 1
    assert err.count("\n") == 1, err
    assert err.startswith(f"{path}: {expected}"), err


def test_every_supported_instance_type_is_priced_in_every_pinned_region() -> None:
    """Validation accepts the types of mailinfra.model.limits: the pinned table prices each of them everywhere."""
    from mailinfra.model.limits import PRIVATE_IPV4_PER_ENI

    for region, prices in pinned()["regions"].items():
        assert set(prices["ec2_hour"]) >= set(PRIVATE_IPV4_PER_ENI), region


def test_an_unpriced_instance_type_names_the_host(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A --prices table without a host's instance type: one line naming the host's key and the table."""
    table = pinned()
    del table["regions"]["us-east-1"]["ec2_hour"]["t3.large"]
    path = tmp_path / "prices.yaml"
    path.write_text(yaml.safe_dump(table))
    code, _, err = run_cli(capsys, "dev", "--prices", str(path))
    assert code == 1 and err.count("\n") == 1, err
    assert err.startswith("stacks/Pulumi.dev.yaml: hosts.mta1.instance_type: received 't3.large', expected an "
                          f"instance type priced in {path} ("), err


@pytest.mark.parametrize(("argv", "expected"), [
    (["--volume", "lots"], "argument --volume: received 'lots', expected a whole number of messages a month"),
    (["--fallback-share", "150%"], "argument --fallback-share: received '150%', expected a share between 0 and 1"),
    (["--message-size", "0"], "argument --message-size: received '0', expected a size in KB above 0"),
])
def test_bad_arguments_are_usage_errors(capsys: pytest.CaptureFixture[str], argv: list[str], expected: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["cost", "prod", *argv])
    assert exit_info.value.code == 2
    assert expected in capsys.readouterr().err


def test_command_line_volume_wins_over_the_stack() -> None:
    stack = load_stack("prod")
    assert usage_of(stack).messages_per_month == 30_000_000
    assert usage_of(stack, volume=1_000, fallback_share=0.5).messages_per_month == 1_000
    assert usage_of(stack, volume=1_000, fallback_share=0.5).fallback_share == 0.5
