"""`lab up|send|fault|down`: build the lab of one stack, drive it, tear it down (root, Linux)."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

from mailinfra.deployment.aws_world import (
    HostAccess,
    MotoServer,
    free_port,
    load_world,
    moto_argv,
    moto_environment,
    wait_for_moto,
)
from mailinfra.deployment.program import Deployment
from mailinfra.errors import UsageError
from mailinfra.lab import dns as lab_dns
from mailinfra.lab import firewall, mta, relay
from mailinfra.lab import monitoring as lab_monitoring
from mailinfra.lab import seeds as lab_seeds
from mailinfra.lab import suppression as lab_suppression
from mailinfra.lab.deployment import deploy_lab
from mailinfra.lab.keys import generate_lab_keys
from mailinfra.lab.layout import DNS_ADDRESS, OUTSIDER_ADDRESS, LabLayout, plan_layout
from mailinfra.lab.namespace import (
    LabError,
    create_namespace,
    destroy_namespace,
    in_namespace,
    namespace_exists,
    namespace_pids,
)
from mailinfra.lab.procs import LabState, python_env, start_process, stop_all, stop_pid, stop_process
from mailinfra.lab.providers import MODES, write_mode
from mailinfra.lab.report import build_report, read_arrivals, render_table
from mailinfra.model.load import load_stack
from mailinfra.mta.postfix import plan_instances
from mailinfra.plan.build import build_plan
from mailinfra.plan.model import Plan, RoutePlan

# The simulated provider whose complaints carry no recipient (as Comcast's feedback loop): the lab shows
# they are still attributed, through the X-Mailinfra-Id header of the original.
SCRUBBING_PROVIDER = "outlook"
REQUIRED_TOOLS = ("ip", "knotd", "knotc", "kdig", "postfix", "postconf", "postqueue", "opendkim", "nft")
PORT_WAIT_SECONDS = 10.0


@dataclass(frozen=True)
class Lab:
    plan: Plan
    layout: LabLayout


def load_lab(stack: str, as_of: dt.date | None = None, build_root: Path = Path("build/lab")) -> Lab:
    plan = build_plan(load_stack(stack), as_of)
    return Lab(plan, plan_layout(plan, build_root))


def open_lab(stack: str, build_root: Path = Path("build/lab")) -> Lab:
    """The lab of a stack as `up` built it (same plan date), or as it would be built today."""
    lab = load_lab(stack, None, build_root)
    state = LabState.load(lab.layout.state_file)
    if state is not None and state.info.get("as_of"):
        return load_lab(stack, dt.date.fromisoformat(state.info["as_of"]), build_root)
    return lab


def first_day(stack: str, require: str, start: dt.date | None = None) -> dt.date:
    """`mailinfra.plan.dates.first_day` of a stack name (`require`: "warmed" or "sending")."""
    from mailinfra.plan.dates import first_day as first_named_day

    return first_named_day(load_stack(stack), "warmed" if require == "warmed" else "all-sending", start)


def check_environment() -> None:
    if sys.platform != "linux":
        raise UsageError(f"lab: received platform {sys.platform!r}, expected linux (network namespaces)")
    if os.geteuid() != 0:
        raise UsageError("lab: received a non-root user, expected root (ip netns, port 25, Postfix)")
    missing = [t for t in REQUIRED_TOOLS if not shutil.which(t, path="/usr/sbin:/usr/bin:/sbin:/bin")]
    if missing:
        raise UsageError(f"lab: missing tools {', '.join(missing)}, expected the Debian packages "
                         "iproute2 knot knot-dnsutils postfix opendkim nftables")


def up(lab: Lab, *, rsa_only: bool = False, deployment: Deployment | None = None,
       stacks_dir: Path | None = None) -> LabState:
    """Build the whole lab; a previous (crashed) run of the same stack is torn down first.

    `deployment`: the resources to build it from (default: the program run as `pulumi up` with the lab's
    keys and route passwords); tests pass a changed one to show the lab fails as AWS would.
    `stacks_dir`: where the stack file the program runs is (default stacks/; a test's changed copy)."""
    check_environment()
    plan, layout = lab.plan, lab.layout
    down(lab)
    # 0711: Postfix daemons (user postfix) traverse into their queue and data directories here;
    # the secrets below (DKIM keys, route credentials) sit in 0700 directories of their own.
    layout.runtime_dir.mkdir(parents=True, exist_ok=True, mode=0o711)
    layout.runtime_dir.chmod(0o711)
    layout.build_dir.mkdir(parents=True, exist_ok=True)
    for stale in ("mail", "relay"):
        shutil.rmtree(layout.build_dir / stale, ignore_errors=True)
    layout.sent_log.unlink(missing_ok=True)
    state = LabState(stack=plan.stack, namespace=layout.namespace)
    clock = _Phases()
    try:
        state.interface = create_namespace(layout.namespace, layout.addresses(), DNS_ADDRESS)
        state.save(layout.state_file)
        # The AWS stand-in boots while the program runs.
        moto_port = free_port()
        moto_pid = start_process(state, "aws-moto", moto_argv(moto_port), layout.runtime_dir / "log" / "moto.log",
                                 env=moto_environment())
        state.save(layout.state_file)
        keys = generate_lab_keys(plan, layout.keys_dir)
        route_secrets, credentials = route_credentials(plan)
        clock.mark("namespace, keys")
        if deployment is None:
            deployment = deploy_lab(plan, keys, route_secrets, stacks_dir)
        clock.mark("deployment (the program as pulumi up)")
        credentials |= deployed_ses_credentials(plan, deployment)
        rrsets = lab_dns.lab_rrsets(plan, layout, deployment)
        zones = lab_dns.render_lab_zones(plan, layout, rrsets, serial=int(time.time()))
        lab_dns.write_zones(zones, layout.zones_dir)
        lab_dns.start_knot(state, layout, list(zones))
        state.save(layout.state_file)
        clock.mark("dns (translate, Knot)")
        _start_providers(lab, state)
        _start_routes(lab, state, credentials)
        clock.mark("providers and routes")
        world = wait_for_moto(moto_pid, moto_port, layout.runtime_dir / "log" / "moto.log")
        accesses = load_world(world, deployment, mta.boot_region(deployment))
        clock.mark("aws stand-in (moto up and loaded)")
        skipped = _start_hosts(lab, state, deployment, world, accesses, rsa_only=rsa_only)
        clock.mark("hosts (apply-config, Postfix, OpenDKIM)")
        # Hosts read S3 and SSM at boot only: the stand-in goes once they are provisioned, so everything
        # the running lab keeps is inside its namespace (tests: test_lab_processes_are_all_inside_the_namespace).
        stop_process(state, "aws-moto")
        # After the hosts: every security group as nftables rules, and the EIP NAT with it (DNAT only to the
        # private addresses the hosts put on the interface). Nothing is sent before: hosts only start.
        _firewall_and_monitoring(lab, state, deployment, clock)
        state.info = {"skipped_hosts": skipped, "as_of": plan.as_of.isoformat(),
                      "targets": injection_targets(lab)}
        state.save(layout.state_file)
        (layout.build_dir / "lab.json").write_text(json.dumps({
            "stack": plan.stack, "namespace": layout.namespace, "as_of": plan.as_of.isoformat(),
            "addresses": list(layout.addresses()), "skipped_hosts": skipped,
            "providers": [asdict(p) for p in layout.providers], "routes": [asdict(r) for r in layout.routes],
            "targets": state.info["targets"]}, indent=2, default=str))
        clock.report()
    except BaseException:
        state.save(layout.state_file)
        # MAILINFRA_LAB_KEEP=1 leaves a failed lab standing for inspection (`lab down` removes it).
        if os.environ.get("MAILINFRA_LAB_KEEP") != "1":
            down(lab)
        raise
    return state


class _Phases:
    """Seconds per phase of `up`, printed to stderr as one `lab-timing {json}` line when
    MAILINFRA_LAB_TIMINGS=1 (bench/lab_startup.py reads it)."""

    def __init__(self) -> None:
        self.last = time.perf_counter()
        self.seconds: dict[str, float] = {}

    def mark(self, phase: str) -> None:
        now = time.perf_counter()
        self.seconds[phase] = round(now - self.last, 2)
        self.last = now

    def report(self) -> None:
        if os.environ.get("MAILINFRA_LAB_TIMINGS") == "1":
            print("lab-timing " + json.dumps(self.seconds), file=sys.stderr)


def down(lab: Lab) -> None:
    """Stop every process the lab started (by PID), remove the namespace and the runtime state."""
    layout = lab.layout
    state = LabState.load(layout.state_file)
    if state is not None:
        # Postfix first (it talks to OpenDKIM, the routes and the DNS), Knot last.
        stop_all(state, [n for n in state.processes if n.endswith("-master")])
        stop_all(state, [n for n in state.processes if n != "knotd"])
        stop_all(state, list(state.processes))
    for pid in namespace_pids(layout.namespace):
        stop_pid(pid)  # anything left inside the lab's own namespace was started by the lab
    destroy_namespace(layout.namespace)
    shutil.rmtree(layout.runtime_dir, ignore_errors=True)
    with contextlib.suppress(OSError):
        layout.runtime_dir.parent.rmdir()  # only when no other stack's lab is running


def require_running(lab: Lab) -> LabState:
    check_environment()
    state = LabState.load(lab.layout.state_file)
    if state is None or not namespace_exists(lab.layout.namespace):
        raise UsageError(f"lab {lab.plan.stack}: received no running lab, expected `mailinfra lab up "
                         f"{lab.plan.stack}` first")
    return state


def block_pool(lab: Lab, provider: str, pool: str | None) -> None:
    """Make `provider` refuse `pool`'s addresses with a 550 5.7.1 policy block (None: lift it)."""
    require_running(lab)
    names = [p.name for p in lab.layout.providers]
    if provider not in names:
        raise UsageError(f"PROVIDER: received {provider!r}, expected one of {', '.join(names)}")
    addresses = [lab.plan.ip(n).address for n in lab.plan.pool(pool).ips] if pool else []
    target = lab.layout.control_dir / f"{provider}.blocked"
    partial = target.with_suffix(".tmp")
    partial.write_text("".join(f"{a}\n" for a in addresses))
    partial.replace(target)


def fault(lab: Lab, provider: str, mode: str) -> None:
    require_running(lab)
    names = [p.name for p in lab.layout.providers]
    if provider not in names:
        raise UsageError(f"PROVIDER: received {provider!r}, expected one of {', '.join(names)}")
    if mode not in MODES:
        raise UsageError(f"MODE: received {mode!r}, expected one of {', '.join(MODES)}")
    write_mode(lab.layout.control_dir / f"{provider}.mode", mode)


def send(lab: Lab, *, count: int = 1, stream: str | None = None, pool: str | None = None,
         provider: str | None = None, source: str | None = None,
         mail_from_domain: str | None = None, rcpt_prefix: str | None = None,
         rcpts: list[str] | None = None, from_domain: str | None = None,
         message_id: bool = True) -> list[dict[str, Any]]:
    """Inject `count` messages per pool and provider (optionally one stream/pool/provider; `rcpt_prefix`
    "unknown" addresses recipients the provider rejects, so the message bounces; `from_domain` another
    From header domain; `message_id=False` no Message-ID header)."""
    state = require_running(lab)
    targets = [t for t in state.info["targets"]
               if (stream is None or t["stream"] == stream) and (pool is None or t["pool"] == pool)]
    if not targets:
        raise UsageError(f"--stream/--pool: received {stream!r}/{pool!r}, expected a stream or pool of "
                         f"{lab.plan.stack} on a Postfix host")
    providers = [asdict(p) for p in lab.layout.providers if provider is None or p.name == provider]
    if not providers:
        raise UsageError(f"--provider: received {provider!r}, expected one of "
                         f"{', '.join(p.name for p in lab.layout.providers)}")
    work = lab.layout.runtime_dir / "inject"
    work.mkdir(parents=True, exist_ok=True)
    (work / "targets.json").write_text(json.dumps(targets))
    (work / "providers.json").write_text(json.dumps(providers))
    argv = [sys.executable, "-m", "mailinfra.lab.inject", "--targets", str(work / "targets.json"),
            "--providers", str(work / "providers.json"), "--source", source or lab.layout.injector_address,
            "--count", str(count), "--log", str(lab.layout.sent_log.resolve()),
            "--verp-secret-file", str(lab_suppression.verp_secret_file(lab.layout.runtime_dir))]
    if mail_from_domain:
        argv += ["--mail-from-domain", mail_from_domain]
    if rcpt_prefix:
        argv += ["--rcpt-prefix", rcpt_prefix]
    argv += [f"--rcpt={local}" for local in rcpts or ()]
    if from_domain:
        argv += ["--from-domain", from_domain]
    if not message_id:
        argv.append("--no-message-id")
    result = subprocess.run(in_namespace(lab.layout.namespace, argv), capture_output=True, text=True,
                            check=False, env=python_env())
    if result.returncode != 0:
        raise LabError(f"lab send: injector failed: {result.stderr.strip().splitlines()[-1:]}")
    entries: list[dict[str, Any]] = json.loads(result.stdout)
    return entries


def queue_entries(lab: Lab) -> list[dict[str, Any]]:
    """Every message still queued in any Postfix instance (postqueue -j), tagged with its pool."""
    entries = []
    for _host, instance in staged_instances(lab):
        for line in mta.queue_json(lab.layout.namespace, instance):
            item = json.loads(line)
            item["pool"] = instance.pool or "primary"
            entries.append(item)
    return entries


def report(lab: Lab) -> dict[str, Any]:
    """Build the report, and keep it (report.json, report.txt) in the build directory."""
    running = LabState.load(lab.layout.state_file) is not None and namespace_exists(lab.layout.namespace)
    pools = {p.name: [lab.plan.ip(n).address for n in p.ips] for p in lab.plan.pools}
    result = build_report(lab.layout, pools, queue_entries(lab) if running else ())
    result["lab_running"] = running
    # What the bounces and complaints did: the store's entries, per-pool counts (build/lab/<stack>/suppression.json).
    result["suppression"] = lab_suppression.suppression_section(lab.layout.runtime_dir) if running else {}
    if running:
        lab_suppression.write_section(lab.layout.build_dir, result["suppression"])
    lab.layout.build_dir.mkdir(parents=True, exist_ok=True)
    (lab.layout.build_dir / "report.json").write_text(json.dumps(result, indent=2))
    (lab.layout.build_dir / "report.txt").write_text(render_table(result))
    return result


def wait_for_arrivals(lab: Lab, lab_ids: list[str], timeout: float) -> float:
    """Until every message in `lab_ids` reached a provider; the seconds it took (raises on timeout)."""
    started = time.monotonic()
    wanted = set(lab_ids)
    while True:
        seen = {a.get("lab_id") for a in read_arrivals(lab.layout.mail_dir)}
        if wanted <= seen:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise LabError(f"lab: {len(wanted - seen)} of {len(wanted)} messages not delivered "
                           f"after {timeout:.0f} s")
        time.sleep(0.1)


def drill(lab: Lab, provider: str, modes: tuple[str, ...] = ("throttle", "throttle-rcpt", "refuse", "silent"),
          timeout: float = 60.0) -> list[dict[str, Any]]:
    """The fault drill: per mode, fault `provider`, send one message per pool to it, wait, restore."""
    results = []
    for mode in modes:
        fault(lab, provider, mode)
        try:
            sent = [e for e in send(lab, provider=provider) if e["accepted"]]
            took = wait_for_arrivals(lab, [e["lab_id"] for e in sent], timeout)
        finally:
            fault(lab, provider, "ok")
        results.append({"mode": mode, "messages": len(sent), "all_delivered_seconds": round(took, 2)})
    return results


def injection_targets(lab: Lab) -> list[dict[str, Any]]:
    """Each Postfix pool instance the app injects into: stream, tier, address and port."""
    result = []
    for host in lab.plan.hosts:
        if host.mta != "postfix":
            continue
        for instance in plan_instances(lab.plan, host):
            pool = lab.plan.pool(instance.pool)
            result.append({
                "host": host.name, "stream": instance.stream.name, "pool": pool.name, "tier": pool.tier,
                "address": host.inbound_address, "port": instance.port, "sending": instance.sending,
                "sending_domain": instance.stream.sending_domain, "return_path": instance.stream.return_path,
                "one_click_unsubscribe": instance.stream.one_click_unsubscribe,
                "pool_addresses": [lab.plan.ip(n).address for n in pool.ips],
            })
    return result


def route_credentials(plan: Plan) -> tuple[dict[str, str], dict[str, tuple[str, str]]]:
    """Lab credentials per route: the values for the rendered secret markers, and what the relay checks.

    Marker names follow mailinfra.mta.postfix: `mailinfra:<password_secret>` for a relay's password,
    `routes.<name>.smtp_username/password` for SES (derived from an IAM key on a real host).
    """
    markers: dict[str, str] = {}
    credentials: dict[str, tuple[str, str]] = {}
    for route in plan.routes:
        password = secrets.token_urlsafe(18)
        if route.kind == "ses":
            username = f"lab-{route.name}"
            markers[f"routes.{route.name}.smtp_username"] = username
            markers[f"routes.{route.name}.smtp_password"] = password
            credentials[route.name] = (username, password)
        elif route.username and route.password_secret:
            markers[f"mailinfra:{route.password_secret}"] = password
            credentials[route.name] = (route.username, password)
    return markers, credentials


def _start_providers(lab: Lab, state: LabState) -> None:
    layout = lab.layout
    # The seeds' IMAP store first: the providers file into it from their first message.
    lab_seeds.start_seed_store(lab, state)
    routes = [f"{r.address}={r.name}" for r in layout.routes]
    streams = [f"{s.sending_domain}={s.name}" for s in lab.plan.streams]
    for provider in layout.providers:
        control = layout.control_dir / f"{provider.name}.mode"
        write_mode(control, "ok")
        argv = [sys.executable, "-m", "mailinfra.lab.providers", "--name", provider.name,
                "--domain", provider.domain, "--listen", f"{provider.address}:25",
                "--store", str((layout.mail_dir / provider.name).resolve()), "--control", str(control),
                *(f"--route={r}" for r in routes), *(f"--stream={s}" for s in streams),
                "--block-file", str(layout.control_dir / f"{provider.name}.blocked"),
                *lab_seeds.provider_args(lab, provider)]
        # Complaints go to the stack's FBL address; one provider scrubs the recipient (Comcast-like).
        if lab.plan.intake.fbl_addresses:
            argv += ["--fbl-address", lab.plan.intake.fbl_addresses[0]]
        if provider.name == SCRUBBING_PROVIDER:
            argv.append("--scrub-arf")
        start_process(state, f"provider-{provider.name}", in_namespace(layout.namespace, argv),
                      layout.runtime_dir / "log" / f"provider-{provider.name}.log", env=python_env())
        state.save(layout.state_file)
    for provider in layout.providers:
        mta.wait_for_port(layout.namespace, provider.address, 25, f"provider {provider.name}")


# Where Debian's ca-certificates puts the system trust store, which the hosts' Postfix verifies relay and
# SES certificates against (mailinfra.mta.postfix.CA_FILE); the lab's CA stands in for the public CAs.
HOST_TRUST_STORE = "etc/ssl/certs/ca-certificates.crt"


def route_mode(lab: Lab, route: str, mode: str) -> None:
    """Switch a route's relay (new connections) to `ok`, `no-starttls` or `untrusted-cert`."""
    require_running(lab)
    names = [r.name for r in lab.layout.routes]
    if route not in names:
        raise UsageError(f"ROUTE: received {route!r}, expected one of {', '.join(names)}")
    relay.write_mode(lab.layout.control_dir / f"route-{route}.mode", mode)


def auth_log(lab: Lab, route: str) -> Path:
    """The route relay's record of AUTH attempts (mailinfra.lab.relay.read_auth_attempts)."""
    return lab.layout.build_dir / "relay" / f"{route}.auth.jsonl"


def _start_routes(lab: Lab, state: LabState, credentials: dict[str, tuple[str, str]]) -> None:
    """The relays of the relay and SES routes, with a certificate from the lab's CA for their names (their
    real counterparts have a publicly trusted one); the CA is the hosts' trust store. A second, self-signed
    certificate is what a relay in mode untrusted-cert presents."""
    layout = lab.layout
    names = [r.smtp_host for r in layout.routes]
    ca, cert, key = _lab_certificate(layout.runtime_dir / "tls", names)
    _, untrusted, untrusted_key = _lab_certificate(layout.runtime_dir / "tls" / "untrusted", names)
    trust = layout.runtime_dir / "root" / HOST_TRUST_STORE
    trust.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ca, trust)
    for route in layout.routes:
        control = layout.control_dir / f"route-{route.name}.mode"
        relay.write_mode(control, "ok")
        argv = [sys.executable, "-m", "mailinfra.lab.relay", "--name", route.name,
                "--listen", f"{route.address}:{route.port}", "--source", route.address, "--helo", route.smtp_host,
                "--log", str((layout.build_dir / "relay" / f"{route.name}.jsonl").resolve()),
                "--tls-cert", str(cert), "--tls-key", str(key), "--control", str(control.resolve()),
                "--untrusted-cert", str(untrusted), "--untrusted-key", str(untrusted_key),
                "--auth-log", str(auth_log(lab, route.name).resolve())]
        if route.name in credentials:
            secret_file = layout.runtime_dir / "tls" / f"{route.name}.credentials"
            secret_file.write_text(":".join(credentials[route.name]))
            secret_file.chmod(0o600)
            argv += ["--credentials", str(secret_file)]
        start_process(state, f"route-{route.name}", in_namespace(layout.namespace, argv),
                      layout.runtime_dir / "log" / f"route-{route.name}.log", env=python_env())
        state.save(layout.state_file)
    for route in layout.routes:
        mta.wait_for_port(layout.namespace, route.address, route.port, f"route {route.name}")


