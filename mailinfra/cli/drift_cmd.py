"""`mailinfra drift STACK`: compare the plan with live DNS (and AWS, Pulumi); exit 0 ok, 1 drift, 2 unknown."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from mailinfra.drift.dkim_check import parse_held_key, planned_targets, read_private_key
from mailinfra.drift.dns_check import DnsOptions, check_dns
from mailinfra.drift.model import DriftReport
from mailinfra.drift.render import FORMATS, render
from mailinfra.drift.resolve import parse_server
from mailinfra.errors import UsageError
from mailinfra.model.load import load_stack
from mailinfra.plan.build import build_plan


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "drift", help="compare the plan with live DNS, AWS and Pulumi state",
        description="Resolve every planned record from its zone's authoritative nameservers (or --nameserver) "
                    "and compare meaning, not bytes. Exit 0: no drift; 1: drift found; 2: something could not "
                    "be checked (the server or API is named).")
    parser.add_argument("stack", metavar="STACK", help="stack name or path to a Pulumi.<stack>.yaml")
    parser.add_argument("--nameserver", metavar="HOST[:PORT]",
                        help="ask this server for every zone instead of each zone's authoritative NS")
    parser.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")
    parser.add_argument("--timeout", type=float, default=1.5, help="seconds per DNS attempt (default 1.5)")
    parser.add_argument("--attempts", type=int, default=3, help="DNS attempts per query (default 3)")
    parser.add_argument("--dkim-key", action="append", default=[], metavar="DOMAIN:SELECTOR:PATH",
                        help="private key a host holds for SELECTOR (repeatable): sign a test message with it and "
                             "verify against the published record (DOMAIN: a signing domain, or the org domain "
                             "for all of them)")
    parser.add_argument("--no-dns", action="store_true", help="skip the DNS check")
    parser.add_argument("--aws", action="store_true", help="also check Elastic IPs, instances, security groups")
    parser.add_argument("--aws-endpoint", metavar="URL", help="EC2 endpoint (a local stand-in such as moto)")
    parser.add_argument("--aws-region", help="AWS region (default: aws:region from the stack, else us-east-1)")
    parser.add_argument("--pulumi", action="store_true",
                        help="also run `pulumi refresh --preview-only --expect-no-changes` (needs the CLI)")
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    if args.timeout <= 0 or args.attempts < 1:
        raise UsageError(f"--timeout/--attempts: received {args.timeout}/{args.attempts}, expected > 0 and >= 1")
    if args.no_dns and not (args.aws or args.pulumi):
        raise UsageError("--no-dns: received it without --aws or --pulumi, expected at least one check to run")
    stack = load_stack(args.stack)
    plan = build_plan(stack)
    report = DriftReport(stack.name)
    if not args.no_dns:
        server = parse_server(args.nameserver) if args.nameserver else None
        held = tuple(parse_held_key(text) for text in getattr(args, "dkim_key", None) or ())
        for key in held:  # a wrong argument is a usage error before any query is sent
            planned_targets(plan, key)
            read_private_key(key)
        options = DnsOptions(server, args.timeout, args.attempts, dkim_keys=held)
        results, failures = asyncio.run(check_dns(plan, options))
        report.results += results
        report.failures += failures
    if args.aws:
        from mailinfra.drift.aws_check import check_aws

        other = stack.other_config or {}
        region = args.aws_region or str(other.get("aws:region") or "us-east-1")
        results, failures = check_aws(plan, region=region, endpoint=args.aws_endpoint)
        report.results += results
        report.failures += failures
    if args.pulumi:
        from mailinfra.drift.pulumi_check import check_pulumi

        results, failures = check_pulumi(stack.name)
        report.results += results
        report.failures += failures
    sys.stdout.write(render(args.format, report))
    return report.exit_code()
