"""SageMaker endpoint deploys and their rollout against moto on 127.0.0.1: moto has endpoints InService at
once and lacks UpdateEndpoint, so the blue/green update is checked with botocore's Stubber (every request
validated against the API), while scaling, alarms and the smoke prediction go to moto."""
import io
import tarfile

import boto3
import pytest
from botocore.stub import Stubber

from emoji_reco import storage
from emoji_reco.aws import endpoint
from emoji_reco.data import demo
from emoji_reco.errors import EmojiRecoError
from emoji_reco.settings.sections import CaptureSettings
from helpers.sagemaker_job import OUR_IMAGE, ROLE, queue_answer, real_answer, settings

pytestmark = pytest.mark.timeout(600)


def test_a_first_deploy_creates_model_config_and_endpoint_and_smoke_tests_through_it(
        packaged, moto_server, tiny_bundle):
    model, run_root = packaged
    capture_uri = run_root.split("/metaflow/")[0] + "/capture"
    assert model["image"] == "763104351884.dkr.ecr.us-east-1.amazonaws.com/tensorflow-inference:2.16-cpu"
    with tarfile.open(fileobj=io.BytesIO(storage.read_bytes(model["model_data"]))) as tar:
        assert {"1/saved_model.pb", "code/inference.py", "code/payloads.py"} <= set(tar.getnames())
    config = settings(**{"deploy.endpoint": "emoji-first", "serve.capture.sample": 0.25,
                         "serve.capture.uri": capture_uri})
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
    # botocore-checked
    capture = sm.describe_endpoint_config(EndpointConfigName="emoji-first-9")["DataCaptureConfig"]
    assert (capture["EnableCapture"], capture["InitialSamplingPercentage"], capture["DestinationS3Uri"]) == (
        True, 25,
        capture_uri) and {o["CaptureMode"] for o in capture["CaptureOptions"]} == {"Input", "Output"}
    assert result["changed"] and [a[0]["emoji"] in demo.EMOJIS for _, a in result["smoke"]] == [True, True]

    again = endpoint.deploy(model, config, smoke)  # same version: nothing to do
    assert not again["changed"]
    assert (sm.describe_endpoint(EndpointName="emoji-first")["LastModifiedTime"]
            == described["LastModifiedTime"])


def test_captured_traffic_on_sagemaker_needs_an_s3_prefix():
    with pytest.raises(EmojiRecoError, match="must be an s3:// prefix"):
        endpoint.data_capture(CaptureSettings(sample=0.1, uri="/var/captures"))
    assert endpoint.data_capture(CaptureSettings(sample=0.0, uri=None)) is None


def test_the_int8_runtime_is_refused_on_the_tf_serving_image_in_one_line(tiny_bundle):
    config = settings(**{"serve.runtime": "int8"})  # sagemaker.endpoint.image "tfserving" (the default here)
    with pytest.raises(EmojiRecoError, match="serve.runtime int8 runs in our inference image, not TF "):
        endpoint.upload_model(str(tiny_bundle[1]), config, "9", "s3://unused/run")


def test_a_garbled_answer_fails_the_smoke_test(packaged, moto_server):
    model, _ = packaged
    queue_answer(moto_server, b'{"not": "predictions"}')
    with pytest.raises(EmojiRecoError, match="smoke prediction .* failed"):
        endpoint.deploy(model, settings(**{"deploy.endpoint": "emoji-garbled"}), ["garbled?"])


def _endpoint(config_name: str, status: str = "InService", reason: str | None = None) -> dict:
    described = {"EndpointName": "emoji-bg",
                 "EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/emoji-bg",
                 "EndpointConfigName": config_name, "EndpointStatus": status,
                 "CreationTime": "2026-11-22T00:00:00Z",
                 "LastModifiedTime": "2026-11-22T00:00:00Z"}
    return {**described, "FailureReason": reason} if reason else described


ARN = "arn:aws:sagemaker:us-east-1:123456789012"


# A canary: 10% of the new fleet first, the rest after the bake time; the deploy's own alarms, then the
# user's.
DEPLOYMENT = {
    "BlueGreenUpdatePolicy": {
        "TrafficRoutingConfiguration": {"Type": "CANARY", "WaitIntervalInSeconds": 300,
                                        "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10}},
        "TerminationWaitInSeconds": 300, "MaximumExecutionTimeoutInSeconds": 1800},
    "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "emoji-bg-5xx-rate"},
                                             {"AlarmName": "emoji-bg-p99-model-latency"},
                                             {"AlarmName": "emoji-5xx"}]}}