def deployed_ses_credentials(plan: Plan, deployment: Deployment) -> dict[str, tuple[str, str]]:
    """The SMTP credentials of each SES route as the deployment delivers them to the hosts (the SSM
    parameters holding the IAM access key and its SES SMTP password): what the lab's SES stand-in accepts."""
    values = {str(p.inputs.get("name")): str(p.inputs.get("value"))
              for p in deployment.of_type("aws:ssm/parameter:Parameter")}
    result = {}
    for route in (r for r in plan.routes if r.kind == "ses"):
        for host in plan.hosts:
            # components/secondary_route.py route_parameter_name (not imported: it loads pulumi_aws).
            prefix = f"/mailinfra/{plan.environment}/{host.name}/route/{route.name}"
            username, password = values.get(f"{prefix}/username"), values.get(f"{prefix}/password")
            if username and password:
                result[route.name] = (username, password)
                break
    return result


def _start_hosts(lab: Lab, state: LabState, deployment: Deployment, world: MotoServer,
                 accesses: dict[str, HostAccess], *, rsa_only: bool) -> list[str]:
    skipped = []
    for host in lab.plan.hosts:
        if host.mta != "postfix":
            # PowerMTA is licensed software with no Debian package: the lab runs the Postfix hosts only.
            print(f"lab: host {host.name} runs {host.mta}, which the lab cannot run; skipped", file=sys.stderr)
            skipped.append(host.name)
            continue
        root = lab.layout.runtime_dir / "root"
        if host.name not in accesses:
            raise LabError(f"host {host.name}: the deployment declares no instance for it")
        staged = mta.provision_host(deployment, world, accesses[host.name], lab.plan, host, root=root,
                                    namespace=lab.layout.namespace, interface=state.interface, rsa_only=rsa_only)
        mta.start_opendkim(state, lab.layout.namespace, staged)
        # The bounce processor and the suppression lookup before Postfix, which asks them (a missing one defers).
        lab_suppression.start_services(state, lab.layout.namespace, root, host, python_env())
        state.save(lab.layout.state_file)
        # Instances are independent: start them side by side (`postfix start` checks take ~1 s each).
        start = partial(mta.start_postfix, state, lab.layout.namespace)
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(start, staged.instances, [staged.listen] * len(staged.instances)))
        state.save(lab.layout.state_file)
    return skipped


