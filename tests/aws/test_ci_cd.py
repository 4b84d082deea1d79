"""Continuous delivery: the CodePipeline template, its buildspecs, the GitHub workflow, and the Make target
the deploy stage runs, run here against moto in server mode on 127.0.0.1 (no pipeline or CodeBuild runs
here)."""
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import boto3
import pytest
import yaml

from helpers.aws_stack import metaflow_aws_stack
from helpers.flows import ROOT

pytestmark = pytest.mark.timeout(400)


def _template() -> dict:
    from cfnlint.decode import cfn_yaml

    return json.loads(json.dumps(cfn_yaml.load(str(ROOT / "deploy" / "ci-cd.yaml"))))


def _commands(buildspec: str) -> list[str]:
    spec = yaml.safe_load((ROOT / buildspec).read_text())
    return [c for phase in spec["phases"].values() for c in phase.get("commands", [])]


def test_the_pipeline_tests_then_waits_for_a_person_then_deploys():
    resources = _template()["Resources"]
    stages = resources["Pipeline"]["Properties"]["Stages"]
    kinds = [(s["Name"], s["Actions"][0]["ActionTypeId"]["Category"],
              s["Actions"][0]["ActionTypeId"]["Provider"])
             for s in stages]
    assert kinds == [("Source", "Source", "CodeStarSourceConnection"), ("Test", "Build", "CodeBuild"),
                     ("Approve", "Approval", "Manual"), ("Deploy", "Build", "CodeBuild")]
    projects = {s["Name"]: resources[s["Actions"][0]["Configuration"]["ProjectName"]["Ref"]]["Properties"]
                for s in stages if s["Name"] in ("Test", "Deploy")}
    assert _commands(projects["Test"]["Source"]["BuildSpec"]) == ["bash .ci/run"]  # what CI runs: `make test`
    # the images as `make images` builds them
    assert _commands(projects["Deploy"]["Source"]["BuildSpec"]) == [
        "make images", 'aws ecr get-login-password | docker login --username AWS '
                       '--password-stdin "$REGISTRY"',
        'make push-images REGISTRY="$REGISTRY"', "make install", "make deploy-production"]
    assert projects["Deploy"]["Environment"]["PrivilegedMode"] is True  # a Docker engine
    pushable = [s for s in resources["DeployRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
                if s.get("Sid") == "PushImages"][0]["Resource"]
    repositories = {resources[r["Fn::GetAtt"][0]]["Properties"]["RepositoryName"] for r in pushable}
    assert repositories == {"emoji-reco-train", "emoji-reco-train-gpu", "emoji-reco-inference"}
    # The test build reaches no AWS service; only the deploy build may pass roles, and only these.
    test_policy = resources["TestRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    assert not any("iam:" in json.dumps(s) or "states:" in json.dumps(s) for s in test_policy)
    deploy_policy = resources["DeployRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    (passing,) = [s for s in deploy_policy if s.get("Sid") == "PassRoles"]
    assert passing["Action"] == "iam:PassRole" and "*" not in json.dumps(passing["Resource"])


def test_the_github_workflow_is_valid_and_runs_what_ci_runs():
    workflow = ROOT / ".github" / "workflows" / "ci.yml"
    done = subprocess.run([str(Path(sys.executable).parent / "check-jsonschema"), "--builtin-schema",
                           "vendor.github-workflows", str(workflow)], capture_output=True, text=True,
                           timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    spec = yaml.safe_load(workflow.read_text())
    assert set(spec[True]) == {"push", "pull_request"}  # YAML 1.1 reads the key `on` as True
    (job,) = spec["jobs"].values()
    assert [s["run"] for s in job["steps"] if "run" in s] == ["bash .ci/run"]


def test_the_deploy_stage_creates_both_production_flows_and_their_rules(own_aws):
    """`make deploy-production` with the environment the pipeline's deploy build gets (deploy/ci-cd.yaml)."""
    _, data_bucket = own_aws
    group = f"emoji-{uuid.uuid4().hex[:6]}"
    stack = metaflow_aws_stack(f"emoji-cd-{uuid.uuid4().hex[:8]}")
    declared = {v["Name"] for v in _template()["Resources"]["DeployProject"]["Properties"]["Environment"][
        "EnvironmentVariables"]}
    env = {**os.environ, **stack, "DATA_BUCKET": data_bucket, "DATA_PREFIX": "incoming/",
           "MODEL_PACKAGE_GROUP": group,
           "VENV": str(Path(sys.executable).parent.parent)}
    assert set(stack) | {"DATA_BUCKET", "DATA_PREFIX", "MODEL_PACKAGE_GROUP", "REGISTRY"} == declared
    events, machines = boto3.client("events"), boto3.client("stepfunctions")
    done = subprocess.run(["make", "-C", str(ROOT), "deploy-production"], env=env, capture_output=True,
                          text=True,
                          timeout=360)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    arns = {m["name"]: m["stateMachineArn"] for m in machines.list_state_machines()["stateMachines"]}
    assert {"emoji_reco.prod.EmojiFlow", "emoji_reco.prod.DeployFlow"} <= set(arns)
    rules = {r["Name"]: r for r in events.list_rules()["Rules"]}
    assert rules["emoji_reco.prod.EmojiFlow"]["ScheduleExpression"] == "cron(0 0 ? * SUN *)"
    assert "emoji_reco.prod.DeployFlow" not in rules
    for rule, machine in (("emoji-reco-retrain", "EmojiFlow"), ("emoji-reco-deploy", "DeployFlow")):
        (target,) = events.list_targets_by_rule(Rule=rule)["Targets"]
        assert target["Arn"] == arns[f"emoji_reco.prod.{machine}"]
    assert (json.loads(rules["emoji-reco-deploy"]["EventPattern"])["detail"]["ModelPackageGroupName"]
            == [group])
    assert (json.loads(rules["emoji-reco-retrain"]["EventPattern"])["detail"]["bucket"]["name"]
            == [data_bucket])
