"""Replacing a host, one at a time, under the mock runtime: the resource graph and options that make
`pulumi up --replace <urn>` run without a conflict AWS would refuse and without losing mail.

What the engine does with a replacement (Pulumi docs, resource options): by default the replacement is
created first and the old resource deleted at the end of the update; with `deleteBeforeReplace` the old
one is deleted first, and so are the dependents that must be replaced with it (they are deleted before
it and created after it); a protected resource "cannot be deleted ... for any reason", so an update that
would replace one fails. Which dependents are replaced: those whose input from the replaced resource
forces a new resource in the provider (ForceNew in terraform-provider-aws, table below).

What AWS refuses while the old resource still exists (`CLAIMS`): a second instance with the same primary
ENI (a primary ENI cannot be detached from its instance, EC2 User Guide "Elastic network interfaces"); a
second ENI with a private address another ENI of the subnet holds (PrivateIpAddressInUse); a second
association of one EIP without reassociation; a second attachment of a volume (an EBS volume attaches to
one instance at a time, EC2 User Guide "Attach an Amazon EBS volume to an instance").
"""

from __future__ import annotations

import base64
import gzip
import hashlib
from collections.abc import Callable, Iterable
from typing import Any

import pytest

from tests.pulumi.conftest import STACKS, manifest_of

INSTANCE = "aws:ec2/instance:Instance"
ENI = "aws:ec2/networkInterface:NetworkInterface"
ASSOCIATION = "aws:ec2/eipAssociation:EipAssociation"
VOLUME = "aws:ebs/volume:Volume"
ATTACHMENT = "aws:ec2/volumeAttachment:VolumeAttachment"
# (dependent type, type it depends on): the dependent's input from it is ForceNew in terraform-provider-aws,
# so replacing the second replaces the first. aws_instance: the primary ENI's network_interface_id;
# aws_eip_association: every argument (network_interface_id, allocation_id) is ForceNew;
# aws_volume_attachment: instance_id and volume_id are ForceNew. Explicit depends_on alone replaces nothing.
FORCE_NEW = {(INSTANCE, ENI), (ASSOCIATION, ENI), (ATTACHMENT, INSTANCE), (ATTACHMENT, VOLUME)}


def _claims(resource: dict[str, Any]) -> set[tuple[str, str]]:
    """What AWS lets one live resource hold at a time."""
    inputs = resource["inputs"]
    if resource["type"] == INSTANCE:
        return {("primary ENI", inputs["primaryNetworkInterface"]["networkInterfaceId"])}
    if resource["type"] == ENI:
        return {("private address", f"{inputs['subnetId']}/{a}") for a in inputs["privateIps"]}
    if resource["type"] == ASSOCIATION:
        return {("EIP", inputs["allocationId"])}
    if resource["type"] == ATTACHMENT:
        return {("volume", inputs["volumeId"])}
    return set()


def replace_sequence(resources: list[dict[str, Any]], target: str) -> list[tuple[str, str]]:
    """The steps of `pulumi up --replace <target>` over the recorded graph: ("create"|"delete", name),
    in the engine's order. Raises AssertionError where Pulumi or AWS would stop the update."""
    by_name = {r["name"]: r for r in resources}
    order = [r["name"] for r in resources]  # registration order is a topological order
    replaced = {target}
    for name in order:  # dependents of a replaced resource through a ForceNew input
        resource = by_name[name]
        if any(d in replaced and (resource["type"], by_name[d]["type"]) in FORCE_NEW
               for d in resource["depends_on"] if d in by_name):
            replaced.add(name)
    protected = sorted(n for n in replaced if by_name[n]["protect"])
    assert not protected, f"Pulumi refuses to replace protected {protected}"

    def dependents(name: str) -> list[str]:
        found = {name}
        for other in order:
            if other in replaced and found & set(by_name[other]["depends_on"]):
                found.add(other)
        return [n for n in order if n in found and n != name]

    live = {n: _claims(by_name[n]) for n in order}  # old resources, then their replacements
    deleted: set[str] = set()
    steps: list[tuple[str, str]] = []
    for name in (n for n in order if n in replaced):
        if by_name[name]["delete_before_replace"]:
            for victim in [*reversed(dependents(name)), name]:
                if victim not in deleted:
                    steps.append(("delete", victim))
                    live.pop(victim)
                    deleted.add(victim)
        held = {claim: holder for holder, claims in live.items() for claim in claims}
        for claim in sorted(_claims(by_name[name])):
            assert claim not in held, f"creating {name}: {claim[0]} {claim[1]} still held by the old {held[claim]}"
        steps.append(("create", name))
        live[f"{name} (new)"] = _claims(by_name[name])
    steps += [("delete", n) for n in reversed(order) if n in replaced and n not in deleted]
    return steps


