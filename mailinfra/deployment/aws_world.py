"""The AWS a host talks to at boot, from the deployment: S3, SSM and IAM in a moto server, IAM enforced.

An edge module. What is loaded comes from the RESOURCES the program declares (mailinfra.deployment.program),
never from the plan: each `aws:s3/bucketObjectv2:BucketObjectv2` (the hosts' config manifests) in its bucket,
each `aws:ssm/parameter:Parameter` with its value (SecureStrings in clear: the lab's own deployment), each
`aws:iam/role:Role` with its trust policy, each `aws:iam/rolePolicy:RolePolicy` document (input `policy`) and
each `aws:iam/instanceProfile:InstanceProfile`. A host's credentials are those of the role of the instance
profile its `aws:ec2/instance:Instance` names, as EC2 hands them to the instance (IMDS): so what a host may
read is exactly what the deployment's policies grant, and a policy that grants too little (or too much)
shows here as it would on AWS.

How moto enforces IAM (moto docs/iam.rst, moto/core/authorization.py): requests signed with an IAM user's or
an assumed role's keys are checked against that identity's policies once the server's
INITIAL_NO_AUTH_ACTION_COUNT requests have been served; `POST /moto-api/reset-auth` sets that count (moto's
own `set_initial_no_auth_action_count` does so in server mode). Setup runs in the unchecked window: the
loading stands for the deployer (`pulumi up`'s admin rights), the AssumeRole calls for EC2 itself, which
assumes an instance profile's role as `ec2.amazonaws.com` (the principal the role's trust policy must name;
IAM User Guide, "Using an IAM role to grant permissions to applications running on Amazon EC2 instances").
Then the count is set to 0 and every later request, each host's included, is checked.

One gap of moto 5.2 is closed here: its SSM responses check every action against the resource "*" (no
`_determine_resource`), so a policy naming parameter ARNs would match nothing. `serve` gives GetParameter the
parameter's ARN, as AWS authorizes it (Service Authorization Reference, AWS Systems Manager: GetParameter,
resource type `parameter`, arn:${Partition}:ssm:${Region}:${Account}:parameter/${ParameterName}).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mailinfra.deployment.mock_runtime import MOCK_ACCOUNT
from mailinfra.deployment.program import Deployment, Resource
from mailinfra.errors import MailinfraError

START_TIMEOUT_SECONDS = 30.0
# The mock runtime's ARNs (the policies' Resource elements) carry MOCK_ACCOUNT; moto serves its default
# account, 123456789012 (moto.core.DEFAULT_ACCOUNT_ID): `load_world` checks that the two agree, or every
# policy would name resources moto does not have.
MOTO_ACCOUNT = MOCK_ACCOUNT
EC2_PRINCIPAL = "ec2.amazonaws.com"


class AwsWorldError(MailinfraError):
    """The deployment's AWS resources could not be loaded into the stand-in, or a host gets no role."""


@dataclass(frozen=True)
class RoleCredentials:
    """Temporary credentials of one role session (what IMDS serves an instance)."""

    access_key_id: str
    secret_access_key: str
    session_token: str

    def environment(self) -> dict[str, str]:
        """The AWS SDK environment for a process that uses these credentials and nothing else."""
        return {"AWS_ACCESS_KEY_ID": self.access_key_id, "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
                "AWS_SESSION_TOKEN": self.session_token, "AWS_CONFIG_FILE": os.devnull,
                "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_EC2_METADATA_DISABLED": "true"}


@dataclass(frozen=True)
class HostAccess:
    """One instance as AWS sees it: its host tag, its role and that role's session credentials."""

    host: str
    instance: str  # the Instance resource's name
    role: str
    credentials: RoleCredentials


@dataclass(frozen=True)
class MotoServer:
    pid: int
    url: str


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def moto_argv(port: int) -> list[str]:
    """The server process: moto on 127.0.0.1:`port` with the SSM resource fix (`serve` below)."""
    return [sys.executable, "-m", "mailinfra.deployment.aws_world", "serve", "--port", str(port)]


def moto_environment() -> dict[str, str]:
    # Unchecked until enforce_iam: moto reads the variable once, at import (moto/settings.py).
    return {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "inf"}