def _stub_update(stub: Stubber, run_root: str, after: dict, instance_type: str = "ml.m5.large") -> None:
    """Version 10 of `ours` (on `instance_type`) replacing emoji-bg-old (on ml.m5.large): every request in
    full (botocore validates each against the API)."""
    stub.add_response("describe_endpoint", _endpoint("emoji-bg-old"), {"EndpointName": "emoji-bg"})
    missing = {"service_error_code": "ValidationException", "service_message": "Could not find"}
    stub.add_client_error("describe_model", **missing, expected_params={"ModelName": "emoji-bg-10"})
    stub.add_response("create_model", {"ModelArn": f"{ARN}:model/emoji-bg-10"}, {
        "ModelName": "emoji-bg-10", "ExecutionRoleArn": ROLE, "PrimaryContainer": {
            "Image": OUR_IMAGE, "ModelDataUrl": f"{run_root}/sagemaker/model.tar.gz",
            "Environment": {"EMOJI_RECO_VERSION": "10", "EMOJI_RECO_RUNTIME": "savedmodel"}}})
    stub.add_client_error("describe_endpoint_config", **missing,
                          expected_params={"EndpointConfigName": "emoji-bg-10"})
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
    stub.add_response("describe_endpoint", _endpoint("emoji-bg-old", "Updating"),
                      {"EndpointName": "emoji-bg"})
    stub.add_response("describe_endpoint", after, {"EndpointName": "emoji-bg"})


def test_an_update_is_a_canary_with_the_deploys_own_rollback_alarms_and_the_users(
        ours, moto_server, tiny_bundle):
    model, run_root = ours
    config = settings(**{"deploy.endpoint": "emoji-bg",
                         "sagemaker.endpoint.blue_green.alarms": ["emoji-5xx"]})
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
    assert (latency["MetricName"], latency["ExtendedStatistic"],
            latency["Threshold"]) == ("ModelLatency", "p99", 1e6)
    assert {d["Name"]: d["Value"] for d in latency["Dimensions"]} == {"EndpointName": "emoji-bg",
                                                                      "VariantName": "AllTraffic"}
    rate = {m["Id"]: m for m in alarms["emoji-bg-5xx-rate"]["Metrics"]}
    assert (rate["rate"]["Expression"] == "100 * errors / MAX([calls, 1])"
            and alarms["emoji-bg-5xx-rate"]["Threshold"] == 1)
    assert rate["errors"]["MetricStat"]["Metric"]["MetricName"] == "Invocation5XXErrors"


@pytest.fixture
def fresh_emoji_bg(aws):
    """No endpoint emoji-bg and no scaling on it in moto, before and after: tests that deploy it first share
    the session's moto."""

    def clear():
        sagemaker, scaling = boto3.client("sagemaker"), boto3.client("application-autoscaling")
        if "emoji-bg" in [e["EndpointName"] for e in sagemaker.list_endpoints()["Endpoints"]]:
            sagemaker.delete_endpoint(EndpointName="emoji-bg")
        for target in _scaling("emoji-bg")[0]:
            scaling.deregister_scalable_target(**{k: target[k] for k in ("ServiceNamespace", "ResourceId",
                                                                          "ScalableDimension")})

    clear()
    yield
    clear()


def _scaling(endpoint_name: str) -> tuple[list, list]:
    client = boto3.client("application-autoscaling")
    resource = [f"endpoint/{endpoint_name}/variant/AllTraffic"]
    return (client.describe_scalable_targets(ServiceNamespace="sagemaker",
                                             ResourceIds=resource)["ScalableTargets"],
            client.describe_scaling_policies(ServiceNamespace="sagemaker",
                                             ResourceId=resource[0])["ScalingPolicies"])


