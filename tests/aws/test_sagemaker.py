"""SageMaker training jobs, endpoint deploys, the Model Registry and the HTTP front, against moto on 127.0.0.1.

Moto completes training jobs at once without running them (and writes no model), has endpoints InService at once,
and lacks UpdateEndpoint: the job's own work is done here by running our training entry point as a process, and the
blue/green update is checked with botocore's Stubber.
"""
import base64
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from emoji_reco import cli, storage
from emoji_reco.aws import endpoint, http_front, model_registry, training_job
from emoji_reco.data import demo
from emoji_reco.errors import EmojiRecoError
from emoji_reco.model import bundle
from emoji_reco.serving import payloads, sources
from helpers.containers import version
from helpers.flows import ROOT, gated_run
from helpers.sagemaker_job import ROLE, opt_ml, queue_answer, run_train, settings

pytestmark = pytest.mark.timeout(600)
def real_answer(tiny_bundle, texts) -> bytes:
    """What our server answers for `texts` with the tiny bundle."""
    model_dir = tiny_bundle[1]
    predictor = bundle.Predictor(model_dir)
    return json.dumps(payloads.response(predictor.logits(texts).tolist(), predictor.emojis, 3, False, "v1")).encode()


def shards(run_root: str) -> list[dict]:
    """The convert step's TFRecord shards of a run, as the train step hands them on (two shards per split)."""
    return [{"split": split, "uri": f"{run_root}/tfrecords/{split}-{shard:05d}-of-00002.tfrecord", "records": 3}
            for split in ("train", "validation", "test") for shard in (0, 1)]


def test_script_mode_training_job_reads_the_runs_tfrecords_and_ships_our_code(aws, tiny_model):
    client, bucket = aws
    run_root = f"s3://{bucket}/metaflow/EmojiFlow/7/emoji_reco"
    config = settings(**{"model.base": str(tiny_model)})
    logs = []
    job = training_job.train(shards(run_root), demo.EMOJIS, config, run_root, f"s3://{bucket}/metaflow",
                             "emoji-reco-7-0", {"run": "EmojiFlow/7", "data": "tweets.csv"}, logs.append)
    assert job["status"] == "Completed" and logs  # moto: completed at once, nothing ran
    assert job["image"] == "763104351884.dkr.ecr.us-east-1.amazonaws.com/tensorflow-training:2.16-cpu-py310"
    assert job["model_artifact"] == f"{run_root}/sagemaker/emoji-reco-7-0/output/model.tar.gz"
    described = boto3.client("sagemaker").describe_training_job(TrainingJobName="emoji-reco-7-0")
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in described["InputDataConfig"]}
    # Each channel is the prefix its split's shards share (and no test shard).
    assert channels == {"train": f"{run_root}/tfrecords/train-0000", "validation": f"{run_root}/tfrecords/validation-0000"}
    assert described["OutputDataConfig"]["S3OutputPath"] == f"{run_root}/sagemaker"
    assert described["ResourceConfig"]["InstanceType"] == config["sagemaker"]["training"]["instance_type"]
    assert described["StoppingCondition"]["MaxRuntimeInSeconds"] == 60 * config["sagemaker"]["training"]["max_run_minutes"]
    hyper = described["HyperParameters"]
    sent = json.loads(json.loads(hyper["settings"]))  # script mode JSON-encodes every value once more
    assert sent["train"] == config["train"] and json.loads(json.loads(hyper["emojis"])) == demo.EMOJIS
    assert json.loads(json.loads(hyper["provenance"])) == {"run": "EmojiFlow/7", "data": "tweets.csv"}
    # The local base model went to the datastore, where the job can read it.
    assert sent["model"]["base"].startswith(f"s3://{bucket}/metaflow/emoji_reco/base_models/")
    assert storage.read_text(sent["model"]["base"] + "/config.json") == (tiny_model / "config.json").read_text()

    bucket_name, key = json.loads(hyper["sagemaker_submit_directory"])[len("s3://"):].split("/", 1)
    source = client.get_object(Bucket=bucket_name, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(source)) as tar:
        names = set(tar.getnames())
        requirements = tar.extractfile("requirements.txt").read().decode().split()
    assert {"train.py", "emoji_reco/aws/job_entry.py", "emoji_reco/model/training.py"} <= names
    assert "tf-keras~=2.16.0" in requirements and not any(r.startswith("tensorflow") for r in requirements)


