"""Retraining when new data lands in S3: an EventBridge rule that starts EmojiFlow's state machine with `--data`.

Metaflow's Step Functions deployments have no event triggers, so this wires one: S3 sends "Object Created" events
to EventBridge, a rule matches the bucket and key prefix, and its target starts the state machine with the input
Metaflow expects, `{"Parameters": "{\"data\": \"s3://bucket/key\"}"}`, through a role that may start only that
state machine. `deploy/retrain-on-upload.yaml` is the same rule as a CloudFormation template.
"""
import json

import boto3

from emoji_reco.errors import EmojiRecoError

INPUT_TRANSFORMER = {
    "InputPathsMap": {"bucket": "$.detail.bucket.name", "key": "$.detail.object.key"},
    "InputTemplate": '{"Parameters": "{\\"data\\": \\"s3://<bucket>/<key>\\"}"}',
}
TARGET_ID = "emoji-reco-state-machine"


def event_pattern(bucket: str, prefix: str) -> dict:
    """S3 "Object Created" events for keys under `prefix` in `bucket`."""
    return {"source": ["aws.s3"], "detail-type": ["Object Created"],
            "detail": {"bucket": {"name": [bucket]}, "object": {"key": [{"prefix": prefix}]}}}


def start_execution_policy(state_machine_arn: str) -> dict:
    """Least privilege for the rule's role: start this one state machine."""
    return {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "states:StartExecution", "Resource": state_machine_arn}]}


EVENTS_TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


def state_machine_arn(name_or_arn: str) -> str:
    """The ARN of a state machine given by name (e.g. `emoji_reco.prod.EmojiFlow`) or ARN."""
    if name_or_arn.startswith("arn:"):
        return name_or_arn
    for page in boto3.client("stepfunctions").get_paginator("list_state_machines").paginate():
        for machine in page["stateMachines"]:
            if machine["name"] == name_or_arn:
                return machine["stateMachineArn"]
    raise EmojiRecoError(f"No state machine named {name_or_arn!r} in this account and region; create it with "
                         "`python flows/emoji_flow.py --config config config/aws.json step-functions create`.")


def wire(bucket: str, prefix: str, state_machine: str, rule_name: str) -> dict:
    """Turn on the bucket's EventBridge notifications and create (or update) the rule, its role and its target."""
    arn = state_machine_arn(state_machine)
    s3, iam, events = boto3.client("s3"), boto3.client("iam"), boto3.client("events")
    notifications = s3.get_bucket_notification_configuration(Bucket=bucket)
    notifications.pop("ResponseMetadata", None)
    if "EventBridgeConfiguration" not in notifications:
        s3.put_bucket_notification_configuration(
            Bucket=bucket, NotificationConfiguration={**notifications, "EventBridgeConfiguration": {}})
    try:
        role_arn = iam.create_role(RoleName=rule_name, AssumeRolePolicyDocument=json.dumps(EVENTS_TRUST),
                                   Description=f"Lets EventBridge rule {rule_name} start {arn}")["Role"]["Arn"]
    except iam.exceptions.EntityAlreadyExistsException:
        role_arn = iam.get_role(RoleName=rule_name)["Role"]["Arn"]
    iam.put_role_policy(RoleName=rule_name, PolicyName="start-execution",
                        PolicyDocument=json.dumps(start_execution_policy(arn)))
    rule_arn = events.put_rule(Name=rule_name, EventPattern=json.dumps(event_pattern(bucket, prefix)),
                               Description=f"Retrain EmojiFlow on new data under s3://{bucket}/{prefix}")["RuleArn"]
    events.put_targets(Rule=rule_name, Targets=[
        {"Id": TARGET_ID, "Arn": arn, "RoleArn": role_arn, "InputTransformer": INPUT_TRANSFORMER}])
    return {"rule": rule_arn, "role": role_arn, "state_machine": arn, "watches": f"s3://{bucket}/{prefix}"}


def unwire(rule_name: str) -> None:
    """Remove the rule, its targets and its role (the bucket's EventBridge notifications stay on)."""
    events, iam = boto3.client("events"), boto3.client("iam")
    try:
        targets = events.list_targets_by_rule(Rule=rule_name)["Targets"]
    except events.exceptions.ResourceNotFoundException:
        targets = None
    if targets is not None:
        if targets:
            events.remove_targets(Rule=rule_name, Ids=[t["Id"] for t in targets])
        events.delete_rule(Name=rule_name)
    try:
        iam.delete_role_policy(RoleName=rule_name, PolicyName="start-execution")
        iam.delete_role(RoleName=rule_name)
    except iam.exceptions.NoSuchEntityException:
        pass
