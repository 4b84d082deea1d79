"""Deploy a model bundle to a SageMaker real-time endpoint: create it, or update it blue/green with
auto-rollback.

The model runs in the AWS TensorFlow Serving image (`sagemaker.endpoint.image` "tfserving": our model.tar.gz
with code/inference.py) or in our own inference image (an ECR URI). A version is promoted only after a smoke
prediction through the endpoint passes; a failed update leaves the previous version serving and says why.
"""
import json
import tempfile
import time
from pathlib import Path

import boto3

from emoji_reco import storage
from emoji_reco.aws import rollout, sdk, tfserving
from emoji_reco.errors import ConfigError, EmojiRecoError
from emoji_reco.serving import payloads, sources
from emoji_reco.serving.capture import VARIANT
from emoji_reco.settings import Settings
from emoji_reco.settings.sections import CaptureSettings, EndpointSettings


def resource_name(endpoint: str, version: str) -> str:
    """The model and endpoint-config name of one version (SageMaker: 63 characters, letters, digits,
    hyphens)."""
    return "".join(c if c.isalnum() else "-" for c in f"{endpoint}-{version}")[:63].strip("-")


def image(endpoint_settings: EndpointSettings) -> str:
    if endpoint_settings.image == "tfserving":
        return sdk.image_uri(endpoint_settings.framework_version, "inference",
                                       endpoint_settings.instance_type)
    return endpoint_settings.image


def environment(settings: Settings, version: str) -> dict:
    """Our inference image's environment in a SageMaker model: the version it serves, and the model's form
    (`serve.runtime`)."""
    return {"EMOJI_RECO_VERSION": version, "EMOJI_RECO_RUNTIME": settings.serve.runtime}


def upload_model(bundle_uri: str, settings: Settings, version: str, run_root: str) -> dict:
    """The serving image and the bundle as its model.tar.gz (TF Serving layout, or the bundle as is for our
    image), uploaded under the run's prefix."""
    ep = settings.sagemaker.endpoint
    if ep.image == "tfserving" and settings.serve.runtime != "savedmodel":
        raise ConfigError(f"serve.runtime {settings.serve.runtime} runs in our inference image, not TF "
                          "Serving: set sagemaker.endpoint.image to its ECR URI (emoji-reco-inference-int8 "
                          "serves int8 without TensorFlow).")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(storage.get_dir(bundle_uri, f"{tmp}/bundle"))
        tarball = Path(tmp) / "model.tar.gz"
        if ep.image == "tfserving":
            tfserving.archive(folder, tarball, version)
        else:
            sources.make_tarball(folder, tarball)
        model_data = storage.join(run_root, "sagemaker", "model.tar.gz")
        storage.put_file(str(tarball), model_data)
    return {"image": image(ep), "model_data": model_data, "version": version, "bundle_uri": bundle_uri}


def blue_green(endpoint_settings: EndpointSettings, alarms: list[str]) -> dict:
    """The update's DeploymentConfig: shift traffic to the new fleet as `blue_green.traffic` says
    (rollout.py), and roll back if one of `alarms` fires meanwhile."""
    policy = endpoint_settings.blue_green
    config = {"BlueGreenUpdatePolicy": {
        "TrafficRoutingConfiguration": rollout.traffic_routing(policy),
        "TerminationWaitInSeconds": policy.termination_wait_seconds,
        "MaximumExecutionTimeoutInSeconds": 60 * endpoint_settings.wait_minutes}}
    if alarms:
        config["AutoRollbackConfiguration"] = {"Alarms": [{"AlarmName": a} for a in alarms]}
    return config


def _instance_type(client, config_name: str) -> str | None:
    described = _exists(client.describe_endpoint_config, EndpointConfigName=config_name)
    return described["ProductionVariants"][0].get("InstanceType") if described else None


def data_capture(capture: CaptureSettings) -> dict | None:
    """The endpoint config's DataCaptureConfig for `serve.capture`: requests and answers, JSON and CSV bodies
    as text, to the S3 prefix, in the layout our own server's capture writes (capture.py). None when off."""
    if not capture.sample:
        return None
    if not storage.is_s3(capture.uri or ""):
        raise ConfigError(f"serve.capture.uri must be an s3:// prefix for a SageMaker endpoint, not "
                          f"{capture.uri!r}.")
    return {"EnableCapture": True, "InitialSamplingPercentage": max(1, round(100 * capture.sample)),
            "DestinationS3Uri": capture.uri,
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            "CaptureContentTypeHeader": {"JsonContentTypes": ["application/json"],
                                         "CsvContentTypes": ["text/csv"]}}


def wait_in_service(client, endpoint: str, minutes: float, poll_seconds: float, log=print) -> dict:
    """The endpoint's description once it is no longer creating or updating."""
    deadline, last = time.time() + 60 * minutes, None
    while True:
        described = client.describe_endpoint(EndpointName=endpoint)
        if described["EndpointStatus"] != last:
            last = described["EndpointStatus"]
            log(f"[{endpoint}] {last}")
        if last not in ("Creating", "Updating", "SystemUpdating", "RollingBack"):
            return described
        if time.time() > deadline:
            raise EmojiRecoError(f"Endpoint {endpoint} still {last} after {minutes} minutes.")
        time.sleep(poll_seconds)