def test_the_endpoint_scales_on_invocations_per_instance_and_a_rollback_keeps_the_scaling(
        ours, moto_server, tiny_bundle, fresh_emoji_bg):
    """moto has no UpdateEndpoint: the second deploy's SageMaker calls are stubbed (botocore checks them
    against the API), while its scaling, alarms and smoke prediction go to moto. Proves the rollback path
    leaves the scaling of the serving variant as it was (registering again is idempotent), not what SageMaker
    does meanwhile."""
    model, run_root = ours
    config = settings(**{"deploy.endpoint": "emoji-bg",
                         "sagemaker.endpoint.blue_green.alarms": ["emoji-5xx"]})
    queue_answer(moto_server, real_answer(tiny_bundle, ["scale me"]))
    first = endpoint.deploy({**model, "version": "9"}, config, ["scale me"])  # a first deploy, in moto
    (target,), (policy,) = _scaling("emoji-bg")
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 4) == (first["autoscaling"]["min"],
                                                                        first["autoscaling"]["max"])
    tracking = policy["TargetTrackingScalingPolicyConfiguration"]
    assert policy["PolicyType"] == "TargetTrackingScaling" and tracking["TargetValue"] == 600
    assert (tracking["PredefinedMetricSpecification"]["PredefinedMetricType"]
            == "SageMakerVariantInvocationsPerInstance")

    queue_answer(moto_server, b'{"not": "predictions"}')  # the new version fails its smoke test: rolled back
    sm = boto3.client("sagemaker")
    with Stubber(sm) as stub:
        _stub_update(stub, run_root, _endpoint("emoji-bg-10"))
        # back, the same way
        stub.add_response("update_endpoint", {"EndpointArn": f"{ARN}:endpoint/emoji-bg"}, {
            "EndpointName": "emoji-bg", "EndpointConfigName": "emoji-bg-old", "DeploymentConfig": DEPLOYMENT})
        with pytest.raises(EmojiRecoError, match="rolling back to emoji-bg-old"):
            endpoint.deploy(model, config, ["scale me, then fail"], client=sm)
        stub.assert_no_pending_responses()
    (after,), (kept,) = _scaling("emoji-bg")  # still on the variant that serves
    assert (after["MinCapacity"], after["MaxCapacity"]) == (1,
                                                            4) and kept["PolicyName"] == policy["PolicyName"]
    assert kept["TargetTrackingScalingPolicyConfiguration"] == tracking


def test_a_new_instance_type_takes_the_scaling_off_for_the_update_and_registers_it_again(
        ours, moto_server, tiny_bundle, fresh_emoji_bg):
    """SageMaker refuses to change the instance type of a variant autoscaling manages: the deploy deregisters
    the scaling (in moto) before the update (stubbed, as moto has none) and registers it again once the new
    fleet serves."""
    model, run_root = ours
    config = {"deploy.endpoint": "emoji-bg", "sagemaker.endpoint.blue_green.alarms": ["emoji-5xx"]}
    queue_answer(moto_server, real_answer(tiny_bundle, ["resize me"]))
    endpoint.deploy({**model, "version": "9"}, settings(**config), ["resize me"])  # on ml.m5.large, scaled
    assert len(_scaling("emoji-bg")[0]) == 1
    sm, at_update = boto3.client("sagemaker"), []
    sm.meta.events.register("before-parameter-build.sagemaker.UpdateEndpoint",
                            lambda **_: at_update.append(_scaling("emoji-bg")[0]))
    queue_answer(moto_server, real_answer(tiny_bundle, ["resize me bigger"]))
    with Stubber(sm) as stub:
        _stub_update(stub, run_root, _endpoint("emoji-bg-10"), instance_type="ml.c5.xlarge")
        result = endpoint.deploy(model, settings(**config,
                                                 **{"sagemaker.endpoint.instance_type": "ml.c5.xlarge"}),
                                 ["resize me bigger"], client=sm)
        stub.assert_no_pending_responses()
    assert at_update == [[]]  # nothing scaled the variant while its instance type changed
    (target,), (policy,) = _scaling("emoji-bg")
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 4) == (result["autoscaling"]["min"],
                                                                        result["autoscaling"]["max"])
    assert policy["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] == 600


def test_a_failed_update_leaves_the_previous_version_serving_and_says_why(ours):
    model, run_root = ours
    config = settings(**{"deploy.endpoint": "emoji-bg",
                         "sagemaker.endpoint.blue_green.alarms": ["emoji-5xx"]})
    sm = boto3.client("sagemaker")
    with Stubber(sm) as stub:
        _stub_update(stub, run_root, _endpoint("emoji-bg-old", "InService", "Alarm emoji-5xx "
                                                                            "fired; rolled back"))
        with pytest.raises(EmojiRecoError, match="Alarm emoji-5xx fired; rolled "
                                                 "back.*emoji-bg-old still serves"):
            endpoint.deploy(model, config, ["never invoked"], client=sm)
