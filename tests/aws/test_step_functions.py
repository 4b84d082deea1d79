"""EmojiFlow on AWS Step Functions and the retrain-on-new-data rule, against moto in server mode on 127.0.0.1.

Moto accepts `step-functions create`/`delete` and EventBridge rules, but never runs an execution or a Batch
job: these tests check what is deployed (state machine, schedule, code package, rule, role), not a remote run.
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

from emoji_reco import cli
from emoji_reco.aws import event_rules
from emoji_reco.settings import parse
from helpers.aws_stack import metaflow_aws_stack, replay_through_rule
from helpers.flows import FLOW, ROOT

pytestmark = pytest.mark.timeout(300)
AWS_CONFIG = parse(json.dumps({"extends": "aws.json"}))
STATE_MACHINE = "emoji_reco.user.tester.EmojiFlow"  # @project: <project>.user.<user>.<flow>


def _flow(*args: str) -> str:
    """`python flows/emoji_flow.py --config config config/aws.json ARGS`; its stdout (fails the test on
    error)."""
    done = subprocess.run([sys.executable, FLOW, "--config", "config", str(ROOT / "config" / "aws.json"),
                           *args],
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def deployed(moto_server):
    """EmojiFlow pushed to (moto's) Step Functions with config/aws.json; yields its `--only-json`
    definition."""
    with pytest.MonkeyPatch.context() as mp:
        for key, value in {"AWS_ENDPOINT_URL": moto_server, "AWS_ACCESS_KEY_ID": "testing",
                           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
            mp.setenv(key, value)
        for key, value in metaflow_aws_stack(f"emoji-sfn-{uuid.uuid4().hex[:8]}").items():
            mp.setenv(key, value)
        definition = json.loads(_flow("step-functions", "create", "--only-json"))
        _flow("step-functions", "create")
        yield definition


def _job(state: dict) -> dict:
    return state["Parameters"]


def _resources(state: dict) -> dict:
    return {r["Type"]: int(r["Value"]) for r in _job(state)["ContainerOverrides"]["ResourceRequirements"]}


def test_the_state_machine_runs_every_step_on_batch_with_the_configured_resources_retries_and_timeouts(
         deployed):
    states = deployed["States"]
    convert_map = states["*convert"]
    assert (convert_map["Type"] == "Map" and convert_map["ItemsPath"]
            == "$.Result.Item.for_each_cardinality.NS")
    assert states["#convert"]["Resource"] == "arn:aws:states:::dynamodb:getItem"  # the foreach's shard count
    convert = convert_map["Iterator"]["States"]["convert"]
    tasks = {name: s for name, s in states.items() if s["Type"] == "Task" and "batch" in s["Resource"]}
    tasks["convert"] = convert
    assert set(tasks) == {"start", "prepare", "convert", "join_convert", "train", "evaluate", "register",
                          "deploy", "end"}
    assert all(t["Resource"] == "arn:aws:states:::batch:submitJob.sync" for t in tasks.values())
    platform = AWS_CONFIG["platform"]
    assert _resources(convert) == {"VCPU": AWS_CONFIG["convert"]["cpu"],
                                   "MEMORY": AWS_CONFIG["convert"]["memory_mb"]}
    assert _resources(states["train"]) == {"VCPU": AWS_CONFIG["train"]["cpu"],
                                           "MEMORY": AWS_CONFIG["train"]["memory_mb"]}
    for name, state in tasks.items():
        assert _job(state)["JobQueue"] == os.environ["METAFLOW_BATCH_JOB_QUEUE"]
        expected_attempts = 1 + (platform["retries"] if name != "start" else 0)
        assert _job(state).get("RetryStrategy", {}).get("Attempts", 1) == expected_attempts, name
        assert (_job(state)["Timeout"]["AttemptDurationSeconds"] == 60
                * platform["timeout_minutes"][name]), name
    env = {e["Name"]: e.get("Value", e.get("Value.$"))
           for e in _job(states["start"])["ContainerOverrides"]["Environment"]}
    assert env["METAFLOW_PARAMETERS"] == "$.Parameters"  # the execution input the retrain rule must produce
    assert json.loads(env["METAFLOW_DEFAULT_PARAMETERS"])["data"] == AWS_CONFIG["data"]["path"]
    assert env["SFN_STATE_MACHINE"] == STATE_MACHINE
    # tests redirect with AWS_ENDPOINT_URL, which is never baked in
    assert "METAFLOW_S3_ENDPOINT_URL" not in env


def test_create_pushes_the_state_machine_with_its_weekly_schedule_and_a_code_package_holding_emoji_reco(
         deployed):
    machines = boto3.client("stepfunctions").list_state_machines()["stateMachines"]
    assert STATE_MACHINE in [m["name"] for m in machines]
    events = boto3.client("events")
    rule = events.describe_rule(Name=STATE_MACHINE)
    assert rule["ScheduleExpression"] == "cron(0 0 ? * SUN *)"  # @schedule(weekly=True) from config/aws.json
    (target,) = events.list_targets_by_rule(Rule=STATE_MACHINE)["Targets"]
    assert target["Arn"].endswith(f":stateMachine:{STATE_MACHINE}")

    env = {e["Name"]: e.get("Value")
           for e in _job(deployed["States"]["start"])["ContainerOverrides"]["Environment"]}
    bucket, key = env["METAFLOW_CODE_URL"][len("s3://"):].split("/", 1)
    package = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(package)) as tar:
        names = tar.getnames()
    # the flow, and the emoji_reco it imports: remote tasks run the code launched
    assert "emoji_flow.py" in names
    shipped = ("flowkit/placement.py", "model/training.py", "serving/static/index.html")
    assert {f".mf_code/emoji_reco/{f}" for f in shipped} <= set(names)


def test_production_deployments_get_their_own_state_machine_name(deployed):
    definition = json.loads(_flow("--production", "step-functions", "create", "--only-json"))
    env = {e["Name"]: e.get("Value")
           for e in _job(definition["States"]["start"])["ContainerOverrides"]["Environment"]}
    assert env["SFN_STATE_MACHINE"] == "emoji_reco.prod.EmojiFlow"


def test_delete_removes_the_state_machine_and_its_schedule(deployed):
    try:
        _flow("step-functions", "delete")
        machines = boto3.client("stepfunctions").list_state_machines()["stateMachines"]
        assert STATE_MACHINE not in [m["name"] for m in machines]
        assert STATE_MACHINE not in [r["Name"] for r in boto3.client("events").list_rules()["Rules"]]
    finally:
        _flow("step-functions", "create")  # as the fixture left it, for the tests that run after this one


def test_the_retrain_rule_starts_the_state_machine_with_the_new_file_as_data(deployed, own_aws, capsys):
    s3, bucket = own_aws
    events, sqs, iam = (boto3.client(n) for n in ("events", "sqs", "iam"))
    # Metaflow's definition as the production state machine, in this test's own moto (where no other rule
    # targets a state machine: moto then stops delivering S3's events on the default bus).
    machine = boto3.client("stepfunctions").create_state_machine(
        name="emoji_reco.prod.EmojiFlow", definition=json.dumps(deployed),
        roleArn=os.environ["METAFLOW_SFN_IAM_ROLE"])
    assert cli.main(["aws", "wire-retrain", "--bucket", bucket, "--prefix", "incoming/",
                     "--state-machine", "emoji_reco.prod.EmojiFlow", "--rule", "retrain-test"]) == 0
    wired = json.loads(capsys.readouterr().out)
    assert wired["state_machine"] == machine["stateMachineArn"]
    (target,) = events.list_targets_by_rule(Rule="retrain-test")["Targets"]
    assert target["Arn"] == wired["state_machine"] and target["RoleArn"] == wired["role"]
    policy = iam.get_role_policy(RoleName="retrain-test", PolicyName="start-execution")["PolicyDocument"]
    assert policy["Statement"] == [{"Effect": "Allow", "Action": "states:StartExecution",
                                    "Resource": wired["state_machine"]}]

    # Which uploads the rule's real pattern matches, with the events exactly as S3 sends them: the state
    # machine target (where moto stops delivering) is swapped for a probe queue on the same rule.
    queue = sqs.create_queue(QueueName=f"probe-{bucket}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue,
                                         AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.remove_targets(Rule="retrain-test", Ids=[target["Id"]])
    events.put_targets(Rule="retrain-test", Targets=[{"Id": "probe", "Arn": queue_arn}])
    for key in ("incoming/2026-11.csv", "other/2026-11.csv", "incomingx.csv"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"TWEET,LABEL\n")
    received = [json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10,
                                                                    WaitTimeSeconds=2).get("Messages", [])]
    assert [e["detail"]["object"]["key"] for e in received] == ["incoming/2026-11.csv"]

    # What the state machine gets for that event, through the target's input transformer.
    events.remove_targets(Rule="retrain-test", Ids=["probe"])
    events.put_targets(Rule="retrain-test", Targets=[target])
    (execution_input,) = replay_through_rule("retrain-test", received)
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
    expected = event_rules.retrain({"Ref": "BucketName"}, {"Ref": "Prefix"})
    assert pattern == json.loads(json.dumps(expected.pattern))
    (target,) = rule["Targets"]
    assert json.loads(json.dumps(target["InputTransformer"])) == expected.input_transformer
    role = template["Resources"]["StartExecutionRole"]["Properties"]
    (statement,) = role["Policies"][0]["PolicyDocument"]["Statement"]
    assert (statement["Action"] == "states:StartExecution" and statement["Resource"]
            == {"Ref": "StateMachineArn"})
