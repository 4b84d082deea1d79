"""Score a file or an S3 prefix with SageMaker Batch Transform on our inference image: the model bundle as a
SageMaker model, one transform job that splits the input by line into mini-batches of up to `max_payload_mb`,
and its progress until it ends. The image's server admits such mini-batches
(`serve_settings.for_batch_transform`) and answers one line per record (`payloads.render_lines`), so the
output holds one line per input line, in order."""
import tempfile
import time
from pathlib import Path

import boto3

from emoji_reco import storage
from emoji_reco.aws import sdk
from emoji_reco.aws.endpoint import environment, resource_name
from emoji_reco.errors import EmojiRecoError
from emoji_reco.serving import sources
from emoji_reco.settings import Settings
from emoji_reco.settings.sections import SageMakerSettings

CONTENT_TYPES = ("text/csv", "application/jsonlines")


def image(sm: SageMakerSettings) -> str:
    """`sagemaker.transform.image`, else the endpoint's image if it is ours (the TF Serving image has no
    server of ours to split and answer lines)."""
    chosen = sm.transform.image or (sm.endpoint.image if sm.endpoint.image != "tfserving" else None)
    if not chosen:
        raise EmojiRecoError("Batch scoring runs on our inference image: set "
                             "sagemaker.transform.image to its ECR URI "
                             "(containers/inference/Dockerfile).")
    return chosen


def job_request(name: str, model_name: str, source: str, output: str, settings: Settings) -> dict:
    """CreateTransformJob's request: split by line, as many records per call as fit in `max_payload_mb`, one
    output line per input line (AssembleWith=Line), in the input's format."""
    t = settings.sagemaker.transform
    if t.content_type not in CONTENT_TYPES:
        raise EmojiRecoError(f"sagemaker.transform.content_type {t.content_type!r}: use "
                             f"{' or '.join(CONTENT_TYPES)}.")
    request = {
        "TransformJobName": name, "ModelName": model_name, "BatchStrategy": "MultiRecord",
        "MaxPayloadInMB": t.max_payload_mb,
        "ModelClientConfig": {"InvocationsTimeoutInSeconds": t.invocation_timeout_seconds,
                              "InvocationsMaxRetries": t.invocation_retries},
        "Environment": {"EMOJI_RECO_DEADLINE_MS": str(1000 * t.invocation_timeout_seconds)},
        "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": source}},
                           "ContentType": t.content_type, "SplitType": "Line", "CompressionType": "None"},
        "TransformOutput": {"S3OutputPath": output, "Accept": t.content_type, "AssembleWith": "Line"},
        "TransformResources": {"InstanceType": t.instance_type, "InstanceCount": t.instance_count}}
    if t.max_concurrent:
        request["MaxConcurrentTransforms"] = t.max_concurrent
    return request


def start(bundle_dir: str, version: str, source: str, output: str, settings: Settings, client=None) -> str:
    """Upload the bundle, create its model and the transform job; the job's name."""
    if not (storage.is_s3(source) and storage.is_s3(output)):
        raise EmojiRecoError("Batch Transform reads and writes S3: give --input and --output as s3:// URIs "
                             "(for local files, use flows/score_flow.py).")
    client = client or boto3.client("sagemaker")
    name = resource_name(f"emoji-reco-score-{version}", time.strftime("%Y%m%d-%H%M%S"))
    model_data = storage.join(output, "_model", "model.tar.gz")
    with tempfile.TemporaryDirectory(prefix="emoji-reco-transform-") as tmp:
        storage.put_file(str(sources.make_tarball(Path(bundle_dir), Path(tmp) / "model.tar.gz")), model_data)
    client.create_model(ModelName=name, ExecutionRoleArn=sdk.execution_role(settings), PrimaryContainer={
        "Image": image(settings.sagemaker), "ModelDataUrl": model_data,
        "Environment": environment(settings, version)})
    client.create_transform_job(**job_request(name, name, source, output, settings))
    return name


def wait(name: str, settings: Settings, log=print, client=None) -> dict:
    """The job's description once it ends; its status whenever it changes; an error with its reason if it
    failed."""
    t, client = settings.sagemaker.transform, client or boto3.client("sagemaker")
    deadline, last = time.time() + 60 * t.wait_minutes, None
    while True:
        described = client.describe_transform_job(TransformJobName=name)
        if described["TransformJobStatus"] != last:
            last = described["TransformJobStatus"]
            log(f"[{name}] {last}")
        if last in ("Completed", "Failed", "Stopped"):
            break
        if time.time() > deadline:
            raise EmojiRecoError(f"Transform job {name} still {last} after {t.wait_minutes} minutes.")
        time.sleep(t.poll_seconds)
    if last != "Completed":
        raise EmojiRecoError(f"Transform job {name} {last.lower()}: "
                             f"{described.get('FailureReason', 'no reason given')}. "
                             f"Its logs: CloudWatch log group "
                             f"/aws/sagemaker/TransformJobs, streams {name}/*.")
    return described