def test_the_gpu_config_trains_on_two_gpu_instances_in_the_matching_aws_gpu_image(aws, tiny_model):
    from emoji_reco.settings import parse, with_overrides

    _, bucket = aws
    run_root = f"s3://{bucket}/metaflow/EmojiFlow/17/emoji_reco"
    config = with_overrides(parse(json.dumps({"extends": "gpu.json"})),
                            {"sagemaker.role": ROLE, "sagemaker.training.poll_seconds": 0.1, "model.base": str(tiny_model)})
    training_job.train(shards(run_root), demo.EMOJIS, config, run_root, f"s3://{bucket}/metaflow", "emoji-reco-17-0",
                       {"run": "EmojiFlow/17", "data": "tweets.csv"}, print)
    described = boto3.client("sagemaker").describe_training_job(TrainingJobName="emoji-reco-17-0")
    assert described["AlgorithmSpecification"]["TrainingImage"].endswith("/tensorflow-training:2.16-gpu-py310")
    assert described["ResourceConfig"]["InstanceType"] == "ml.g5.12xlarge"
    assert described["ResourceConfig"]["InstanceCount"] == 2  # one training across both (resourceconfig.json)
    sent = json.loads(json.loads(described["HyperParameters"]["settings"]))
    assert sent["train"]["batch_size"] == 64 and sent["train"]["distribution"]["port"] == 23456


def test_our_container_trains_on_what_the_job_passes_and_the_step_unpacks_its_model(aws, tiny_model, tmp_path):
    client, bucket = aws
    run_root = f"s3://{bucket}/metaflow/EmojiFlow/8/emoji_reco"
    image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/emoji-reco-train:1"
    config = settings(**{"model.base": str(tiny_model), "sagemaker.training.mode": "container",
                         "sagemaker.training.image": image, "train.epochs": 1, "train.batch_size": 16,
                         "train.bucket_boundaries": [8, 16], "model.max_length": 32})
    job = training_job.train(shards(run_root), demo.EMOJIS, config, run_root, f"s3://{bucket}/metaflow",
                             "emoji-reco-8-0", {"run": "EmojiFlow/8", "data": "tweets.csv"}, print)
    described = boto3.client("sagemaker").describe_training_job(TrainingJobName="emoji-reco-8-0")
    assert described["AlgorithmSpecification"]["TrainingImage"] == image

    # Do the job's work: our training entry point, on an /opt/ml holding the hyperparameters the job got.
    root = opt_ml(tmp_path / "ml", tiny_model)
    (root / "input" / "config" / "hyperparameters.json").write_text(json.dumps(described["HyperParameters"]))
    result = run_train(root)
    assert result.returncode == 0, result.stderr[-3000:]
    tarball = sources.make_tarball(root / "model", tmp_path / "model.tar.gz")
    storage.put_file(str(tarball), job["model_artifact"])

    bundle_uri = training_job.fetch_model(job["model_artifact"], f"{run_root}/model")
    local = Path(storage.get_dir(bundle_uri, str(tmp_path / "fetched")))
    assert bundle.read_labels(local) == demo.EMOJIS
    assert bundle.read_metadata(local)["data"] == "tweets.csv"  # the step's provenance reached the job's bundle
    assert bundle.Predictor(local).logits(["it works"]).shape == (1, len(demo.EMOJIS))