def _firewall_and_monitoring(lab: Lab, state: LabState, deployment: Deployment, clock: _Phases) -> None:
    """The firewall, then the exporters and Prometheus: they scrape through it, as on AWS."""
    install_firewall(lab, deployment)
    clock.mark("firewall")
    layout = lab.layout
    lab_monitoring.start_exporters(state, lab.plan, layout.namespace, layout.runtime_dir / "root", python_env())
    lab_monitoring.start_prometheus(state, lab.plan, layout.namespace, layout.runtime_dir)
    state.save(layout.state_file)
    clock.mark("monitoring (exporters, Prometheus)")


def install_firewall(lab: Lab, deployment: Deployment) -> str:
    """The deployment's security groups and EIP NAT as the namespace's nftables ruleset (kept in the build
    directory as firewall.nft); the lab DNS stands for the VPC resolver, which groups do not filter."""
    return firewall.install_firewall(lab.layout.namespace, deployment, unfiltered=[DNS_ADDRESS],
                                     keep=lab.layout.build_dir / "firewall.nft")


def staged_instances(lab: Lab) -> list[tuple[str, mta.PostfixInstance]]:
    """(host, instance) of every running Postfix instance, for queue inspection and restarts."""
    root = lab.layout.runtime_dir / "root"
    result = []
    for host in lab.plan.hosts:
        if host.mta != "postfix":
            continue
        result.append((host.name, mta.PostfixInstance("postfix", root / "etc/postfix", None, None)))
        result += [(host.name, mta.PostfixInstance(i.name, root / i.config_dir.lstrip("/"), i.pool, i.port))
                   for i in plan_instances(lab.plan, host)]
    return result


def _lab_certificate(directory: Path, names: list[str]) -> tuple[Path, Path, Path]:
    """A lab CA (made now, for this lab only) and a certificate it signs for the routes' names:
    (CA certificate, certificate, key). Postfix `secure` verifies the chain and the name."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"mailinfra lab CA {directory.name}")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
          .not_valid_after(now + dt.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0] if names else "lab")])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names or ["lab"]]), False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256()))
    ca_path, cert_path, key_path = directory / "ca.crt", directory / "route.crt", directory / "route.key"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return ca_path, cert_path, key_path


__all__ = ["OUTSIDER_ADDRESS", "Lab", "RoutePlan", "auth_log", "down", "fault", "load_lab", "python_env", "route_mode",
           "send", "up"]
