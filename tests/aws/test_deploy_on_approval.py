"""Approval → deploy on AWS, against moto in server mode on 127.0.0.1: DeployFlow's state machine, the
EventBridge rule on SageMaker's "Model Package State Change" events that starts it, and DeployFlow serving a
package.

Moto never emits SageMaker's events nor runs a state machine: the rule is checked by replaying events shaped
like SageMaker's documented example through the rule's real pattern and input transformer, and DeployFlow runs
here against moto's SageMaker (whose endpoints are InService at once and answer what the test queued)."""
import json
import subprocess
import sys
import uuid

import boto3
import pytest

from emoji_reco import cli
from emoji_reco.aws import endpoint, event_rules, model_registry
from emoji_reco.backends import approvals
from helpers.aws_stack import metaflow_aws_stack, replay_through_rule, sagemaker_event
from helpers.flows import DEPLOY_FLOW, ROOT, run_flow
from helpers.sagemaker_job import QUICK_SAGEMAKER, ROLE, queue_answer, settings

pytestmark = pytest.mark.timeout(300)


def _deploy_flow(*args: str) -> str:
    done = subprocess.run([sys.executable, DEPLOY_FLOW, "--config", "config",
                           str(ROOT / "config" / "aws.json"), *args],
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_approving_a_package_of_the_group_starts_deploy_flow_with_its_arn(own_aws, monkeypatch, capsys):
    for key, value in metaflow_aws_stack(f"emoji-deploy-{uuid.uuid4().hex[:8]}").items():
        monkeypatch.setenv(key, value)
    definition = json.loads(_deploy_flow("--production", "step-functions", "create", "--only-json"))
    start = definition["States"]["start"]["Parameters"]["ContainerOverrides"]["Environment"]
    env = {e["Name"]: e.get("Value", e.get("Value.$")) for e in start}
    assert env["METAFLOW_PARAMETERS"] == "$.Parameters"
    assert json.loads(env["METAFLOW_DEFAULT_PARAMETERS"]) == {"model": "newest"}
    assert set(definition["States"]) >= {"start", "deploy", "end"} and "train" not in definition["States"]
    _deploy_flow("--production", "step-functions", "create")
    name = "emoji_reco.prod.DeployFlow"
    # no schedule: it trains nothing
    assert name not in [r["Name"] for r in boto3.client("events").list_rules()["Rules"]]

    group, rule = f"emoji-{uuid.uuid4().hex[:6]}", f"deploy-{uuid.uuid4().hex[:6]}"
    assert cli.main(["aws", "wire-deploy", "--group", group, "--state-machine", name, "--rule", rule]) == 0
    try:
        wired = json.loads(capsys.readouterr().out)
        assert wired["state_machine"].endswith(f":stateMachine:{name}")
        (target,) = boto3.client("events").list_targets_by_rule(Rule=rule)["Targets"]
        assert target["Arn"] == wired["state_machine"] and target["RoleArn"] == wired["role"]
        policy = boto3.client("iam").get_role_policy(RoleName=rule,
                                                     PolicyName="start-execution")["PolicyDocument"]
        assert policy["Statement"] == [
            {"Effect": "Allow", "Action": "states:StartExecution", "Resource": wired["state_machine"]}]

        approved = sagemaker_event(group, 3, "Approved")
        others = [sagemaker_event(group, 4, "PendingManualApproval"), sagemaker_event(group, 5, "Rejected"),
                  sagemaker_event("someone-elses-group", 6, "Approved"),
                  sagemaker_event(group, 7, "Approved", detail_type="SageMaker Model State Change")]
        received = replay_through_rule(rule, [*others, approved])
        assert ([json.loads(m["Parameters"]) for m in received]
                == [{"model": approved["detail"]["ModelPackageArn"]}])
    finally:
        assert cli.main(["aws", "unwire-deploy", "--rule", rule]) == 0
    assert rule not in [r["Name"] for r in boto3.client("events").list_rules()["Rules"]]


def test_the_cloudformation_template_declares_the_same_rule_as_the_cli():
    from cfnlint.decode import cfn_yaml

    template = cfn_yaml.load(str(ROOT / "deploy" / "deploy-on-approval.yaml"))
    props = json.loads(json.dumps(template["Resources"]["DeployRule"]["Properties"]))
    expected = event_rules.deploy_on_approval({"Ref": "ModelPackageGroup"})
    assert props["EventPattern"] == json.loads(json.dumps(expected.pattern))
    (target,) = props["Targets"]
    assert target["InputTransformer"] == expected.input_transformer
    role = template["Resources"]["StartExecutionRole"]["Properties"]
    (statement,) = role["Policies"][0]["PolicyDocument"]["Statement"]
    assert statement == {"Effect": "Allow", "Action": "states:StartExecution",
                         "Resource": {"Ref": "StateMachineArn"}}


def test_deploy_flow_serves_an_approved_package_and_refuses_one_awaiting_approval(
        aws, moto_server, tiny_bundle):
    """What this proves beyond moto's instant endpoints: the flow finds the package by its ARN, refuses it
    unless Approved, and creates the model from the package's own image and model data; the smoke answer
    itself is the one queued here, so only its parsing is checked."""
    from emoji_reco import storage

    s3, bucket = aws
    run_root = f"s3://{bucket}/EmojiFlow/41/emoji_reco"
    storage.put_dir(str(tiny_bundle[1]), f"{run_root}/model")
    group, name = f"emoji-{uuid.uuid4().hex[:6]}", f"emoji-approved-{uuid.uuid4().hex[:6]}"
    config = settings(**{"sagemaker.registry.group": group, "sagemaker.registry.approval": "manual"})
    model = endpoint.upload_model(f"{run_root}/model", config, "41", run_root)
    metrics, passed = {"top1": 0.5, "top3": 0.8, "macro_f1": 0.4}, {"passed": True,
                                                                    "reasons": ["above the minimum"]}
    package = model_registry.register(model, config, "EmojiFlow/41", metrics, passed, run_root)
    assert package["status"] == "PendingManualApproval"

    flow_config = {"extends": "base.json", "deploy": {"target": "sagemaker", "endpoint": name},
                   "sagemaker": {"role": ROLE, "registry": {"group": group},
                                 "endpoint": {
                                     "poll_seconds": QUICK_SAGEMAKER["sagemaker.endpoint.poll_seconds"]}}}
    status, _, output = run_flow(flow_config, flow=DEPLOY_FLOW, model=package["arn"])
    assert (status == "failed" and "PendingManualApproval, not Approved" in output
            and "Traceback" not in output)
    elsewhere = f"{group}-other"  # an approved package, of a group this flow does not serve
    other_config = settings(**{"sagemaker.registry.group": elsewhere,
                               "sagemaker.registry.approval": "manual"})
    other = model_registry.register(model, other_config, "EmojiFlow/41", metrics, passed, run_root)
    model_registry.set_status(other["arn"], model_registry.APPROVED)
    status, _, refused = run_flow(flow_config, flow=DEPLOY_FLOW, model=other["arn"])
    assert status == "failed" and f"belongs to model package group {elsewhere!r}, not {group!r}" in refused
    assert "Traceback" not in refused
    sagemaker = boto3.client("sagemaker")
    assert name not in [e["EndpointName"] for e in sagemaker.list_endpoints()["Endpoints"]]

    model_registry.set_status(package["arn"], model_registry.APPROVED)
    queue_answer(moto_server, json.dumps({"version": "41", "predictions": [
        [{"emoji": "😂", "probability": 0.6}] for _ in approvals.SMOKE_TEXTS]}).encode())
    status, run, output = run_flow(flow_config, flow=DEPLOY_FLOW, model=package["arn"])
    assert status == "successful", output[-3000:]
    deployment = run["deploy"].task.data.deployment
    assert deployment["deployed"] and deployment["version"] == "41" and deployment["endpoint"] == name
    assert [text for text, _ in deployment["smoke"]] == approvals.SMOKE_TEXTS
    served = sagemaker.describe_endpoint(EndpointName=name)
    container = sagemaker.describe_model(ModelName=deployment["model"])["PrimaryContainer"]
    assert (served["EndpointStatus"] == "InService" and served["EndpointConfigName"]
            == deployment["endpoint_config"])
    assert (container["Image"], container["ModelDataUrl"]) == (model["image"], model["model_data"])


def test_newest_means_the_newest_approved_package_of_the_group(aws, tiny_bundle):
    from emoji_reco import storage

    _, bucket = aws
    group = f"emoji-{uuid.uuid4().hex[:6]}"
    config = settings(**{"sagemaker.registry.group": group, "sagemaker.registry.approval": "manual"})
    metrics, passed = {"top1": 0.5, "top3": 0.8, "macro_f1": 0.4}, {"passed": True, "reasons": ["ok"]}
    with pytest.raises(Exception, match="No approved version"):
        model_registry.approved(group, "newest")
    arns = []
    for version in ("1", "2", "3"):
        run_root = f"s3://{bucket}/EmojiFlow/{version}/emoji_reco"
        storage.put_dir(str(tiny_bundle[1]), f"{run_root}/model")
        model = endpoint.upload_model(f"{run_root}/model", config, version, run_root)
        arns.append(model_registry.register(model, config, f"EmojiFlow/{version}", metrics, passed,
                                            run_root)["arn"])
    for arn in arns[:2]:
        model_registry.set_status(arn, model_registry.APPROVED)
    assert model_registry.approved(group, "newest")["arn"] == arns[1]  # 3 still waits for a person
    assert model_registry.approved(group, "1")["version"] == "1"
    with pytest.raises(Exception, match="not Approved"):
        model_registry.approved(group, arns[2])