def test_a_failed_training_job_stops_the_step_with_its_reason():
    sagemaker = boto3.client("sagemaker", region_name="us-east-1")
    with Stubber(sagemaker) as stub:
        stub.add_response("describe_training_job", {
            "TrainingJobName": "j", "TrainingJobArn": "arn:aws:sagemaker:us-east-1:123456789012:training-job/j",
            "ModelArtifacts": {"S3ModelArtifacts": ""}, "TrainingJobStatus": "Failed", "SecondaryStatus": "Failed",
            "FailureReason": "AlgorithmError: out of memory", "AlgorithmSpecification": {"TrainingInputMode": "File"},
            "RoleArn": ROLE, "OutputDataConfig": {"S3OutputPath": "s3://b/o"}, "ResourceConfig": {
                "InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 30},
            "StoppingCondition": {}, "CreationTime": "2026-11-22T00:00:00Z"})
        with pytest.raises(EmojiRecoError, match="training job j failed: AlgorithmError: out of memory"):
            training_job.wait("j", print, 0, client=sagemaker)


@pytest.fixture
def packaged(aws, tiny_bundle):
    """The tiny bundle in the run's S3 prefix, packed for the TF Serving image."""
    _, bucket = aws
    run_root = f"s3://{bucket}/metaflow/EmojiFlow/9/emoji_reco"
    storage.put_dir(str(tiny_bundle[1]), f"{run_root}/model")
    return endpoint.upload_model(f"{run_root}/model", settings(), "9", run_root), run_root


# Our inference image as `make push-images` names it in a registry.
OUR_IMAGE = f"123456789012.dkr.ecr.us-east-1.amazonaws.com/emoji-reco-inference:{version()}"


@pytest.fixture
def ours(aws, tiny_bundle):
    """The tiny bundle as version 10, packed for our inference image: (model, run root)."""
    run_root = f"s3://{aws[1]}/metaflow/EmojiFlow/10/emoji_reco"
    storage.put_dir(str(tiny_bundle[1]), f"{run_root}/model")
    config = settings(**{"sagemaker.endpoint.image": OUR_IMAGE})
    return endpoint.upload_model(f"{run_root}/model", config, "10", run_root), run_root


def test_a_first_deploy_creates_model_config_and_endpoint_and_smoke_tests_through_it(packaged, moto_server, tiny_bundle):
    model, run_root = packaged
    capture_uri = run_root.split("/metaflow/")[0] + "/capture"
    assert model["image"] == "763104351884.dkr.ecr.us-east-1.amazonaws.com/tensorflow-inference:2.16-cpu"
    with tarfile.open(fileobj=io.BytesIO(storage.read_bytes(model["model_data"]))) as tar:
        assert {"1/saved_model.pb", "code/inference.py", "code/payloads.py"} <= set(tar.getnames())
    config = settings(**{"deploy.endpoint": "emoji-first", "serve.capture.sample": 0.25, "serve.capture.uri": capture_uri})
    smoke = ["hello", "bye"]
    queue_answer(moto_server, real_answer(tiny_bundle, smoke))
    result = endpoint.deploy(model, config, smoke)
    sm = boto3.client("sagemaker")
    described = sm.describe_endpoint(EndpointName="emoji-first")
    assert described["EndpointStatus"] == "InService" and described["EndpointConfigName"] == "emoji-first-9"
    container = sm.describe_model(ModelName="emoji-first-9")["PrimaryContainer"]
    assert container["Image"] == model["image"] and container["ModelDataUrl"] == model["model_data"]
    variant = sm.describe_endpoint_config(EndpointConfigName="emoji-first-9")["ProductionVariants"][0]
    assert variant["ModelName"] == "emoji-first-9" and variant["InstanceType"] == "ml.m5.large"
    capture = sm.describe_endpoint_config(EndpointConfigName="emoji-first-9")["DataCaptureConfig"]  # botocore-checked
    assert (capture["EnableCapture"], capture["InitialSamplingPercentage"], capture["DestinationS3Uri"]) == (
        True, 25, capture_uri) and {o["CaptureMode"] for o in capture["CaptureOptions"]} == {"Input", "Output"}
    assert result["changed"] and [a[0]["emoji"] in demo.EMOJIS for _, a in result["smoke"]] == [True, True]

    again = endpoint.deploy(model, config, smoke)  # same version: nothing to do
    assert not again["changed"]
    assert sm.describe_endpoint(EndpointName="emoji-first")["LastModifiedTime"] == described["LastModifiedTime"]


def test_captured_traffic_on_sagemaker_needs_an_s3_prefix():
    with pytest.raises(EmojiRecoError, match="must be an s3:// prefix"):
        endpoint.data_capture({"sample": 0.1, "uri": "/var/captures"})
    assert endpoint.data_capture({"sample": 0.0, "uri": None}) is None


def test_a_garbled_answer_fails_the_smoke_test(packaged, moto_server):
    model, _ = packaged
    queue_answer(moto_server, b'{"not": "predictions"}')
    with pytest.raises(EmojiRecoError, match="smoke prediction .* failed"):
        endpoint.deploy(model, settings(**{"deploy.endpoint": "emoji-garbled"}), ["garbled?"])


def _endpoint(config_name: str, status: str = "InService", reason: str | None = None) -> dict:
    described = {"EndpointName": "emoji-bg", "EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/emoji-bg",
                 "EndpointConfigName": config_name, "EndpointStatus": status, "CreationTime": "2026-11-22T00:00:00Z",
                 "LastModifiedTime": "2026-11-22T00:00:00Z"}
    return {**described, "FailureReason": reason} if reason else described


ARN = "arn:aws:sagemaker:us-east-1:123456789012"


# A canary: 10% of the new fleet first, the rest after the bake time; the deploy's own alarms, then the user's.
DEPLOYMENT = {
    "BlueGreenUpdatePolicy": {
        "TrafficRoutingConfiguration": {"Type": "CANARY", "WaitIntervalInSeconds": 300,
                                        "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10}},
        "TerminationWaitInSeconds": 300, "MaximumExecutionTimeoutInSeconds": 1800},
    "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "emoji-bg-5xx-rate"},
                                             {"AlarmName": "emoji-bg-p99-model-latency"}, {"AlarmName": "emoji-5xx"}]}}