def wait_for_moto(pid: int, port: int, log: Path | None = None) -> MotoServer:
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while True:
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=2).close()  # noqa: S310 - our http URL
            return MotoServer(pid, url)
        except OSError:
            if not _alive(pid) or time.monotonic() > deadline:
                stop_moto(pid)
                raise AwsWorldError(f"moto server on {url}: did not start within {START_TIMEOUT_SECONDS:.0f} s"
                                    f"{f' (see {log})' if log else ''}") from None
            time.sleep(0.2)


def start_moto(log: Path | None = None, port: int | None = None) -> MotoServer:
    """A moto server on 127.0.0.1 in its own process; the caller stops it by PID (stop_moto)."""
    port = port or free_port()
    out = log.open("ab") if log else subprocess.DEVNULL
    process = subprocess.Popen(moto_argv(port), stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                               env=moto_environment())
    if log:
        out.close()  # type: ignore[union-attr]
    return wait_for_moto(process.pid, port, log)


def _alive(pid: int) -> bool:
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def stop_moto(pid: int, timeout: float = 10.0) -> None:
    """SIGTERM to the server's PID, SIGKILL if it is still there after `timeout`."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        except ChildProcessError:  # not our child (a later `lab down`): poll its existence
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _client(service: str, url: str, region: str, credentials: RoleCredentials | None = None) -> Any:
    import boto3

    if credentials is None:
        # The deployer: requests in the unchecked setup window (any key will do there).
        credentials = RoleCredentials("AKIADEPLOYER00000000", "deployer-secret", "")
    session = boto3.session.Session(aws_access_key_id=credentials.access_key_id,
                                    aws_secret_access_key=credentials.secret_access_key,
                                    aws_session_token=credentials.session_token or None, region_name=region)
    return session.client(service, endpoint_url=url)


def role_name(resource: Resource) -> str:
    """The name IAM knows a role by; what RolePolicy.role and InstanceProfile.role refer to (its id)."""
    return str(resource.inputs.get("name") or resource.name)


def load_world(server: MotoServer, deployment: Deployment, region: str) -> dict[str, HostAccess]:
    """Load the deployment's S3 objects, SSM parameters and IAM roles into `server`, give each instance its
    role session, then turn IAM enforcement on. Returns host name -> its access."""
    s3 = _client("s3", server.url, region)
    ssm = _client("ssm", server.url, region)
    iam = _client("iam", server.url, region)
    sts = _client("sts", server.url, region)
    account = sts.get_caller_identity()["Account"]
    if account != MOTO_ACCOUNT:
        raise AwsWorldError(f"moto account {account}: expected {MOTO_ACCOUNT}, the account of the mock runtime's ARNs")
    objects = deployment.of_type("aws:s3/bucketObjectv2:BucketObjectv2")
    for bucket in sorted({str(o.inputs["bucket"]) for o in objects}):
        # us-east-1 takes no LocationConstraint (S3 API CreateBucket).
        s3.create_bucket(Bucket=bucket, **({} if region == "us-east-1" else {
            "CreateBucketConfiguration": {"LocationConstraint": region}}))
    for obj in objects:
        s3.put_object(Bucket=obj.inputs["bucket"], Key=obj.inputs["key"],
                      Body=str(obj.inputs.get("content", "")).encode(),
                      ContentType=obj.inputs.get("contentType") or "binary/octet-stream")
    for parameter in deployment.of_type("aws:ssm/parameter:Parameter"):
        ssm.put_parameter(Name=parameter.inputs.get("name") or parameter.name, Value=str(parameter.inputs["value"]),
                          Type=parameter.inputs.get("type", "String"), Overwrite=True)
    roles = {role_name(r): r for r in deployment.of_type("aws:iam/role:Role")}
    for name, declared in roles.items():
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=str(declared.inputs["assumeRolePolicy"]))
    for policy in deployment.of_type("aws:iam/rolePolicy:RolePolicy"):
        iam.put_role_policy(RoleName=str(policy.inputs["role"]),
                            PolicyName=str(policy.inputs.get("name") or policy.name),
                            PolicyDocument=str(policy.inputs["policy"]))
    profiles: dict[str, str] = {}
    for profile in deployment.of_type("aws:iam/instanceProfile:InstanceProfile"):
        name = str(profile.inputs.get("name") or profile.name)
        iam.create_instance_profile(InstanceProfileName=name)
        iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=str(profile.inputs["role"]))
        profiles[name] = str(profile.inputs["role"])
    hosts = {}
    for instance in deployment.of_type("aws:ec2/instance:Instance"):
        host = str((instance.inputs.get("tags") or {}).get("host") or instance.name)
        profile_name = instance.inputs.get("iamInstanceProfile")
        if profile_name not in profiles:
            raise AwsWorldError(f"instance {instance.name}: iamInstanceProfile {profile_name!r}, expected one of "
                                f"the deployment's instance profiles ({', '.join(sorted(profiles)) or 'none'})")
        role: str = profiles[str(profile_name)]
        if role not in roles:
            raise AwsWorldError(f"instance profile {profile_name}: role {role!r}, expected a role of the deployment")
        if not _trusts_ec2(str(roles[role].inputs["assumeRolePolicy"])):
            # EC2 cannot hand the instance credentials of a role that does not trust it.
            raise AwsWorldError(f"role {role}: assumeRolePolicy does not allow {EC2_PRINCIPAL} sts:AssumeRole, "
                                "expected it to (the instance would get no credentials)")
        session = sts.assume_role(RoleArn=f"arn:aws:iam::{MOTO_ACCOUNT}:role/{role}",
                                  RoleSessionName=instance.name[:64])["Credentials"]
        hosts[host] = HostAccess(host, instance.name, role, RoleCredentials(
            session["AccessKeyId"], session["SecretAccessKey"], session["SessionToken"]))
    enforce_iam(server)
    return hosts


def enforce_iam(server: MotoServer) -> None:
    """From now on every request is checked against its signer's policies (0 unchecked requests left)."""
    request = urllib.request.Request(f"{server.url}/moto-api/reset-auth", data=b"0",  # noqa: S310 - our http URL
                                     method="POST", headers={"Content-Type": "text/plain"})
    urllib.request.urlopen(request, timeout=10).close()  # noqa: S310


