"""Run the real Pulumi program (__main__.py) under the SDK's mock runtime and list its resources.

An edge module: it imports pulumi (lazily) and executes the program, so it stays out of the pure
core. `mailinfra preview` adds `collect_resources(stack)` to plan.json and review.md; with the
Pulumi CLI, `pulumi preview` remains the authority on what changes.

Mock-runtime facts this relies on (../shared/notes/pulumi.md): resources register synchronously
enough to run a whole program in-process; `additional_secret_outputs` is not applied and config
defaults are not applied, so the program itself marks secrets and the config is given in full.
Runtime state is global: one program run per process (tests and benchmarks use subprocesses).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import hashlib
import json
import logging
import runpy
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mailinfra.errors import MailinfraError
from mailinfra.model.load import (
    NAMESPACE,
    decode_pulumi_config,
    load_stack,
    resolve_stack_file,
    stack_name_of,
    validate_config,
)

ROOT = Path(__file__).resolve().parents[2]
PROGRAM = ROOT / "__main__.py"
PROJECT = "mailinfra"
SECRET_MARKER = "[secret]"  # noqa: S105 - the mask shown instead of a secret, not one
MOCK_ACCOUNT = "123456789012"
DEFAULT_REGION = "us-east-1"


class ProgramError(MailinfraError):
    """The program refused the stack (its one-line errors) or failed under the mock runtime."""


@dataclass
class ProgramRun:
    """What one mock run registered: resources (ordered by URN) and the stack outputs."""

    resources: list[dict[str, Any]]
    outputs: dict[str, Any]
    secret_outputs: list[str]
    seconds: float
    errors: list[str] = field(default_factory=list)


def collect_resources(stack_name: str, stacks_dir: Path | None = None, plan: Any = None) -> list[dict[str, Any]]:
    """The resources `pulumi up` would create for a stack, as JSON-ready dicts, secrets masked.

    Each: `type` (Pulumi type token), `name`, `urn`, `parent` (name of the parent component or
    null), `component` (bool), `protect`, `retain_on_delete`, `import_id`, `depends_on` (names),
    `aliases`, `inputs` (wire names; every secret replaced by "[secret]"), and where known `pool`,
    `stream`, `host`, `placeholder` (its values are preview stand-ins until `pulumi up`).
    Secrets the preview cannot read (encrypted `secure:` values, keys not set yet) are given
    placeholder values, which the program accepts because this is a preview (dry run).
    """
    path = resolve_stack_file(stack_name, stacks_dir)  # a name, or a stack file anywhere
    with fewer_collections():
        config, secret_keys = preview_config(str(path), None, plan)
        return run_program(stack_name_of(path), config, secret_keys, preview=True).resources


@contextlib.contextmanager
def fewer_collections() -> Iterator[None]:
    """Run with Python's cyclic garbage collector triggered 100x less often.

    Importing the provider SDKs and registering resources allocates millions of long-lived objects; with
    the default threshold (a collection every 700 net allocations) the collector re-walks that growing heap
    thousands of times: ~0.7 s of a 2.8 s `mailinfra preview prod`. Reference counting still frees
    everything acyclic at once, and cycles are still collected, only later; a run is short-lived.
    """
    thresholds = gc.get_threshold()
    gc.set_threshold(70_000, 50, 100)
    try:
        yield
    finally:
        # Everything allocated so far (the SDKs' modules, the registered resources) lives until the
        # process ends: move it out of the collector's generations, or the first collection after the
        # threshold is restored walks all of it (~0.35 s of CPU after a prod run).
        gc.freeze()
        gc.set_threshold(*thresholds)


def preview_config(stack_name: str, stacks_dir: Path | None = None,
                   plan: Any = None) -> tuple[dict[str, str], list[str]]:
    """Pulumi config for a mock run from stacks/Pulumi.<stack>.yaml, with placeholder secrets.

    `plan`: the caller's plan of this very stack file, when it has one (saves loading it twice).
    """
    if plan is None:
        from mailinfra.plan import build_plan

        plan = build_plan(load_stack(stack_name, stacks_dir))  # validated: a bad file is one ConfigError line
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    text = resolve_stack_file(stack_name, stacks_dir).read_text(encoding="utf-8")
    data = yaml.load(text, Loader=loader)  # noqa: S506 -- a safe loader (libyaml's when available)
    config: dict[str, str] = {}
    secret_keys: list[str] = []
    for raw_key, value in (data.get("config") or {}).items():
        key = str(raw_key) if ":" in str(raw_key) else f"{PROJECT}:{raw_key}"
        if isinstance(value, dict) and set(value) == {"secure"}:
            config[key] = f"{SECRET_MARKER} {key}"
            secret_keys.append(key)
        else:
            config[key] = value if isinstance(value, str) else json.dumps(value, default=str)
    for name in required_secrets(plan):
        key = f"{NAMESPACE}:{name}"
        if key not in config:
            config[key] = f"{SECRET_MARKER} {key}"
            secret_keys.append(key)
    return config, secret_keys


def required_secrets(plan: Any) -> list[str]:
    """Config keys (without namespace) the program reads as secrets for this plan."""
    from components.dkim_keys import DELIVERED_STATES
    from mailinfra.dns.dkim import dkim_secret_key

    names = [dkim_secret_key(k.domain, k.selector) for k in plan.dkim_keys if k.state in DELIVERED_STATES]
    names += [r.password_secret for r in plan.routes if r.kind == "relay" and r.password_secret]
    names += [s.password_secret for s in getattr(plan, "seeds", ())]  # components/placement.py
    return names


@fewer_collections()
def run_program(
    stack_name: str,
    config: Mapping[str, str],
    secret_keys: Sequence[str] = (),
    *,
    preview: bool = True,
    program: Path = PROGRAM,
    fingerprint_secrets: bool = False,
    reveal_secrets: bool = False,
) -> ProgramRun:
    """Run the program once under mocks (once per process: the runtime's state is global).

    `reveal_secrets`: keep secret inputs in clear (the lab only, whose secrets it made itself; never
    for review artifacts, which always mask them)."""
    import pulumi
    from pulumi.runtime import mocks, settings, stack

    started = time.perf_counter()
    # One loop for the whole run: the root Stack's futures are created by set_mocks below.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    settings.reset_options(project=PROJECT, stack=stack_name, preview=preview)
    recorder = _Recorder(fingerprint_secrets, reveal_secrets, keep_outputs=not preview)
    _EIP_ADDRESSES.clear()
    _EIP_ADDRESSES.update(_plan_addresses(stack_name, config))
    monitor = _RecordingMonitor(_Mocks(provider_region(config)), recorder)
    log = _CollectingHandler()
    logger = logging.getLogger("mailinfra.deployment.mock_runtime.engine")
    logger.propagate = False
    logger.handlers = [log]
    logger.setLevel(logging.WARNING)
    mocks.set_mocks(monitor.mocks, project=PROJECT, stack=stack_name, preview=preview, monitor=monitor,
                    logger=logger)
    pulumi.runtime.set_all_config(dict(config), list(secret_keys))
    if str(program.parent) not in sys.path:
        sys.path.insert(0, str(program.parent))  # the program imports components/ from its directory
    restores = (_skip_source_positions(), _skip_alias_urns())
    try:
        try:
            runpy.run_path(str(program), run_name="__main__")
        except SystemExit as exit_:
            if exit_.code not in (0, None):
                raise ProgramError("; ".join(log.errors) or f"the program exited with {exit_.code}") from None
        loop.run_until_complete(stack.wait_for_rpcs())
        outputs, secret_outputs = loop.run_until_complete(_resolve_outputs(settings.get_root_resource()))
    except pulumi.RunError as error:
        raise ProgramError(str(error)) from None
    finally:
        for restore in restores:
            restore()
        loop.close()
    return ProgramRun(recorder.finish(), outputs, secret_outputs, time.perf_counter() - started, log.errors)


def _skip_source_positions() -> Any:
    """Stop the SDK capturing a Python stack trace per resource during the mock run.

    The trace only feeds the CLI's source positions for diagnostics, which a mock run has no use for,
    and it is ~15% of the program's time (traceback.extract_stack per resource). Internal SDK name:
    when it is absent (a newer SDK), nothing is patched and the run is merely slower.
    """
    from pulumi.runtime import resource

    original = getattr(resource, "_get_stack_trace", None)
    pb2 = getattr(resource, "source_pb2", None)
    if original is None or pb2 is None:
        return lambda: None
    empty = pb2.StackTrace()
    resource._get_stack_trace = lambda: empty

    def restore() -> None:
        resource._get_stack_trace = original

    return restore


def _skip_alias_urns() -> Any:
    """Stop the SDK computing every alias's full URN when a resource is constructed.

    `Resource.__init__` turns each alias into an Output chain of URNs (`collapse_alias_to_urn`), which
    only `all_aliases` reads: the path for an engine *without* alias specs. The mock monitor supports
    alias specs (`MockMonitor.SupportsFeature` is true for everything but "outputValues"), so the SDK
    sends each alias as given (`prepare_aliases`, the spec branch) and the URNs are never used; prod's
    IPs carry ~1,750 aliases (ip_pool.py's legacy names), ~0.6 s of CPU in a 576-resource run.
    Internal SDK name: when it is absent (a newer SDK), nothing is patched and the run is merely slower.
    """
    import pulumi.resource as resource_module

    original = getattr(resource_module, "collapse_alias_to_urn", None)
    if original is None:
        return lambda: None
    resource_module.collapse_alias_to_urn = lambda alias, *_: alias  # type: ignore[attr-defined]

    def restore() -> None:
        resource_module.collapse_alias_to_urn = original  # type: ignore[attr-defined]

    return restore


def _plan_addresses(stack_name: str, config: Mapping[str, str]) -> dict[str, str]:
    """IP name -> planned address, so a mock EIP "allocates" the address the plan shows."""
    from mailinfra.plan import build_plan

    raw = decode_pulumi_config(lambda key: config.get(f"{NAMESPACE}:{key}"))
    try:
        plan = build_plan(validate_config(raw, stack_name, "mock run"))
    except MailinfraError:
        return {}  # the program reports the problem itself
    return {ip.name: ip.address for ip in plan.ips}


async def _resolve_outputs(root: Any) -> tuple[dict[str, Any], list[str]]:
    import pulumi

    values: dict[str, Any] = {}
    secret: list[str] = []
    for name, value in (getattr(root, "outputs", None) or {}).items():
        output = pulumi.Output.from_input(value)
        values[name] = await output.future(with_unknowns=False)
        if await output.is_secret():
            secret.append(name)
    return values, secret


class _CollectingHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.errors: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR:
            self.errors.append(record.getMessage())


def _short(text: str, prefix: str, length: int = 17) -> str:
    return prefix + hashlib.sha256(text.encode()).hexdigest()[:length]


def provider_region(config: Mapping[str, str]) -> str | None:
    """The region the default AWS provider would take: `aws:region`, else AWS_REGION, else AWS_DEFAULT_REGION
    (pulumi-aws schema defaults; `pulumi_aws/config/vars.py`, `region`). None: the provider has no region."""
    import os

    return config.get("aws:region") or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")


# Resources whose id is all the mock gives them: AWS's id prefix and a digest of the name.
_ID_PREFIXES = {"aws:ec2/instance:Instance": "i-", "aws:ec2/securityGroup:SecurityGroup": "sg-",
                "aws:ec2/managedPrefixList:ManagedPrefixList": "pl-"}


class _Mocks:
    """Deterministic stand-ins for what AWS/Cloudflare would return (ids, ARNs, lookups)."""

    def __init__(self, region: str | None) -> None:
        self.provider_region = region
        self.region = region or DEFAULT_REGION  # ARNs and zones of a mock run that has no region

    def new_resource(self, args: Any) -> tuple[str, dict[str, Any]]:  # noqa: PLR0911 - one branch per type
        inputs = dict(args.inputs)
        name = args.name
        typ = args.typ
        region = inputs.get("region") or self.region
        if typ == "aws:ec2/eip:Eip":
            allocation = args.resource_id or _short(name, "eipalloc-")
            tags = inputs.get("tags") or {}
            address = _EIP_ADDRESSES.get(str(tags.get("ip", "")), "")
            return allocation, {**inputs, "allocationId": allocation, "publicIp": address}
        if typ == "aws:ssm/parameter:Parameter":
            arn = f"arn:aws:ssm:{region}:{MOCK_ACCOUNT}:parameter{inputs.get('name', '/' + name)}"
            return inputs.get("name", name), {**inputs, "arn": arn}
        if typ == "aws:ec2/networkInterface:NetworkInterface":
            # Explicit addresses are what AWS assigns; a bare count gets made-up ones.
            private = [str(a) for a in inputs.get("privateIps") or ()]
            if not private:
                count = int(inputs.get("privateIpsCount") or 0) + 1
                digest = int(hashlib.sha256(name.encode()).hexdigest()[:4], 16) % 200
                private = [f"10.{digest}.0.{10 + i}" for i in range(count)]
            return _short(name, "eni-"), {**inputs, "privateIps": private, "privateIp": private[0]}
        if typ == "aws:iam/accessKey:AccessKey":
            return _short(name, "AKIA", 16).upper(), {
                **inputs, "sesSmtpPasswordV4": _short(name, "mock-smtp-password-", 24)}
        if typ.startswith("aws:iam/"):
            identity = inputs.get("name") or name
            kind = typ.split("/")[1].split(":")[0]
            return identity, {**inputs, "name": identity, "arn": f"arn:aws:iam::{MOCK_ACCOUNT}:{kind}/{identity}"}
        if typ == "aws:sesv2/emailIdentity:EmailIdentity":
            identity = inputs.get("emailIdentity", name)
            return identity, {**inputs, "arn": f"arn:aws:ses:{region}:{MOCK_ACCOUNT}:identity/{identity}"}
        if (events := _ses_event_outputs(typ, name, inputs, region)) is not None:
            return events
        if typ == "aws:s3/bucket:Bucket":
            # The provider completes bucket_prefix with a unique suffix; the ARN has no region or account.
            bucket = inputs.get("bucket") or f"{inputs.get('bucketPrefix', '')}{_short(name, '', 12)}"
            return bucket, {**inputs, "bucket": bucket, "arn": f"arn:aws:s3:::{bucket}"}
        if typ == "aws:s3/bucketObjectv2:BucketObjectv2":
            key = inputs.get("key", name)
            return key, {**inputs, "versionId": _short(str(inputs.get("content", "")), "", 32)}
        if typ in _ID_PREFIXES:
            return _short(name, _ID_PREFIXES[typ]), inputs
        return f"{name}-id", inputs

    def call(self, args: Any) -> Any:  # noqa: PLR0911 - one branch per function
        function, call = args.token, dict(args.args)
        if function == "aws:index/getRegion:getRegion":
            if self.provider_region is None:
                # What the provider says when it has no region (the call fails, as with the real one).
                return {}, [("region", "Missing required configuration variable 'aws:region'")]
            return {"region": self.provider_region, "name": self.provider_region, "id": self.provider_region,
                    "endpoint": f"ec2.{self.provider_region}.amazonaws.com",
                    "description": self.provider_region}
        if function == "aws:route53/getZone:getZone":
            zone = _short(call.get("name", ""), "Z", 13).upper()
            return {"id": zone, "zoneId": zone, "name": call.get("name")}
        if function == "cloudflare:index/getZone:getZone":
            name = (call.get("filter") or {}).get("name", "")
            return {"id": _short(name, "", 32), "zoneId": _short(name, "", 32), "name": name}
        if function == "aws:ec2/getSubnet:getSubnet":
            subnet = call.get("id") or _short(str(call.get("availabilityZone")), "subnet-")
            return {"id": subnet, "vpcId": "vpc-0mock0000000000", "cidrBlock": "10.0.0.0/20",
                    "availabilityZone": call.get("availabilityZone") or f"{self.region}a"}
        if function == "aws:ec2/getAmi:getAmi":
            return {"id": "ami-0mockdebian12000", "name": "debian-12-amd64-mock"}
        return {}


def _ses_event_outputs(typ: str, name: str, inputs: dict[str, Any], region: str) -> tuple[str, dict[str, Any]] | None:
    """Id and outputs of the SES event pipeline's resources (components/secondary_route.py)."""
    if typ == "aws:sesv2/configurationSet:ConfigurationSet":
        configuration_set = inputs.get("configurationSetName", name)
        return configuration_set, {
            **inputs, "arn": f"arn:aws:ses:{region}:{MOCK_ACCOUNT}:configuration-set/{configuration_set}"}
    if typ == "aws:sns/topic:Topic":
        # An SNS topic's id is its ARN (terraform-provider-aws `resourceTopicCreate`: d.SetId(topicARN)).
        arn = f"arn:aws:sns:{region}:{MOCK_ACCOUNT}:{inputs.get('name', name)}"
        return arn, {**inputs, "arn": arn}
    if typ == "aws:kms/key:Key":
        key_id = _short(name, "", 32)
        return key_id, {**inputs, "keyId": key_id, "arn": f"arn:aws:kms:{region}:{MOCK_ACCOUNT}:key/{key_id}"}
    if typ == "aws:sqs/queue:Queue":
        # An SQS queue's id is its URL (terraform-provider-aws `resourceQueueCreate`: d.SetId(queueURL)).
        queue = inputs.get("name", name)
        url = f"https://sqs.{region}.amazonaws.com/{MOCK_ACCOUNT}/{queue}"
        return url, {**inputs, "arn": f"arn:aws:sqs:{region}:{MOCK_ACCOUNT}:{queue}", "url": url}
    if typ == "aws:dynamodb/table:Table":
        # A table's id is its name (terraform-provider-aws `resourceTableCreate`: d.SetId(tableName)).
        table = inputs.get("name", name)
        return table, {**inputs, "arn": f"arn:aws:dynamodb:{region}:{MOCK_ACCOUNT}:table/{table}"}
    return None


# Plan addresses by IP name: new EIPs "allocate" their placeholder, adopted ones keep theirs.
_EIP_ADDRESSES: dict[str, str] = {}


class _Recorder:
    def __init__(self, fingerprint_secrets: bool, reveal_secrets: bool = False, keep_outputs: bool = False) -> None:
        self.entries: list[dict[str, Any]] = []
        self.reveal_secrets = reveal_secrets
        # An up run keeps what the mocks returned (an Eip's publicIp): the deployment emulator reads
        # them; a preview does not, so plan.json stays as it was.
        self.keep_outputs = keep_outputs
        # Tests only: sha256 of each secret input, to prove which secret reached which resource
        # without the value itself leaving the run.
        self.fingerprint_secrets = fingerprint_secrets

    def add(self, request: Any, urn: str, inputs: Mapping[str, Any], outputs: Mapping[str, Any]) -> None:
        aliases = []
        for alias in request.aliases:
            aliases.append(alias.spec.name if alias.WhichOneof("alias") == "spec" else alias.urn)
        self.entries.append({
            "type": request.type,
            "name": request.name,
            "urn": urn,
            "parent_urn": request.parent or None,
            "component": not request.custom,
            "protect": bool(request.protect),
            "retain_on_delete": bool(request.retainOnDelete),
            # What decides how `pulumi up --replace` runs (tests/pulumi/test_host_replacement.py).
            "delete_before_replace": bool(request.deleteBeforeReplace),
            "ignore_changes": sorted(request.ignoreChanges),
            "replace_on_changes": sorted(request.replaceOnChanges),
            "import_id": request.importId or None,
            "depends_on_urns": sorted(set(request.dependencies)),
            "aliases": aliases,
            "inputs": _reveal(dict(inputs)) if self.reveal_secrets else _mask(dict(inputs)),
            "secret_inputs": sorted(_secret_paths(dict(inputs))),
        })
        if self.keep_outputs:
            self.entries[-1]["outputs"] = _reveal(dict(outputs)) if self.reveal_secrets else _mask(dict(outputs))
        if request.provider:  # an explicit provider ("<urn>::<id>"); absent for the default one
            self.entries[-1]["provider"] = request.provider
        if self.fingerprint_secrets:
            self.entries[-1]["secret_sha256"] = _fingerprints(dict(inputs))

    def finish(self) -> list[dict[str, Any]]:
        """The resources ordered by URN: registration order depends on when each Output resolved in the
        event loop and changes run to run, while two previews of one tree must be byte-identical."""
        names = {e["urn"]: e["name"] for e in self.entries}
        result = []
        for entry in sorted(self.entries, key=lambda e: str(e["urn"])):
            parent = entry.pop("parent_urn")
            entry["parent"] = names.get(parent) if parent else None
            entry["parent_urn"] = parent if parent in names else None
            entry["depends_on"] = sorted(names.get(u, u) for u in entry.pop("depends_on_urns"))
            result.append(entry)
        _attribute(result)
        return result


def _attribute(resources: list[dict[str, Any]]) -> None:
    """Stream, pool and host of each resource, from its own tags or its component's."""
    by_urn = {r["urn"]: r for r in resources}
    for resource in resources:
        tags = resource["inputs"].get("tags") if isinstance(resource["inputs"].get("tags"), dict) else {}
        parent = by_urn.get(resource["parent_urn"] or "") or {}
        for key in ("stream", "pool", "host", "ip"):
            value = tags.get(key) or parent.get(key)
            if value:
                resource[key] = value


class _RecordingMonitor:
    """MockMonitor that also keeps what the engine would see: parent, protect, deps, aliases, import."""

    def __new__(cls, mocks: _Mocks, recorder: _Recorder) -> Any:
        from pulumi.runtime import rpc
        from pulumi.runtime.mocks import MockMonitor

        class Monitor(MockMonitor):
            def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
                response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
                if request.type != "pulumi:pulumi:Stack":
                    # The id too: other resources name this one by it (a rule's securityGroupId, an
                    # association's networkInterfaceId), as the provider's state does.
                    recorder.add(request, response.urn, rpc.deserialize_properties(request.object),
                                 {"id": response.id, **rpc.deserialize_properties(response.object)}
                                 if response.object else {"id": response.id})
                return response

        return Monitor(mocks)  # type: ignore[arg-type]  # duck-typed: new_resource and call


def _mask(value: Any) -> Any:
    from pulumi.runtime import rpc

    if rpc.is_rpc_secret(value):
        return SECRET_MARKER
    if isinstance(value, dict):
        return {k: _mask(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v) for v in value]
    return value


def _reveal(value: Any) -> Any:
    from pulumi.runtime import rpc

    value = rpc.unwrap_rpc_secret(value)
    if isinstance(value, dict):
        return {k: _reveal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_reveal(v) for v in value]
    return value


def _fingerprints(inputs: Mapping[str, Any]) -> dict[str, str]:
    from pulumi.runtime import rpc

    result = {}
    for key, value in inputs.items():
        inner = rpc.unwrap_rpc_secret(value)
        if isinstance(inner, dict):
            # A secret nested anywhere makes the whole enclosing input secret: look inside.
            wrapped = {k: v if rpc.is_rpc_secret(v) or not rpc.is_rpc_secret(value) else rpc.wrap_rpc_secret(v)
                       for k, v in inner.items()}
            result.update({f"{key}.{k}": v for k, v in _fingerprints(wrapped).items()})
        elif rpc.is_rpc_secret(value) and isinstance(inner, str):
            result[key] = hashlib.sha256(inner.encode()).hexdigest()
    return result


def _secret_paths(value: Any, path: str = "") -> list[str]:
    from pulumi.runtime import rpc

    if rpc.is_rpc_secret(value):
        return [path or "."]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _secret_paths(v, f"{path}.{k}" if path else k)]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _secret_paths(v, f"{path}[{i}]")]
    return []


