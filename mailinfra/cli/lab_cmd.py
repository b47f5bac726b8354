"""`mailinfra lab up|send|fault|drill|report|probe|down STACK`: the stack running for real in a namespace."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path
from typing import Any

from mailinfra.cli.options import add_as_of_argument, add_stack_argument, resolve_as_of
from mailinfra.lab.layout import FAULT_MODES, SIMULATED_PROVIDERS

BUILD_ROOT = Path("build/lab")


def add_parser(subparsers: Any) -> None:
    lab = subparsers.add_parser("lab", help="run the stack's Postfix hosts, DNS and simulated providers "
                                            "in a network namespace (root, Linux)")
    actions = lab.add_subparsers(dest="lab_command", metavar="ACTION", required=True)

    up = actions.add_parser("up", help="build the lab (tears down a previous run of the stack first)")
    add_stack_argument(up)
    add_as_of_argument(up, default="today")
    up.add_argument("--rsa-only", action="store_true",
                    help="run the RSA signer only (no Ed25519 signatures), to compare with a dual-signed run")
    up.set_defaults(handler=run_up)

    send = actions.add_parser("send", help="inject test messages per stream pool and provider")
    add_stack_argument(send)
    send.add_argument("--count", type=_positive, default=1, help="messages per pool and provider (default 1)")
    send.add_argument("--stream", default=None, help="only this stream")
    send.add_argument("--pool", default=None, help="only this pool (a tier of a stream)")
    send.add_argument("--provider", default=None, help="only this simulated provider")
    send.set_defaults(handler=run_send)

    fault = actions.add_parser("fault", help="switch a simulated provider's behaviour")
    add_stack_argument(fault)
    fault.add_argument("provider", metavar="PROVIDER", choices=[name for name, _ in SIMULATED_PROVIDERS],
                       help=", ".join(name for name, _ in SIMULATED_PROVIDERS))
    fault.add_argument("mode", metavar="MODE", choices=FAULT_MODES, help=", ".join(FAULT_MODES))
    fault.set_defaults(handler=run_fault)

    drill = actions.add_parser("drill", help="fault drill: each fault mode in turn, one message per pool")
    add_stack_argument(drill)
    drill.add_argument("--provider", default="gmail")
    drill.add_argument("--timeout", type=float, default=60.0, help="seconds each mode may take (default 60)")
    drill.set_defaults(handler=run_drill)

    report = actions.add_parser("report", help="per stream and pool: delivery, auth, latency, queues")
    add_stack_argument(report)
    report.add_argument("--format", choices=("table", "json"), default="table")
    report.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                        help="first wait up to SECONDS for the queues to drain")
    report.set_defaults(handler=run_report)

    probe = actions.add_parser("probe", help="inbox placement: send a probe per pool x seed, read the seeds "
                                             "over IMAP, print where each landed")
    add_stack_argument(probe)
    probe.add_argument("--wait", type=float, default=30.0, metavar="SECONDS",
                       help="how long to wait for the probes to arrive (default 30)")
    probe.set_defaults(handler=run_probe)

    down = actions.add_parser("down", help="stop the lab's processes; keep build/lab/STACK/")
    add_stack_argument(down)
    down.set_defaults(handler=run_down)


def run_up(args: argparse.Namespace) -> int:
    from mailinfra.lab import lab
    from mailinfra.model.load import load_stack

    as_of = resolve_as_of(load_stack(args.stack), args.as_of) or dt.date.today()
    current = lab.load_lab(args.stack, as_of, BUILD_ROOT)
    state = lab.up(current, rsa_only=args.rsa_only)
    targets = state.info["targets"]
    print(f"lab {current.plan.stack} up in namespace {current.layout.namespace} (plan as of {as_of}): "
          f"{len(state.processes)} processes, {len(targets)} pool instances, "
          f"providers {', '.join(p.domain for p in current.layout.providers)}; files in {current.layout.build_dir}")
    for target in targets:
        status = "" if target["sending"] else "  (warmup: injection deferred)"
        print(f"  {target['stream']}/{target['pool']}: inject at {target['address']}:{target['port']}{status}")
    return 0


def run_send(args: argparse.Namespace) -> int:
    from mailinfra.lab import lab

    entries = lab.send(lab.open_lab(args.stack, BUILD_ROOT), count=args.count, stream=args.stream,
                       pool=args.pool, provider=args.provider)
    accepted = sum(1 for e in entries if e["accepted"])
    print(f"injected {accepted} of {len(entries)} messages")
    for entry in entries:
        if not entry["accepted"]:
            print(f"  refused {entry['stream']}/{entry['pool']} -> {entry['provider']}: {entry['reply']}")
    return 0 if accepted == len(entries) else 1


def run_fault(args: argparse.Namespace) -> int:
    from mailinfra.lab import lab

    lab.fault(lab.open_lab(args.stack, BUILD_ROOT), args.provider, args.mode)
    print(f"provider {args.provider}: {args.mode}")
    return 0


def run_drill(args: argparse.Namespace) -> int:
    from mailinfra.lab import lab

    for result in lab.drill(lab.open_lab(args.stack, BUILD_ROOT), args.provider, timeout=args.timeout):
        print(f"{args.provider} {result['mode']}: {result['messages']} messages, all delivered in "
              f"{result['all_delivered_seconds']:.2f} s")
    return 0


def run_report(args: argparse.Namespace) -> int:
    import time

    from mailinfra.lab import lab
    from mailinfra.lab.report import render_table

    current = lab.open_lab(args.stack, BUILD_ROOT)
    result = lab.report(current)
    deadline = time.monotonic() + args.wait
    while result["totals"]["queued"] and time.monotonic() < deadline:
        time.sleep(0.5)
        result = lab.report(current)
    print(json.dumps(result, indent=2) if args.format == "json" else render_table(result), end="")
    totals = result["totals"]
    ok = totals["lost"] == 0 and totals["duplicates"] == 0 and totals["all_authenticated"] \
        and totals["all_from_own_pool"]
    return 0 if ok else 1


def run_probe(args: argparse.Namespace) -> int:
    """Exit 0 when every probe was read back (inbox or spam), 1 when some never arrived."""
    import time

    from mailinfra.lab import lab
    from mailinfra.lab import seeds as lab_seeds
    from mailinfra.placement.probes import plan_probes

    current = lab.open_lab(args.stack, BUILD_ROOT)
    state = lab.require_running(current)
    names = {s.name for s in lab_seeds.lab_seeds(current)}
    expected = {(p.pool, p.seed) for p in plan_probes(current.plan) if p.seed in names}
    lab_seeds.send_probes(current, state)
    verdicts: dict[tuple[str, str], dict[str, Any]] = {}
    deadline = time.monotonic() + args.wait
    while set(verdicts) < expected and time.monotonic() < deadline:
        verdicts |= {(v["pool"], v["seed"]): v for v in lab_seeds.read_placement(current)}
        time.sleep(1)
    for pool, seed in sorted(expected):
        v = verdicts.get((pool, seed))
        where = f"{v['folder']} after {v['delay_seconds']:.1f} s" if v and v["delay_seconds"] is not None else (
            v["folder"] if v else "not seen yet")
        print(f"{pool} -> {seed}: {where}")
    return 0 if set(verdicts) >= expected else 1


def run_down(args: argparse.Namespace) -> int:
    from mailinfra.lab import lab

    current = lab.open_lab(args.stack, BUILD_ROOT)
    lab.check_environment()
    lab.down(current)
    print(f"lab {current.plan.stack} down; kept {current.layout.build_dir}")
    return 0


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"received {text!r}, expected a whole number >= 1")
    return int(text)