def invoke(endpoint: str, texts: list[str], client=None) -> list[list[dict]]:
    """The top emojis for `texts` from a SageMaker endpoint, read as production reads them."""
    client = client or boto3.client("sagemaker-runtime")
    answer = client.invoke_endpoint(EndpointName=endpoint, ContentType="application/json",
                                    Accept="application/json",
                                     Body=json.dumps(texts).encode())
    return payloads.read_predictions(answer["Body"].read())


def _exists(describe, **name) -> dict | None:
    """The description of a SageMaker resource, or None when there is none by that name."""
    from botocore.exceptions import ClientError

    try:
        return describe(**name)
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("ValidationException", "ResourceNotFound"):
            return None
        raise


def _create_version(client, name: str, model: dict, settings: Settings) -> None:
    """The SageMaker model and endpoint config of one version, unless they exist already."""
    ep = settings.sagemaker.endpoint
    container = {"Image": model["image"], "ModelDataUrl": model["model_data"],
                 "Environment": environment(settings, model["version"])}
    if not _exists(client.describe_model, ModelName=name):
        client.create_model(ModelName=name, PrimaryContainer=container,
                            ExecutionRoleArn=sdk.execution_role(settings))
    if not _exists(client.describe_endpoint_config, EndpointConfigName=name):
        capture = data_capture(settings.serve.capture)
        client.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
            "VariantName": VARIANT, "ModelName": name, "InstanceType": ep.instance_type,
            "InitialInstanceCount": ep.instance_count}],
            **({"DataCaptureConfig": capture} if capture else {}))


def deploy(model: dict, settings: Settings, smoke_texts: list[str], log=print, client=None,
           runtime=None) -> dict:
    """Serve `model` (image, model_data, version: a registry entry) on the configured endpoint; where and what
    serves, and whether it changed. `client`/`runtime`: boto3 sagemaker and sagemaker-runtime clients."""
    deploy_settings, sm = settings.deploy, settings.sagemaker
    endpoint, ep = deploy_settings.endpoint, sm.endpoint
    version = model["version"]
    client, name = client or boto3.client("sagemaker"), resource_name(endpoint, version)
    current = _exists(client.describe_endpoint, EndpointName=endpoint)
    result = {"target": "sagemaker", "endpoint": endpoint, "endpoint_config": name, "model": name,
              "version": version, "path": f"SageMaker endpoint {endpoint}",
              "query": f"aws sagemaker-runtime invoke-endpoint --endpoint-name {endpoint} "
                       "--content-type application/json --body '[\"your tweet here\"]' "
                       "--cli-binary-format raw-in-base64-out answer.json"}
    if current and current["EndpointConfigName"] == name and current["EndpointStatus"] == "InService":
        return {**result, "changed": False, "previous_config": name}
    _create_version(client, name, model, settings)
    policy, scaling = ep.blue_green, ep.autoscaling
    alarms = (rollout.create_alarms(endpoint, VARIANT, policy) if policy.default_alarms
              else []) + policy.alarms
    if current is None:
        client.create_endpoint(EndpointName=endpoint, EndpointConfigName=name)
    else:
        if scaling.enabled and _instance_type(client, current["EndpointConfigName"]) != ep.instance_type:
            # refused on a scaled variant; registered again below
            rollout.deregister_autoscaling(endpoint, VARIANT)
        client.update_endpoint(EndpointName=endpoint, EndpointConfigName=name,
                               DeploymentConfig=blue_green(ep, alarms))
    described = wait_in_service(client, endpoint, ep.wait_minutes, ep.poll_seconds, log)
    previous = current["EndpointConfigName"] if current else None
    # the scaling of what serves now
    scaled = rollout.register_autoscaling(endpoint, VARIANT, scaling) if scaling.enabled else None
    if described["EndpointStatus"] != "InService" or described["EndpointConfigName"] != name:
        raise EmojiRecoError(
            f"Deploying {name} to endpoint {endpoint} failed ({described['EndpointStatus']}: "
            f"{described.get('FailureReason', 'rolled back')}); "
            + (f"{described['EndpointConfigName']} still serves." if previous else "nothing serves."))
    try:
        smoke = invoke(endpoint, smoke_texts, runtime)
    except (ValueError, client.exceptions.ClientError) as exc:
        if previous:
            client.update_endpoint(EndpointName=endpoint, EndpointConfigName=previous,
                                   DeploymentConfig=blue_green(ep, alarms))
        raise EmojiRecoError(f"The smoke prediction through endpoint {endpoint} failed ({exc}); " + (
            f"rolling back to {previous}." if previous else "the endpoint stays up for a look.")) from exc
    return {**result, "changed": True, "previous_config": previous, "image": model["image"],
            "model_data": model["model_data"], "smoke": list(zip(smoke_texts, smoke)), "alarms": alarms,
            "autoscaling": scaled}