def _stub_update(stub: Stubber, run_root: str, after: dict, instance_type: str = "ml.m5.large") -> None:
    """Version 10 of `ours` (on `instance_type`) replacing emoji-bg-old (on ml.m5.large): every request in full
    (botocore validates each against the API)."""
    stub.add_response("describe_endpoint", _endpoint("emoji-bg-old"), {"EndpointName": "emoji-bg"})
    missing = {"service_error_code": "ValidationException", "service_message": "Could not find"}
    stub.add_client_error("describe_model", **missing, expected_params={"ModelName": "emoji-bg-10"})
    stub.add_response("create_model", {"ModelArn": f"{ARN}:model/emoji-bg-10"}, {
        "ModelName": "emoji-bg-10", "ExecutionRoleArn": ROLE, "PrimaryContainer": {
            "Image": OUR_IMAGE, "ModelDataUrl": f"{run_root}/sagemaker/model.tar.gz",
            "Environment": {"EMOJI_RECO_VERSION": "10"}}})
    stub.add_client_error("describe_endpoint_config", **missing, expected_params={"EndpointConfigName": "emoji-bg-10"})
    stub.add_response("create_endpoint_config", {"EndpointConfigArn": f"{ARN}:endpoint-config/emoji-bg-10"}, {
        "EndpointConfigName": "emoji-bg-10", "ProductionVariants": [{
            "VariantName": "AllTraffic", "ModelName": "emoji-bg-10", "InstanceType": instance_type,
            "InitialInstanceCount": 1}]})
    stub.add_response("describe_endpoint_config", {  # the serving config's instance type
        "EndpointConfigName": "emoji-bg-old", "EndpointConfigArn": f"{ARN}:endpoint-config/emoji-bg-old",
        "CreationTime": "2026-11-22T00:00:00Z", "ProductionVariants": [{
            "VariantName": "AllTraffic", "ModelName": "emoji-bg-old", "InstanceType": "ml.m5.large"}]},
                      {"EndpointConfigName": "emoji-bg-old"})
    stub.add_response("update_endpoint", {"EndpointArn": f"{ARN}:endpoint/emoji-bg"}, {
        "EndpointName": "emoji-bg", "EndpointConfigName": "emoji-bg-10", "DeploymentConfig": DEPLOYMENT})
    stub.add_response("describe_endpoint", _endpoint("emoji-bg-old", "Updating"), {"EndpointName": "emoji-bg"})
    stub.add_response("describe_endpoint", after, {"EndpointName": "emoji-bg"})


