"""`mailinfra cost STACK [--volume N] [--message-size KB] [--fallback-share S] [--format ...] [--prices FILE]`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from mailinfra.cli.options import add_stack_argument


def _count(text: str) -> int:
    try:
        value = int(text.replace("_", "").replace(",", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"received {text!r}, expected a whole number of messages a month") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"received {text!r}, expected 0 or more messages a month")
    return value


def _kb(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"received {text!r}, expected a message size in KB such as 50") from None
    if not 0 < value <= 40960:
        raise argparse.ArgumentTypeError(f"received {text!r}, expected a size in KB above 0 and at most 40960")
    return value


def _share(text: str) -> float:
    try:
        value = float(text.removesuffix("%")) / (100 if text.endswith("%") else 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"received {text!r}, expected a share such as 0.05 or 5%") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"received {text!r}, expected a share between 0 and 1 (or 0%-100%)")
    return value


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    from mailinfra.cost.render import FORMATS

    parser: argparse.ArgumentParser = subparsers.add_parser(
        "cost", help="what the topology costs a month (pinned list prices), and own vs rent",
        description="Price the planned topology by component (EC2, EBS, public IPv4, S3, SSM, Route53, data "
                    "transfer, SES/SNS/SQS for the fallback share) from the price table pinned in the repository, "
                    "and compare the same volume on SES alone and on ESP plans with the break-even volume.")
    add_stack_argument(parser)
    parser.add_argument("--volume", type=_count, default=None, metavar="MESSAGES/MONTH",
                        help="messages a month (default: the stack's volume.messages_per_month)")
    parser.add_argument("--message-size", type=_kb, default=None, metavar="KB",
                        help="average message size in KB (default: volume.average_message_kb, 50)")
    parser.add_argument("--fallback-share", type=_share, default=None, metavar="SHARE",
                        help="share of messages sent through an SES route, 0-1 or N%% "
                             "(default: volume.fallback_share, 0)")
    parser.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")
    parser.add_argument("--prices", type=Path, default=None, metavar="FILE",
                        help="an AWS price table to use instead of the pinned one (same shape as "
                             "mailinfra/cost/prices/aws-*.yaml)")
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from mailinfra.cost import cost_plan, load_aws_prices, usage_of
    from mailinfra.cost.render import render_cost
    from mailinfra.model.load import load_stack
    from mailinfra.plan import build_plan

    stack = load_stack(args.stack)
    prices = load_aws_prices(args.prices) if args.prices is not None else load_aws_prices()
    usage = usage_of(stack, volume=args.volume, message_kb=args.message_size, fallback_share=args.fallback_share)
    cost = cost_plan(stack, build_plan(stack), usage, aws=prices)
    sys.stdout.write(render_cost(args.format, cost.estimate, cost.rent, cost.esp_path))
    return 0
