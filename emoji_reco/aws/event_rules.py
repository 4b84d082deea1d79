"""EventBridge rules that start a Step Functions state machine: EmojiFlow when new data lands in S3 (retrain),
and DeployFlow when a person approves a model package in SageMaker's Model Registry (deploy).

Metaflow's Step Functions deployments have no event triggers, so these wire them: a rule matches the event,
and its target starts the state machine with the input Metaflow expects (`{"Parameters": "{\"name\":
\"value\"}"}`), through a role that may start only that state machine. `deploy/retrain-on-upload.yaml` and
`deploy/deploy-on-approval.yaml` are the same rules as CloudFormation templates.
"""
import json
from dataclasses import dataclass

import boto3

from emoji_reco.errors import EmojiRecoError

TARGET_ID = "emoji-reco-state-machine"
EVENTS_TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


def _flow_input(parameter: str, template: str) -> str:
    """An InputTemplate giving the flow one parameter (`template` may hold <placeholders>)."""
    return json.dumps({"Parameters": json.dumps({parameter: template})})


@dataclass(frozen=True)
class Rule:
    """What a rule matches, and how its event becomes the flow's parameters."""

    pattern: dict
    input_paths: dict
    input_template: str
    description: str

    @property
    def input_transformer(self) -> dict:
        return {"InputPathsMap": self.input_paths, "InputTemplate": self.input_template}


# MonitorFlow's retrain request, shaped as S3's event (monitoring/retrain.py)
MONITOR_SOURCE = "emoji-reco.monitor"


def retrain(bucket: str, prefix: str) -> Rule:
    """S3 "Object Created" events for keys under `prefix` in `bucket`, and MonitorFlow's requests shaped as
    them → EmojiFlow `--data s3://bucket/key`."""
    return Rule({"source": ["aws.s3", MONITOR_SOURCE], "detail-type": ["Object Created"],
                 "detail": {"bucket": {"name": [bucket]}, "object": {"key": [{"prefix": prefix}]}}},
                {"bucket": "$.detail.bucket.name", "key": "$.detail.object.key"},
                _flow_input("data", "s3://<bucket>/<key>"),
                f"Retrain EmojiFlow on new data under s3://{bucket}/{prefix}")


def deploy_on_approval(group: str) -> Rule:
    """A package of model package `group` becoming Approved → DeployFlow `--model <package ARN>`."""
    return Rule({"source": ["aws.sagemaker"], "detail-type": ["SageMaker Model Package State Change"],
                 "detail": {"ModelPackageGroupName": [group], "ModelApprovalStatus": ["Approved"]}},
                {"package": "$.detail.ModelPackageArn"},
                _flow_input("model", "<package>"),
                f"Deploy a model of package group {group} when it is approved")


def start_execution_policy(state_machine_arn: str) -> dict:
    """Least privilege for a rule's role: start this one state machine."""
    return {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "states:StartExecution", "Resource": state_machine_arn}]}


def state_machine_arn(name_or_arn: str) -> str:
    """The ARN of a state machine given by name (e.g. `emoji_reco.prod.EmojiFlow`) or ARN."""
    if name_or_arn.startswith("arn:"):
        return name_or_arn
    for page in boto3.client("stepfunctions").get_paginator("list_state_machines").paginate():
        for machine in page["stateMachines"]:
            if machine["name"] == name_or_arn:
                return machine["stateMachineArn"]
    flow = name_or_arn.rsplit(".", 1)[-1]
    script = "deploy_flow.py" if flow == "DeployFlow" else "emoji_flow.py"
    raise EmojiRecoError(f"No state machine named {name_or_arn!r} in this account and region; create it with "
                         f"`python flows/{script} --config config config/aws.json --production "
                         f"step-functions create`.")


def enable_s3_events(bucket: str) -> None:
    """Have S3 send the bucket's events to EventBridge (what the retrain rule listens to)."""
    s3 = boto3.client("s3")
    notifications = s3.get_bucket_notification_configuration(Bucket=bucket)
    notifications.pop("ResponseMetadata", None)
    if "EventBridgeConfiguration" not in notifications:
        s3.put_bucket_notification_configuration(
            Bucket=bucket, NotificationConfiguration={**notifications, "EventBridgeConfiguration": {}})


def wire(rule: Rule, state_machine: str, rule_name: str) -> dict:
    """Create (or update) the rule, its role and its target, the state machine."""
    arn = state_machine_arn(state_machine)
    iam, events = boto3.client("iam"), boto3.client("events")
    try:
        role_arn = iam.create_role(RoleName=rule_name, AssumeRolePolicyDocument=json.dumps(EVENTS_TRUST),
                                   Description=f"Lets EventBridge rule "
                                               f"{rule_name} start {arn}")["Role"]["Arn"]
    except iam.exceptions.EntityAlreadyExistsException:
        role_arn = iam.get_role(RoleName=rule_name)["Role"]["Arn"]
    iam.put_role_policy(RoleName=rule_name, PolicyName="start-execution",
                        PolicyDocument=json.dumps(start_execution_policy(arn)))
    rule_arn = events.put_rule(Name=rule_name, EventPattern=json.dumps(rule.pattern),
                               Description=rule.description)["RuleArn"]
    events.put_targets(Rule=rule_name, Targets=[
        {"Id": TARGET_ID, "Arn": arn, "RoleArn": role_arn, "InputTransformer": rule.input_transformer}])
    return {"rule": rule_arn, "role": role_arn, "state_machine": arn}


def unwire(rule_name: str) -> None:
    """Remove the rule, its targets and its role (a bucket's EventBridge notifications stay on)."""
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