def test_an_update_is_a_canary_with_the_deploys_own_rollback_alarms_and_the_users(ours, moto_server, tiny_bundle):
    model, run_root = ours
    config = settings(**{"deploy.endpoint": "emoji-bg", "sagemaker.endpoint.blue_green.alarms": ["emoji-5xx"]})
    sm = boto3.client("sagemaker")
    queue_answer(moto_server, real_answer(tiny_bundle, ["blue and green"]))
    with Stubber(sm) as stub:
        _stub_update(stub, run_root, _endpoint("emoji-bg-10"))
        result = endpoint.deploy(model, config, ["blue and green"], client=sm)
        stub.assert_no_pending_responses()
    assert result["changed"] and result["previous_config"] == "emoji-bg-old"
    alarms = {a["AlarmName"]: a for a in boto3.client("cloudwatch").describe_alarms(
        AlarmNames=["emoji-bg-5xx-rate", "emoji-bg-p99-model-latency"])["MetricAlarms"]}
    latency = alarms["emoji-bg-p99-model-latency"]
    assert (latency["MetricName"], latency["ExtendedStatistic"], latency["Threshold"]) == ("ModelLatency", "p99", 1e6)
    assert {d["Name"]: d["Value"] for d in latency["Dimensions"]} == {"EndpointName": "emoji-bg",
                                                                      "VariantName": "AllTraffic"}
    rate = {m["Id"]: m for m in alarms["emoji-bg-5xx-rate"]["Metrics"]}
    assert rate["rate"]["Expression"] == "100 * errors / MAX([calls, 1])" and alarms["emoji-bg-5xx-rate"]["Threshold"] == 1
    assert rate["errors"]["MetricStat"]["Metric"]["MetricName"] == "Invocation5XXErrors"


def _scaling(endpoint_name: str) -> tuple[list, list]:
    client = boto3.client("application-autoscaling")
    resource = [f"endpoint/{endpoint_name}/variant/AllTraffic"]
    return (client.describe_scalable_targets(ServiceNamespace="sagemaker", ResourceIds=resource)["ScalableTargets"],
            client.describe_scaling_policies(ServiceNamespace="sagemaker", ResourceId=resource[0])["ScalingPolicies"])


def test_the_endpoint_scales_on_invocations_per_instance_and_a_rollback_keeps_the_scaling(ours, moto_server,
                                                                                          tiny_bundle):
    """moto has no UpdateEndpoint: the second deploy's SageMaker calls are stubbed (botocore checks them against the
    API), while its scaling, alarms and smoke prediction go to moto. Proves the rollback path leaves the scaling of
    the serving variant as it was (registering again is idempotent), not what SageMaker does meanwhile."""
    model, run_root = ours
    config = settings(**{"deploy.endpoint": "emoji-bg", "sagemaker.endpoint.blue_green.alarms": ["emoji-5xx"]})
    queue_answer(moto_server, real_answer(tiny_bundle, ["scale me"]))
    first = endpoint.deploy({**model, "version": "9"}, config, ["scale me"])  # a first deploy, in moto
    (target,), (policy,) = _scaling("emoji-bg")
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 4) == (first["autoscaling"]["min"],
                                                                        first["autoscaling"]["max"])
    tracking = policy["TargetTrackingScalingPolicyConfiguration"]
    assert policy["PolicyType"] == "TargetTrackingScaling" and tracking["TargetValue"] == 600
    assert tracking["PredefinedMetricSpecification"]["PredefinedMetricType"] == "SageMakerVariantInvocationsPerInstance"

    queue_answer(moto_server, b'{"not": "predictions"}')  # the new version fails its smoke test: rolled back
    sm = boto3.client("sagemaker")
    with Stubber(sm) as stub:
        _stub_update(stub, run_root, _endpoint("emoji-bg-10"))
        stub.add_response("update_endpoint", {"EndpointArn": f"{ARN}:endpoint/emoji-bg"}, {  # back, the same way
            "EndpointName": "emoji-bg", "EndpointConfigName": "emoji-bg-old", "DeploymentConfig": DEPLOYMENT})
        with pytest.raises(EmojiRecoError, match="rolling back to emoji-bg-old"):
            endpoint.deploy(model, config, ["scale me, then fail"], client=sm)
        stub.assert_no_pending_responses()
    (after,), (kept,) = _scaling("emoji-bg")  # still on the variant that serves
    assert (after["MinCapacity"], after["MaxCapacity"]) == (1, 4) and kept["PolicyName"] == policy["PolicyName"]
    assert kept["TargetTrackingScalingPolicyConfiguration"] == tracking