def reset_world(server: MotoServer) -> None:
    """Empty the server (every backend) and leave requests unchecked again, ready for another load_world."""
    for path, data in (("/moto-api/reset", b""), ("/moto-api/reset-auth", b"inf")):
        request = urllib.request.Request(f"{server.url}{path}", data=data, method="POST",  # noqa: S310
                                         headers={"Content-Type": "text/plain"})
        urllib.request.urlopen(request, timeout=10).close()  # noqa: S310 - our http URL


def _trusts_ec2(document: str) -> bool:
    for statement in _statements(json.loads(document)):
        principal = statement.get("Principal") or {}
        services = principal.get("Service", []) if isinstance(principal, dict) else []
        actions = statement.get("Action", [])
        if (statement.get("Effect") == "Allow" and EC2_PRINCIPAL in _as_list(services)
                and "sts:AssumeRole" in _as_list(actions)):
            return True
    return False


def _statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in _as_list(document.get("Statement", [])) if isinstance(s, dict)]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _patch_ssm_resources() -> None:
    """GetParameter authorized against the parameter's ARN, as AWS does (moto checks SSM against "*")."""
    from moto.ssm.responses import SimpleSystemManagerResponse

    def determine_resource(self: Any) -> str:
        if self._get_action() == "GetParameter":
            name = str(self._get_param("Name") or "")
            if name.startswith("arn:"):
                return name
            # A name with a path keeps its leading slash in the ARN: parameter/mailinfra/... (SSM docs).
            return f"arn:aws:ssm:{self.region}:{self.current_account}:parameter/{name.lstrip('/')}"
        return "*"

    SimpleSystemManagerResponse._determine_resource = determine_resource  # type: ignore[attr-defined]


def serve(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m mailinfra.deployment.aws_world serve")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    _patch_ssm_resources()
    from moto.server import main as moto_main

    moto_main(["-H", "127.0.0.1", "-p", str(args.port)])


if __name__ == "__main__":
    if sys.argv[1:2] != ["serve"]:
        sys.exit("usage: python -m mailinfra.deployment.aws_world serve --port PORT")
    serve(sys.argv[2:])
