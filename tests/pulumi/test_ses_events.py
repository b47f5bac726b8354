"""An SES route's mail leaves events the bounce processor can drain: configuration set, event destination,
SNS topic, encrypted SQS queue with a dead-letter queue — and every message SES relays uses that set."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pulumi_aws
import pytest

from components.secondary_route import ses_configuration_set_name
from mailinfra.review.resources import diff_resources
from tests.pulumi.conftest import preview_config, resources_of, run_mock

CONFIGURATION_SET = "aws:sesv2/configurationSet:ConfigurationSet"
DESTINATION = "aws:sesv2/configurationSetEventDestination:ConfigurationSetEventDestination"
IDENTITY = "aws:sesv2/emailIdentity:EmailIdentity"
TOPIC, QUEUE = "aws:sns/topic:Topic", "aws:sqs/queue:Queue"
POLICY, SUBSCRIPTION = "aws:sqs/queuePolicy:QueuePolicy", "aws:sns/topicSubscription:TopicSubscription"


def _provider_event_types() -> set[str]:
    """The event types the installed pulumi-aws documents as valid for MatchingEventTypes."""
    text = (Path(pulumi_aws.__file__).parent / "sesv2" / "_inputs.py").read_text(encoding="utf-8")
    line = next(ln for ln in text.splitlines() if "matching_event_types:" in ln and "Valid values" in ln)
    return set(re.findall(r"`([A-Z_]+)`", line.split("Valid values:", 1)[1]))


@pytest.fixture(scope="module")
def run(mock_runs) -> dict[str, Any]:
    run = mock_runs("dev")
    assert resources_of(run, IDENTITY), "dev has an SES route"
    return run


def _one(run: dict[str, Any], type_token: str, suffix: str = "") -> dict[str, Any]:
    found = [r for r in resources_of(run, type_token) if r["name"].endswith(suffix)]
    assert len(found) == 1, [r["name"] for r in found]
    return found[0]


def test_every_ses_identity_defaults_to_the_routes_configuration_set(run):
    """SES applies an identity's default configuration set to every message sent from it (SES Developer
    Guide, "Managing default configuration sets"), so no host needs to remember X-SES-CONFIGURATION-SET."""
    configuration_set = _one(run, CONFIGURATION_SET)
    name = configuration_set["inputs"]["configurationSetName"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name)  # SESv2 CreateConfigurationSet name rule
    for identity in resources_of(run, IDENTITY):
        assert identity["inputs"]["configurationSetName"] == name, identity["name"]
        # SES refuses a default configuration set that does not exist yet: created first.
        assert configuration_set["name"] in identity["depends_on"]


def test_the_smtp_user_may_send_through_the_configuration_set(run):
    """SES authorizes a send from an identity with a configuration set against the set too (SendRawEmail's
    resource types are configuration-set and identity): the SMTP user's policy names both, nothing more."""
    policy = json.loads(next(p for p in resources_of(run, "aws:iam/userPolicy:UserPolicy")
                             if p["name"].endswith("-smtp-send"))["inputs"]["policy"])
    [statement] = policy["Statement"]
    name = _one(run, CONFIGURATION_SET)["inputs"]["configurationSetName"]
    identities = {i["inputs"]["emailIdentity"] for i in resources_of(run, IDENTITY)}
    assert statement["Action"] == "ses:SendRawEmail"
    assert sorted(arn.split(":", 5)[5] for arn in statement["Resource"]) == sorted(
        [f"configuration-set/{name}", *(f"identity/{i}" for i in identities)])


def test_the_configuration_set_sends_tracks_reputation_and_suppresses(run):
    inputs = _one(run, CONFIGURATION_SET)["inputs"]
    assert inputs["sendingOptions"] == {"sendingEnabled": True}
    assert inputs["reputationOptions"]["reputationMetricsEnabled"] is True
    # Valid suppression reasons (SESv2 SuppressionOptions): BOUNCE and COMPLAINT.
    assert sorted(inputs["suppressionOptions"]["suppressedReasons"]) == ["BOUNCE", "COMPLAINT"]


