"""EmojiFlow on AWS Step Functions and the retrain-on-new-data rule, against moto in server mode on 127.0.0.1.

Moto accepts `step-functions create`/`delete` and EventBridge rules, but never runs an execution or a Batch job:
these tests check what is deployed (state machine, schedule, code package, rule, role), not a remote run.
"""
import io
import json
import os
import subprocess
import sys
import tarfile
import uuid

import boto3
import pytest

from helpers.flows import FLOW, ROOT
from emoji_reco.settings import parse
from emoji_reco import cli
from emoji_reco.aws import retrain_rule

pytestmark = pytest.mark.timeout(300)
AWS_CONFIG = parse(json.dumps({"extends": "aws.json"}))
STATE_MACHINE = "emoji_reco.user.tester.EmojiFlow"  # @project: <project>.user.<user>.<flow>


def _metaflow_aws_stack(bucket: str) -> dict:
    """What a Metaflow AWS stack provides (roles, Batch queue, DynamoDB table, bucket), created in moto."""
    iam, ec2, batch = boto3.client("iam"), boto3.client("ec2"), boto3.client("batch")
    trust = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "states.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
    roles = {name: iam.create_role(RoleName=f"{name}-{bucket}", AssumeRolePolicyDocument=trust)["Role"]["Arn"]
             for name in ("sfn", "batch-s3", "events", "batch-service")}
    profile = iam.create_instance_profile(InstanceProfileName=f"ecs-{bucket}")["InstanceProfile"]["Arn"]
    environment = batch.create_compute_environment(
        computeEnvironmentName=f"ce-{bucket}", type="MANAGED", serviceRole=roles["batch-service"],
        computeResources={"type": "EC2", "minvCpus": 0, "maxvCpus": 16, "instanceTypes": ["optimal"],
                          "subnets": [ec2.describe_subnets()["Subnets"][0]["SubnetId"]],
                          "securityGroupIds": [ec2.describe_security_groups()["SecurityGroups"][0]["GroupId"]],
                          "instanceRole": profile})
    batch.create_job_queue(jobQueueName=f"queue-{bucket}", state="ENABLED", priority=1, computeEnvironmentOrder=[
        {"order": 1, "computeEnvironment": environment["computeEnvironmentArn"]}])
    boto3.client("dynamodb").create_table(
        TableName=f"sfn-{bucket}", KeySchema=[{"AttributeName": "pathspec", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pathspec", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
    boto3.client("s3").create_bucket(Bucket=bucket)
    return {"METAFLOW_DEFAULT_DATASTORE": "s3", "METAFLOW_DATASTORE_SYSROOT_S3": f"s3://{bucket}/metaflow",
            "METAFLOW_SFN_IAM_ROLE": roles["sfn"], "METAFLOW_ECS_S3_ACCESS_IAM_ROLE": roles["batch-s3"],
            "METAFLOW_EVENTS_SFN_ACCESS_IAM_ROLE": roles["events"], "METAFLOW_BATCH_JOB_QUEUE": f"queue-{bucket}",
            "METAFLOW_SFN_DYNAMO_DB_TABLE": f"sfn-{bucket}"}


def _flow(*args: str) -> str:
    """`python flows/emoji_flow.py --config config config/aws.json ARGS`; its stdout (fails the test on error)."""
    done = subprocess.run([sys.executable, FLOW, "--config", "config", str(ROOT / "config" / "aws.json"), *args],
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def deployed(moto_server):
    """EmojiFlow pushed to (moto's) Step Functions with config/aws.json; yields its `--only-json` definition."""
    with pytest.MonkeyPatch.context() as mp:
        for key, value in {"AWS_ENDPOINT_URL": moto_server, "AWS_ACCESS_KEY_ID": "testing",
                           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
            mp.setenv(key, value)
        for key, value in _metaflow_aws_stack(f"emoji-sfn-{uuid.uuid4().hex[:8]}").items():
            mp.setenv(key, value)
        definition = json.loads(_flow("step-functions", "create", "--only-json"))
        _flow("step-functions", "create")
        yield definition


def _job(state: dict) -> dict:
    return state["Parameters"]


def _resources(state: dict) -> dict:
    return {r["Type"]: int(r["Value"]) for r in _job(state)["ContainerOverrides"]["ResourceRequirements"]}


def test_the_state_machine_runs_every_step_on_batch_with_the_configured_resources_retries_and_timeouts(deployed):
    states = deployed["States"]
    convert_map = states["*convert"]
    assert convert_map["Type"] == "Map" and convert_map["ItemsPath"] == "$.Result.Item.for_each_cardinality.NS"
    assert states["#convert"]["Resource"] == "arn:aws:states:::dynamodb:getItem"  # the foreach's shard count
    convert = convert_map["Iterator"]["States"]["convert"]
    tasks = {name: s for name, s in states.items() if s["Type"] == "Task" and "batch" in s["Resource"]}
    tasks["convert"] = convert
    assert set(tasks) == {"start", "prepare", "convert", "join_convert", "train", "evaluate", "register", "deploy", "end"}
    assert all(t["Resource"] == "arn:aws:states:::batch:submitJob.sync" for t in tasks.values())
    platform = AWS_CONFIG["platform"]
    assert _resources(convert) == {"VCPU": AWS_CONFIG["convert"]["cpu"], "MEMORY": AWS_CONFIG["convert"]["memory_mb"]}
    assert _resources(states["train"]) == {"VCPU": AWS_CONFIG["train"]["cpu"], "MEMORY": AWS_CONFIG["train"]["memory_mb"]}
    for name, state in tasks.items():
        assert _job(state)["JobQueue"] == os.environ["METAFLOW_BATCH_JOB_QUEUE"]
        expected_attempts = 1 + (platform["retries"] if name != "start" else 0)
        assert _job(state).get("RetryStrategy", {}).get("Attempts", 1) == expected_attempts, name
        assert _job(state)["Timeout"]["AttemptDurationSeconds"] == 60 * platform["timeout_minutes"][name], name
    env = {e["Name"]: e.get("Value", e.get("Value.$")) for e in _job(states["start"])["ContainerOverrides"]["Environment"]}
    assert env["METAFLOW_PARAMETERS"] == "$.Parameters"  # the execution input the retrain rule must produce
    assert json.loads(env["METAFLOW_DEFAULT_PARAMETERS"])["data"] == AWS_CONFIG["data"]["path"]
    assert env["SFN_STATE_MACHINE"] == STATE_MACHINE
    assert "METAFLOW_S3_ENDPOINT_URL" not in env  # tests redirect with AWS_ENDPOINT_URL, which is never baked in


def test_create_pushes_the_state_machine_with_its_weekly_schedule_and_a_code_package_holding_emoji_reco(deployed):
    machines = boto3.client("stepfunctions").list_state_machines()["stateMachines"]
    assert STATE_MACHINE in [m["name"] for m in machines]
    events = boto3.client("events")
    rule = events.describe_rule(Name=STATE_MACHINE)
    assert rule["ScheduleExpression"] == "cron(0 0 ? * SUN *)"  # @schedule(weekly=True) from config/aws.json
    (target,) = events.list_targets_by_rule(Rule=STATE_MACHINE)["Targets"]
    assert target["Arn"].endswith(f":stateMachine:{STATE_MACHINE}")

    env = {e["Name"]: e.get("Value") for e in _job(deployed["States"]["start"])["ContainerOverrides"]["Environment"]}
    bucket, key = env["METAFLOW_CODE_URL"][len("s3://"):].split("/", 1)
    package = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(package)) as tar:
        names = tar.getnames()
    assert "emoji_flow.py" in names  # the flow, and the emoji_reco it imports: remote tasks run the code launched
    assert {f".mf_code/emoji_reco/{f}" for f in ("placement.py", "model/training.py", "serving/static/index.html")} <= set(names)


def test_production_deployments_get_their_own_state_machine_name(deployed):
    definition = json.loads(_flow("--production", "step-functions", "create", "--only-json"))
    env = {e["Name"]: e.get("Value") for e in _job(definition["States"]["start"])["ContainerOverrides"]["Environment"]}
    assert env["SFN_STATE_MACHINE"] == "emoji_reco.prod.EmojiFlow"


def test_delete_removes_the_state_machine_and_its_schedule(deployed):
    try:
        _flow("step-functions", "delete")
        assert STATE_MACHINE not in [m["name"] for m in boto3.client("stepfunctions").list_state_machines()["stateMachines"]]
        assert STATE_MACHINE not in [r["Name"] for r in boto3.client("events").list_rules()["Rules"]]
    finally:
        _flow("step-functions", "create")  # as the fixture left it, for the tests that run after this one


def test_the_retrain_rule_starts_the_state_machine_with_the_new_file_as_data(deployed, capsys):
    s3, events, sqs, iam = (boto3.client(n) for n in ("s3", "events", "sqs", "iam"))
    # Metaflow's definition as the production state machine (moto stops delivering events on the default bus when
    # any rule there targets a state machine, so the scheduled deployment is deleted before this test).
    machine = boto3.client("stepfunctions").create_state_machine(
        name="emoji_reco.prod.EmojiFlow", definition=json.dumps(deployed), roleArn=os.environ["METAFLOW_SFN_IAM_ROLE"])
    bucket = f"emoji-inbox-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    assert cli.main(["aws", "wire-retrain", "--bucket", bucket, "--prefix", "incoming/",
                     "--state-machine", "emoji_reco.prod.EmojiFlow", "--rule", "retrain-test"]) == 0
    wired = json.loads(capsys.readouterr().out)
    assert wired["state_machine"] == machine["stateMachineArn"]
    (target,) = events.list_targets_by_rule(Rule="retrain-test")["Targets"]
    assert target["Arn"] == wired["state_machine"] and target["RoleArn"] == wired["role"]
    policy = iam.get_role_policy(RoleName="retrain-test", PolicyName="start-execution")["PolicyDocument"]
    assert policy["Statement"] == [{"Effect": "Allow", "Action": "states:StartExecution", "Resource": wired["state_machine"]}]

    # Moto stops delivering at a state machine target: swap it for a probe queue on the same rule, to see which
    # uploads the rule's real pattern matches, with the event exactly as S3 sends it.
    queue = sqs.create_queue(QueueName=f"probe-{bucket}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.remove_targets(Rule="retrain-test", Ids=[target["Id"]])
    events.put_targets(Rule="retrain-test", Targets=[{"Id": "probe", "Arn": queue_arn}])
    for key in ("incoming/2026-11.csv", "other/2026-11.csv", "incomingx.csv"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"TWEET,LABEL\n")
    received = [json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10,
                                                                    WaitTimeSeconds=2).get("Messages", [])]
    assert [e["detail"]["object"]["key"] for e in received] == ["incoming/2026-11.csv"]

    # Moto applies input transformers only to events put on a bus: replay S3's event through the rule's pattern and
    # the target's transformer (both read back from moto) on a probe bus, and check what the state machine gets.
    rule = events.describe_rule(Name="retrain-test")
    events.create_event_bus(Name=f"probe-{bucket}")
    events.put_rule(Name="probe", EventBusName=f"probe-{bucket}", EventPattern=rule["EventPattern"])
    events.put_targets(Rule="probe", EventBusName=f"probe-{bucket}", Targets=[
        {"Id": "probe", "Arn": queue_arn, "InputTransformer": target["InputTransformer"]}])
    event = received[0]
    events.put_events(Entries=[{"Source": event["source"], "DetailType": event["detail-type"],
                                "Detail": json.dumps(event["detail"]), "EventBusName": f"probe-{bucket}"}])
    (message,) = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=2)["Messages"]
    execution_input = json.loads(message["Body"])
    assert json.loads(execution_input["Parameters"]) == {"data": f"s3://{bucket}/incoming/2026-11.csv"}

    assert cli.main(["aws", "unwire-retrain", "--rule", "retrain-test"]) == 0
    assert "retrain-test" not in [r["Name"] for r in events.list_rules()["Rules"]]
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_role(RoleName="retrain-test")


def test_the_cloudformation_template_declares_the_same_rule_as_the_cli():
    from cfnlint.decode import cfn_yaml

    template = cfn_yaml.load(str(ROOT / "deploy" / "retrain-on-upload.yaml"))
    rule = template["Resources"]["RetrainRule"]["Properties"]
    pattern = json.loads(json.dumps(rule["EventPattern"]))
    assert pattern == json.loads(json.dumps(retrain_rule.event_pattern(*[{"Ref": "BucketName"}, {"Ref": "Prefix"}])))
    (target,) = rule["Targets"]
    assert json.loads(json.dumps(target["InputTransformer"])) == retrain_rule.INPUT_TRANSFORMER
    role = template["Resources"]["StartExecutionRole"]["Properties"]
    (statement,) = role["Policies"][0]["PolicyDocument"]["Statement"]
    assert statement["Action"] == "states:StartExecution" and statement["Resource"] == {"Ref": "StateMachineArn"}