def _host_resources(run: dict[str, Any], host: str) -> list[dict[str, Any]]:
    # Every child of the host's component (and the host's own SSM parameters, which it depends on).
    return [r for r in run["resources"] if r["name"].startswith(f"host-{host}-") or r.get("host") == host]


def _one(resources: Iterable[dict[str, Any]], typ: str) -> dict[str, Any]:
    found = [r for r in resources if r["type"] == typ]
    assert len(found) == 1, (typ, [r["name"] for r in found])
    return found[0]


def _hosts(run: dict[str, Any]) -> list[str]:
    return sorted(run["outputs"]["hosts"])


@pytest.mark.parametrize("stack", STACKS)
def test_replacing_an_instance_keeps_its_eni_addresses_eips_and_spool_and_runs_without_conflict(
        mock_runs: Callable[[str], dict[str, Any]], stack: str) -> None:
    """GIVEN each host WHEN `pulumi up --replace <instance urn>` THEN the old instance goes first (its
    primary ENI is then free), the spool attachment is detached before and made again after, and the ENI,
    its addresses, the EIP associations and the spool volume are untouched."""
    run = mock_runs(stack)
    for host in _hosts(run):
        resources = _host_resources(run, host)
        instance = _one(resources, INSTANCE)
        attachment = _one(resources, ATTACHMENT)
        steps = replace_sequence(resources, instance["name"])
        assert steps == [("delete", attachment["name"]), ("delete", instance["name"]),
                         ("create", instance["name"]), ("create", attachment["name"])], (host, steps)


@pytest.mark.parametrize("stack", STACKS)
def test_replacing_an_eni_goes_old_first_with_its_instance_associations_and_attachment(
        mock_runs: Callable[[str], dict[str, Any]], stack: str) -> None:
    """GIVEN each host WHEN its ENI is replaced (`--replace <eni urn>`, or a subnet change) THEN its
    addresses are released before the new ENI asks for them, and the instance bound to it, the EIP
    associations and the spool attachment are replaced around it; the spool volume stays."""
    run = mock_runs(stack)
    for host in _hosts(run):
        resources = _host_resources(run, host)
        eni = _one(resources, ENI)
        steps = replace_sequence(resources, eni["name"])
        touched = {name for _, name in steps}
        volume = _one(resources, VOLUME)
        assert volume["name"] not in touched
        assert touched == {eni["name"], _one(resources, INSTANCE)["name"], _one(resources, ATTACHMENT)["name"],
                           *(r["name"] for r in resources if r["type"] == ASSOCIATION)}, (host, steps)


@pytest.mark.parametrize("stack", STACKS)
def test_mail_lives_on_a_protected_retained_encrypted_volume_in_the_host_s_az(
        mock_runs: Callable[[str], dict[str, Any]], plans: Callable[[str], Any], stack: str) -> None:
    """The queues and bounce mail are on an EBS volume no `up`/`destroy` deletes, in the AZ of the host's
    subnet (a volume attaches only to an instance in its AZ), attached to this host's instance, with the
    instance stopped before a detach; the manifest names it and the spool directories of the rendered
    configs (the Postfix instances' queue_directory, the bounce maildir, PowerMTA's spool)."""
    run = mock_runs(stack)
    plan = plans(stack)
    for host in _hosts(run):
        resources = _host_resources(run, host)
        volume, attachment, instance = (_one(resources, t) for t in (VOLUME, ATTACHMENT, INSTANCE))
        assert volume["protect"] and volume["retain_on_delete"], host
        assert volume["inputs"]["encrypted"] is True
        # The AZ of the subnet lookup (the mock answers a lookup by AZ with that AZ): the volume follows it.
        if plan.host(host).availability_zone and not plan.host(host).subnet_id:
            assert volume["inputs"]["availabilityZone"] == plan.host(host).availability_zone
        assert attachment["inputs"]["volumeId"] == f"{volume['name']}-id"  # the mock runtime's id of the volume
        assert attachment["inputs"]["stopInstanceBeforeDetaching"] is True
        assert {volume["name"], instance["name"]} <= set(attachment["depends_on"])
        # The root disk holds nothing the volume does not: it may go with the instance.
        assert instance["inputs"]["rootBlockDevice"]["deleteOnTermination"] is True
        assert instance["inputs"]["disableApiTermination"] is True
        assert not instance["protect"]  # Pulumi could not replace it otherwise
        spool = manifest_of(run, host)["spool"]
        assert spool["volume_id"] == f"{volume['name']}-id"
        paths = {d["path"] for d in spool["directories"]}
        if plan.host(host).mta == "powermta":
            assert "/var/spool/pmta" in paths
        else:
            instances = manifest_of(run, host)["postfix_instances"]
            assert {"/var/spool/postfix", *(f"/var/spool/{i['name']}" for i in instances)} <= paths
            if plan.host(host).accepts_bounces:
                assert "/var/lib/mailinfra/suppression" in paths  # the suppression store, not a maildir