def test_the_event_destination_publishes_the_bounce_events_to_the_topic(run):
    """Enabled (the provider's default is false: a destination without it publishes nothing), with event
    types the provider accepts, to the topic the queue subscribes."""
    destination = _one(run, DESTINATION)["inputs"]
    topic = _one(run, TOPIC)["inputs"]
    assert destination["configurationSetName"] == _one(run, CONFIGURATION_SET)["inputs"]["configurationSetName"]
    event = destination["eventDestination"]
    assert event["enabled"] is True
    assert set(event["matchingEventTypes"]) == {"BOUNCE", "COMPLAINT", "DELIVERY", "REJECT", "DELIVERY_DELAY"}
    assert set(event["matchingEventTypes"]) <= _provider_event_types()
    assert event["snsDestination"]["topicArn"].endswith(f":{topic['name']}")
    subscription = _one(run, SUBSCRIPTION)["inputs"]
    assert event["snsDestination"]["topicArn"] == subscription["topic"]


def test_the_queue_is_encrypted_has_a_dead_letter_queue_and_takes_only_the_topic(run):
    queues = {q["name"]: q["inputs"] for q in resources_of(run, QUEUE)}
    main = next(q for name, q in queues.items() if not name.endswith("-dlq"))
    dead = next(q for name, q in queues.items() if name.endswith("-dlq"))
    # SSE-SQS: SNS cannot deliver to a queue under the AWS managed KMS key (SQS Developer Guide, "Key management").
    assert main.get("sqsManagedSseEnabled") is True and dead.get("sqsManagedSseEnabled") is True
    assert "kmsMasterKeyId" not in main
    redrive = json.loads(main["redrivePolicy"])
    assert redrive["deadLetterTargetArn"].endswith(f":{dead['name']}") and redrive["maxReceiveCount"] >= 1
    subscription = _one(run, SUBSCRIPTION)["inputs"]
    assert subscription["protocol"] == "sqs" and subscription["endpoint"].endswith(f":{main['name']}")
    assert subscription["rawMessageDelivery"] is True
    policy = json.loads(_one(run, POLICY)["inputs"]["policy"])
    [statement] = policy["Statement"]
    assert statement["Effect"] == "Allow" and statement["Principal"] == {"Service": "sns.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage" and statement["Resource"] == subscription["endpoint"]
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": subscription["topic"]}}


def test_the_pipeline_lives_in_the_ses_region(run):
    """An event destination publishes only to a topic in the configuration set's own region."""
    regions = {r["inputs"].get("region") for t in (CONFIGURATION_SET, DESTINATION, TOPIC, QUEUE, POLICY, SUBSCRIPTION)
               for r in resources_of(run, t)}
    identity_regions = {r["inputs"]["region"] for r in resources_of(run, IDENTITY)}
    assert len(regions) == 1 and regions == identity_regions


def test_an_existing_identity_takes_the_configuration_set_in_place(run):
    """GIVEN an identity deployed before the configuration set WHEN it gets one THEN the review shows an
    in-place update: terraform-provider-aws `resourceEmailIdentityUpdate` applies configuration_set_name with
    PutEmailIdentityConfigurationSetAttributes (replacing the identity would drop its verified BYODKIM)."""
    after = _one(run, IDENTITY)
    before = {**after, "inputs": {k: v for k, v in after["inputs"].items() if k != "configurationSetName"}}
    [change] = diff_resources([before], [after])
    assert change.change == "updated" and not any(i.replaces for i in change.inputs)


def test_the_stack_exports_each_ses_routes_event_queue(run):
    """The bounce processor finds its queue with `pulumi stack output ses_event_queues`."""
    queue = next(q for q in resources_of(run, QUEUE) if not q["name"].endswith("-dlq"))["inputs"]["name"]
    assert {route: url.rsplit("/", 1)[1] for route, url in run["outputs"]["ses_event_queues"].items()} == {
        "ses": queue}


def _event_names(run: dict[str, Any]) -> set[str]:
    """Names SES, SNS and SQS keep unique per account and region (CreateConfigurationSet:
    AlreadyExistsException; CreateQueue/CreateTopic return the existing one of that name)."""
    return ({r["inputs"]["configurationSetName"] for r in resources_of(run, CONFIGURATION_SET)}
            | {r["inputs"]["name"] for r in resources_of(run, TOPIC) + resources_of(run, QUEUE)})


def test_a_copied_stack_gets_its_own_configuration_set_topic_and_queues(mock_runs, tmp_path):
    """GIVEN staging2, a copy of staging's config (environment: staging kept) THEN its event pipeline shares
    no name with staging's: the names come from the Pulumi stack, not the environment label."""
    config, secret_keys = preview_config("staging")
    copy = run_mock("staging2", tmp_path, config, secret_keys)
    assert "error" not in copy, copy.get("error")
    names, original = _event_names(copy), _event_names(mock_runs("staging"))
    assert names and original and not names & original
    assert all(n.startswith("mailinfra-staging2-") for n in names)


@pytest.mark.parametrize("stack", ["prod", "a" * 60])
def test_configuration_set_names_fit_ses_and_sqs_limits(stack):
    """SESv2 configuration set names: 1-64 of [A-Za-z0-9_-]; SQS queue names (the set's name + -events-dlq):
    at most 80. A long stack name is shortened deterministically, still distinct per stack."""
    name = ses_configuration_set_name(stack, "ses")
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name) and len(f"{name}-events-dlq") <= 80
    assert name == ses_configuration_set_name(stack, "ses") != ses_configuration_set_name(stack + "x", "ses")