# ------------------------------------------------------------------ command line (tests, bench)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m mailinfra.deployment.mock_runtime STACK` prints the run as JSON (one program run per process)."""
    parser = argparse.ArgumentParser(prog="python -m mailinfra.deployment.mock_runtime")
    parser.add_argument("stack", help="stack name (stacks/Pulumi.<stack>.yaml) or stack file")
    parser.add_argument("--config-json", type=Path,
                        help="run with this Pulumi config instead: {config: {...}, secret_keys: [...]}")
    parser.add_argument("--up", action="store_true", help="run as `pulumi up` (not a dry run)")
    parser.add_argument("--fingerprint-secrets", action="store_true",
                        help="add the sha256 of each secret input (tests; never for review artifacts)")
    parser.add_argument("--reveal-secrets", action="store_true",
                        help="secret inputs in clear (the lab, whose secrets are its own; never for artifacts)")
    args = parser.parse_args(argv)
    try:
        if args.config_json:
            given = json.loads(args.config_json.read_text(encoding="utf-8"))
            config, secret_keys = given["config"], given.get("secret_keys", [])
        else:
            config, secret_keys = preview_config(args.stack)
        run = run_program(args.stack, config, secret_keys, preview=not args.up,
                          fingerprint_secrets=args.fingerprint_secrets, reveal_secrets=args.reveal_secrets)
    except MailinfraError as error:
        print(json.dumps({"error": str(error)}))
        return 1
    print(json.dumps({"resources": run.resources, "outputs": run.outputs, "secret_outputs": run.secret_outputs,
                      "seconds": run.seconds, "errors": run.errors}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