def _user_data(instance: dict[str, Any]) -> str:
    inputs = instance["inputs"]
    if inputs.get("userData"):
        return str(inputs["userData"])
    return gzip.decompress(base64.b64decode(inputs["userDataBase64"])).decode()


@pytest.mark.parametrize("stack", STACKS)
def test_a_bootstrap_change_does_not_touch_running_hosts_and_review_shows_each_host_s_version(
        mock_runs: Callable[[str], dict[str, Any]], stack: str) -> None:
    """EC2 stops and starts an instance to change its user data (terraform-provider-aws updates
    user_data through modifyInstanceAttributeWithStopStart) and cloud-init would not run it again: the
    program ignores user data changes on a running instance, and keeps the launch-time bootstrap tag, so
    `pulumi up` after a bootstrap change updates no instance. The `bootstrap` output is the version a
    replacement would get; the tag, the one the host runs."""
    run = mock_runs(stack)
    for host in _hosts(run):
        instance = _one(_host_resources(run, host), INSTANCE)
        assert {"userData", "userDataBase64", 'tags["mailinfra:bootstrap"]'} <= set(instance["ignore_changes"])
        version = hashlib.sha256(_user_data(instance).encode()).hexdigest()[:16]
        assert instance["inputs"]["tags"]["mailinfra:bootstrap"] == version
        assert run["outputs"]["bootstrap"][host] == version


@pytest.mark.parametrize("stack", STACKS)
def test_first_boot_waits_for_its_policies_parameters_and_way_out(
        mock_runs: Callable[[str], dict[str, Any]], stack: str) -> None:
    """At first boot the host reads its manifest (S3) and secrets (SSM) with its role, reaching them through
    its EIPs (the ENI has no other public address): the instance is created only after its role's
    policies, each SSM parameter it reads, the bundle and every EIP association of its ENI exist."""
    run = mock_runs(stack)
    for host in _hosts(run):
        resources = _host_resources(run, host)
        instance = _one(resources, INSTANCE)
        needed = {r["name"] for r in resources if r["type"] in (
            "aws:iam/rolePolicy:RolePolicy", "aws:ssm/parameter:Parameter", ASSOCIATION,
            "aws:s3/bucketObjectv2:BucketObjectv2")}
        assert needed <= set(instance["depends_on"]), (host, sorted(needed - set(instance["depends_on"])))


def test_the_review_shows_no_instance_change_for_a_bootstrap_change() -> None:
    """With ignore_changes Pulumi keeps the old user data and bootstrap tag (no stop/start): the review's
    resource table, which models `pulumi up`, shows the instance unchanged, while an instance type change
    (not ignored) is still an in-place stop/start."""
    from mailinfra.review.resources import diff_resources

    def instance(user_data: str, version: str, instance_type: str = "t3.large") -> dict[str, Any]:
        return {"type": INSTANCE, "name": "host-mta1-instance", "urn": "urn:pulumi:dev::mailinfra::i",
                "inputs": {"userData": user_data, "instanceType": instance_type,
                           "tags": {"host": "mta1", "mailinfra:bootstrap": version}},
                "ignore_changes": ["ami", 'tags["mailinfra:bootstrap"]', "userData", "userDataBase64"]}

    assert diff_resources([instance("#cloud-config\n", "aaaa")], [instance("#cloud-config\nnew\n", "bbbb")]) == []
    [change] = diff_resources([instance("#cloud-config\n", "aaaa")],
                              [instance("#cloud-config\nnew\n", "bbbb", "t3.xlarge")])
    assert change.change == "updated" and change.stop_start
    assert [c.key for c in change.inputs] == ["instanceType"]