def test_a_new_instance_type_takes_the_scaling_off_for_the_update_and_registers_it_again(ours, moto_server,
                                                                                         tiny_bundle):
    """SageMaker refuses to change the instance type of a variant autoscaling manages: the deploy deregisters the
    scaling (in moto) before the update (stubbed, as moto has none) and registers it again once the new fleet serves."""
    model, run_root = ours
    config = {"deploy.endpoint": "emoji-bg", "sagemaker.endpoint.blue_green.alarms": ["emoji-5xx"]}
    queue_answer(moto_server, real_answer(tiny_bundle, ["scale me"]))
    endpoint.deploy({**model, "version": "9"}, settings(**config), ["scale me"])  # on ml.m5.large, scaled
    assert len(_scaling("emoji-bg")[0]) == 1
    sm, at_update = boto3.client("sagemaker"), []
    sm.meta.events.register("before-parameter-build.sagemaker.UpdateEndpoint",
                            lambda **_: at_update.append(_scaling("emoji-bg")[0]))
    queue_answer(moto_server, real_answer(tiny_bundle, ["bigger"]))
    with Stubber(sm) as stub:
        _stub_update(stub, run_root, _endpoint("emoji-bg-10"), instance_type="ml.c5.xlarge")
        result = endpoint.deploy(model, settings(**config, **{"sagemaker.endpoint.instance_type": "ml.c5.xlarge"}),
                                 ["bigger"], client=sm)
        stub.assert_no_pending_responses()
    assert at_update == [[]]  # nothing scaled the variant while its instance type changed
    (target,), (policy,) = _scaling("emoji-bg")
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 4) == (result["autoscaling"]["min"],
                                                                        result["autoscaling"]["max"])
    assert policy["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] == 600


def test_a_failed_update_leaves_the_previous_version_serving_and_says_why(ours):
    model, run_root = ours
    config = settings(**{"deploy.endpoint": "emoji-bg", "sagemaker.endpoint.blue_green.alarms": ["emoji-5xx"]})
    sm = boto3.client("sagemaker")
    with Stubber(sm) as stub:
        _stub_update(stub, run_root, _endpoint("emoji-bg-old", "InService", "Alarm emoji-5xx fired; rolled back"))
        with pytest.raises(EmojiRecoError, match="Alarm emoji-5xx fired; rolled back.*emoji-bg-old still serves"):
            endpoint.deploy(model, config, ["never invoked"], client=sm)


def test_the_registry_keeps_versions_approvals_and_the_newest_approved(aws, packaged, capsys):
    model, run_root = packaged
    group = f"emoji-{aws[1]}"
    metrics = {"top1": 0.4, "top3": 0.7, "macro_f1": 0.3}
    passed, failed = {"passed": True, "reasons": ["ok"]}, {"passed": False, "reasons": ["too low"]}
    auto = settings(**{"sagemaker.registry.group": group})
    manual = settings(**{"sagemaker.registry.group": group, "sagemaker.registry.approval": "manual"})
    first = model_registry.register({**model, "version": "1"}, auto, "EmojiFlow/1", metrics, passed, run_root)
    second = model_registry.register({**model, "version": "2"}, auto, "EmojiFlow/2", metrics, failed, run_root)
    third = model_registry.register({**model, "version": "3"}, manual, "EmojiFlow/3", metrics, passed, run_root)
    assert [first["status"], second["status"], third["status"]] == ["Approved", "Rejected", "PendingManualApproval"]
    assert [v["version"] for v in model_registry.versions(group)] == ["3", "2", "1"]
    newest = model_registry.newest_approved(group)
    assert newest["version"] == "1" and newest["model_data"] == model["model_data"] and newest["top1"] == "0.4000"

    assert cli.main(["models", "approve", third["arn"], "--registry", "sagemaker", "--group", group]) == 0
    assert model_registry.newest_approved(group)["version"] == "3"
    assert cli.main(["models", "reject", "3", "--registry", "sagemaker", "--group", group, "--note", "bias"]) == 0
    assert model_registry.newest_approved(group)["version"] == "1"
    capsys.readouterr()
    assert cli.main(["models", "list", "--registry", "sagemaker", "--group", group]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split()[1] for line in listed] == ["Rejected", "Rejected", "Approved"]
    assert cli.main(["models", "approve", "99", "--registry", "sagemaker", "--group", group]) == 2


def test_local_models_can_be_rejected_and_approved_by_hand(tmp_path, capsys):
    from emoji_reco import registry

    run = gated_run(tmp_path)
    assert cli.main(["models", "reject", run]) == 0
    assert "rejected" in next(m["state"] for m in registry.models("GatedFlow") if m["run"] == run)
    assert cli.main(["models", "approve", run]) == 0
    state = next(m["state"] for m in registry.models("GatedFlow") if m["run"] == run)
    assert "approved" in state and "rejected" not in state
    capsys.readouterr()
    assert cli.main(["models", "list", "--flow", "GatedFlow"]) == 0 and "approved" in capsys.readouterr().out


def _http(body: str | bytes, content_type: str = "text/plain", b64: bool = False) -> dict:
    if b64:
        body = base64.b64encode(body if isinstance(body, bytes) else body.encode()).decode()
    return {"headers": {"Content-Type": content_type}, "body": body, "isBase64Encoded": b64}


def test_the_http_front_answers_a_tweet_from_the_endpoint(aws, moto_server, tiny_bundle, monkeypatch):
    monkeypatch.setenv("ENDPOINT_NAME", "shop-front")
    runtime, sent = boto3.client("sagemaker-runtime"), []
    runtime.meta.events.register("before-send.sagemaker-runtime.InvokeEndpoint", lambda request, **_: sent.append(
        (request.method, request.url, {k: v for k, v in request.headers.items()}, request.body)))
    queue_answer(moto_server, real_answer(tiny_bundle, ["monday again"]))
    reply = http_front.handler(_http("monday again"), runtime=runtime)
    assert reply["statusCode"] == 200
    (answer,) = json.loads(reply["body"])["predictions"]
    assert len(answer) == 3 and answer[0]["emoji"] in demo.EMOJIS
    queue_answer(moto_server, real_answer(tiny_bundle, ["a", "b"]))
    reply = http_front.handler(_http(json.dumps(["a", "b"]).encode(), "application/json", b64=True), runtime=runtime)
    assert reply["statusCode"] == 200 and len(json.loads(reply["body"])["predictions"]) == 2
    # What went over the wire to SageMaker: the endpoint named by $ENDPOINT_NAME, JSON both ways, the texts as a list.
    assert [(method, url.split("/", 3)[-1]) for method, url, _, _ in sent] == [
        ("POST", "endpoints/shop-front/invocations")] * 2
    assert all(headers["Content-Type"] == b"application/json" and headers["Accept"] == b"application/json"
               for _, _, headers, _ in sent)
    assert [json.loads(body) for *_, body in sent] == [["monday again"], ["a", "b"]]


@pytest.mark.parametrize("event, status, reason", [
    (_http(""), 400, "No texts"),
    (_http("{not json", "application/json"), 400, "JSON"),
    (_http("<xml/>", "application/xml"), 415, "Unsupported content type"),
    (_http("\n".join(["t"] * 65)), 400, "at most 64"),
    (_http(json.dumps({"instances": ["fine", "   "]}), "application/json"), 400, "instances[1] is empty"),
])
def test_the_http_front_refuses_bad_bodies_with_the_reason(aws, monkeypatch, event, status, reason):
    monkeypatch.setenv("ENDPOINT_NAME", "emoji-reco")
    reply = http_front.handler(event)
    assert reply["statusCode"] == status and reason in json.loads(reply["body"])["error"]


def test_the_http_front_passes_explain_through_to_the_endpoint(monkeypatch):
    """A double of sagemaker-runtime records what the front sends (the endpoint's side is tested in test_server)."""
    monkeypatch.setenv("ENDPOINT_NAME", "emoji-reco")
    sent = []

    class Runtime:
        exceptions = boto3.client("sagemaker-runtime", region_name="us-east-1").exceptions

        def invoke_endpoint(self, **request):
            sent.append(json.loads(request["Body"]))
            return {"Body": io.BytesIO(json.dumps({"version": "1", "predictions": [[{"emoji": "🔥", "probability": 1.0}]],
                                                   "explanations": [{"emojis": []}]}).encode())}

    asked = http_front.handler(_http(json.dumps({"instances": ["lit"], "explain": True}), "application/json"),
                               runtime=Runtime())
    plain = http_front.handler(_http("lit"), runtime=Runtime())
    assert sent == [{"instances": ["lit"], "explain": True}, ["lit"]]
    assert "explanations" in json.loads(asked["body"]) and asked["statusCode"] == plain["statusCode"] == 200


def test_the_http_front_reports_an_endpoint_failure_as_502(aws, moto_server, monkeypatch):
    monkeypatch.setenv("ENDPOINT_NAME", "emoji-reco")
    queue_answer(moto_server, b"<html>oops</html>")
    reply = http_front.handler(_http("is anyone there"))
    body = json.loads(reply["body"])
    assert reply["statusCode"] == 502 and "model endpoint failed" in body["error"]
    assert "oops" not in reply["body"] and body["request_id"] == reply["headers"]["X-Request-Id"]  # detail: log only


def test_the_lambda_package_holds_the_handler_and_what_it_imports(tmp_path):
    import zipfile

    assert cli.main(["aws", "lambda-zip", "--output", str(tmp_path / "front.zip")]) == 0
    with zipfile.ZipFile(tmp_path / "front.zip") as z:
        z.extractall(tmp_path / "front")
    probe = ("import sys, emoji_reco.aws.http_front as h; "
             "print(h.handler({'body': '', 'headers': {}})['statusCode']); "
             "print(sorted(m for m in sys.modules if m.startswith('emoji_reco')))")
    done = subprocess.run([sys.executable, "-S", "-c", f"import sys; sys.path[:0] = ['{tmp_path / 'front'}'] + "
                           f"{[p for p in sys.path if 'site-packages' in p]!r}; " + probe],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    status, modules = done.stdout.splitlines()
    assert status == "400" and modules == str(sorted(http_front.MODULES))


def test_the_local_default_never_imports_the_sagemaker_sdk():
    modules = ["emoji_reco." + m for m in ("data.dataset", "model.training", "model.evaluation", "serving.local_endpoint",
                                             "serving.server", "registry", "backends", "backends.local", "pipeline.cards", "cli",
                                             "pipeline.base", "pipeline.placement",
                                             "aws.event_rules", "aws.job_entry")]
    done = subprocess.run([sys.executable, "-c", f"import sys, importlib; [importlib.import_module(m) for m in {modules}]; "
                           "print('sagemaker' in sys.modules)"], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "False", done.stderr[-2000:]


def test_the_http_front_template_throttles_names_its_origins_and_requires_auth_by_default():
    from cfnlint.decode import cfn_yaml

    template = cfn_yaml.load(str(ROOT / "deploy" / "http-front.yaml"))
    params, resources = template["Parameters"], template["Resources"]
    assert "Default" not in params["AllowedOrigins"] and "*" in params["AllowedOrigins"]["AllowedPattern"]  # refused
    assert resources["Api"]["Properties"]["CorsConfiguration"]["AllowOrigins"] == {"Ref": "AllowedOrigins"}
    throttling = resources["Stage"]["Properties"]["DefaultRouteSettings"]
    assert throttling == {"ThrottlingRateLimit": {"Ref": "ThrottlingRateLimit"},
                          "ThrottlingBurstLimit": {"Ref": "ThrottlingBurstLimit"}}
    assert params["Auth"]["Default"] == "AWS_IAM" and set(params["Auth"]["AllowedValues"]) == {"AWS_IAM", "JWT", "NONE"}
    assert resources["Route"]["Properties"]["AuthorizationType"] == {"Ref": "Auth"}
    assert resources["Authorizer"]["Condition"] == "UseJwt" and resources["Authorizer"]["Properties"]["AuthorizerType"] == "JWT"
    import re

    pattern = re.compile(params["AllowedOrigins"]["AllowedPattern"])
    assert pattern.fullmatch("https://app.example.com") and not pattern.fullmatch("*")
    assert not pattern.fullmatch("https://*.example.com") and not pattern.fullmatch("https://a.com/path")