def test_ses_may_publish_to_the_events_topic_for_its_configuration_set_only(run):
    """SES publishes event records as the service principal ses.amazonaws.com: the topic's policy must grant
    it SNS:Publish (SES Developer Guide, "Set up an Amazon SNS event destination for event publishing"),
    else no bounce or complaint ever reaches the queue; scoped to our configuration set and account."""
    topic_policy = _one(run, "aws:sns/topicPolicy:TopicPolicy")["inputs"]
    configuration_set_arn = next(r for r in run["resources"] if r["type"] == CONFIGURATION_SET)
    [statement] = json.loads(topic_policy["policy"])["Statement"]
    assert statement["Effect"] == "Allow" and statement["Principal"] == {"Service": "ses.amazonaws.com"}
    assert statement["Action"] == "SNS:Publish"
    destination = _one(run, DESTINATION)["inputs"]
    assert statement["Resource"] == topic_policy["arn"] == destination["eventDestination"]["snsDestination"]["topicArn"]
    name = configuration_set_arn["inputs"]["configurationSetName"]
    assert statement["Condition"]["ArnEquals"]["AWS:SourceArn"].endswith(f":configuration-set/{name}")
    assert statement["Condition"]["StringEquals"]["AWS:SourceAccount"].isdigit()


KEY = "aws:kms/key:Key"


def test_the_events_topic_is_encrypted_with_a_rotated_key_ses_may_use(run):
    """Events name recipients: the topic is SSE-KMS with a customer managed key (SNS's AWS managed key has
    a policy nobody can change, so SES could not use it), rotated yearly, whose policy lets
    ses.amazonaws.com kms:GenerateDataKey* and kms:Decrypt — what SES needs to publish to an encrypted topic
    (SES Developer Guide, "Set up an Amazon SNS event destination for event publishing") — for our
    configuration set and account only, and the account administer it (KMS default key policy)."""
    topic = _one(run, "aws:sns/topic:Topic")["inputs"]
    key = _one(run, KEY, "-events-key")["inputs"]
    assert topic["kmsMasterKeyId"].startswith("arn:aws:kms:") and key["enableKeyRotation"] is True
    statements = {s["Sid"]: s for s in json.loads(key["policy"])["Statement"]}
    ses = statements["SesEventsEncrypt"]
    assert ses["Principal"] == {"Service": "ses.amazonaws.com"}
    assert set(ses["Action"]) == {"kms:GenerateDataKey*", "kms:Decrypt"}
    name = next(r for r in run["resources"] if r["type"] == CONFIGURATION_SET)["inputs"]["configurationSetName"]
    assert ses["Condition"]["ArnLike"]["aws:SourceArn"].endswith(f":configuration-set/{name}")
    admin = statements["AccountAdministers"]
    assert admin["Principal"]["AWS"].endswith(":root") and admin["Action"] == "kms:*"
    assert key.get("region") == topic.get("region")  # a topic uses a key of its own region
