"""`emoji-reco aws batch-score` against moto on 127.0.0.1: the model and the transform job it creates, checked
field by field against what Batch Transform needs to split an S3 prefix by line and send our image
mini-batches.

Moto completes transform jobs at once without running a container, so what this proves is the request (and the
model archive it points at); what the image does with such mini-batches is tested in test_containers.py."""
import io
import json
import tarfile

import boto3
import pytest

from emoji_reco import cli, storage
from emoji_reco.aws import batch_transform
from emoji_reco.errors import EmojiRecoError
from helpers.containers import version
from helpers.sagemaker_job import ROLE, settings

pytestmark = pytest.mark.timeout(300)
# as make push-images names it
IMAGE = f"123456789012.dkr.ecr.us-east-1.amazonaws.com/emoji-reco-inference:{version()}"


def _config(tmp_path, runtime="savedmodel", **transform) -> str:
    path = tmp_path / "transform.json"
    path.write_text(json.dumps({"extends": "sagemaker.json", "serve": {"runtime": runtime}, "sagemaker": {
        "role": ROLE, "transform": {"image": IMAGE, "poll_seconds": 0.1, **transform}}}))
    return str(path)


def test_batch_score_creates_a_line_split_multi_record_job_on_our_image(aws, tiny_bundle, tmp_path, capsys):
    _, bucket = aws
    storage.put_bytes(b"text\nhello there\n", f"s3://{bucket}/in/tweets.csv")
    status = cli.main(["aws", "batch-score", "--input", f"s3://{bucket}/in/", "--output",
                       f"s3://{bucket}/out/",
                       "--model", str(tiny_bundle[1]),
                       "--config", _config(tmp_path, "int8", max_payload_mb=2)])
    printed = capsys.readouterr().out
    assert status == 0 and "Completed" in printed and f"s3://{bucket}/out/" in printed
    sm = boto3.client("sagemaker")
    (job,) = sm.list_transform_jobs()["TransformJobSummaries"]
    described = sm.describe_transform_job(TransformJobName=job["TransformJobName"])
    assert described["BatchStrategy"] == "MultiRecord" and described["MaxPayloadInMB"] == 2
    assert (described["TransformInput"]["SplitType"] == "Line" and described["TransformInput"]["ContentType"]
            == "text/csv")
    assert described["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"] == f"s3://{bucket}/in/"
    assert described["TransformOutput"] == {"S3OutputPath": f"s3://{bucket}/out/", "Accept": "text/csv",
                                            "AssembleWith": "Line"}
    # the server waits as long as the job
    assert described["Environment"]["EMOJI_RECO_DEADLINE_MS"] == "600000"
    assert described["TransformResources"] == {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1}
    model = sm.describe_model(ModelName=described["ModelName"])
    container = model["PrimaryContainer"]
    assert model["ExecutionRoleArn"] == ROLE and container == {  # a bundle without a run is version "model"
        "Image": IMAGE, "ModelDataUrl": f"s3://{bucket}/out/_model/model.tar.gz",
        "Environment": {"EMOJI_RECO_VERSION": "model", "EMOJI_RECO_RUNTIME": "int8"}}  # serve.runtime
    with tarfile.open(fileobj=io.BytesIO(storage.read_bytes(container["ModelDataUrl"]))) as tar:
        assert {"saved_model/saved_model.pb", "labels.json", "metadata.json"} <= {n.removeprefix("./")
                                                                                 for n in tar.getnames()}


def test_what_batch_transform_cannot_do_is_refused_in_one_line(aws, tiny_bundle, tmp_path, capsys):
    _, bucket = aws
    config = _config(tmp_path)
    assert cli.main(["aws", "batch-score", "--input", "local.csv", "--output", f"s3://{bucket}/out/",
                     "--model", str(tiny_bundle[1]), "--config", config]) == 2
    assert "use flows/score_flow.py" in capsys.readouterr().err
    assert cli.main(["aws", "batch-score", "--output", f"s3://{bucket}/out/"]) == 2
    assert "batch-score needs --input" in capsys.readouterr().err
    # the TF Serving image has no line server
    with pytest.raises(EmojiRecoError, match="sagemaker.transform.image"):
        batch_transform.image(settings().sagemaker)
    with pytest.raises(EmojiRecoError, match="content_type"):
        batch_transform.job_request("j", "m", "s3://b/in", "s3://b/out",
                                    settings(**{"sagemaker.transform.content_type": "application/json"}))


def test_a_failed_transform_job_says_why_and_where_its_logs_are():
    from botocore.stub import Stubber

    sm = boto3.client("sagemaker", region_name="us-east-1")
    with Stubber(sm) as stub:
        for status in ("InProgress", "Failed"):
            stub.add_response("describe_transform_job", {
                "TransformJobName": "j", "TransformJobArn": "arn:aws:sagemaker:us-east-1:1:transform-job/j",
                "TransformJobStatus": status, "ModelName": "m", "CreationTime": 0,
                "FailureReason": "ClientError: See job logs for more information",
                "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                                   "S3Uri": "s3://b/in"}}},
                "TransformResources": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1}})
        with pytest.raises(EmojiRecoError, match="j failed: ClientError.*/aws/sagemaker/TransformJobs"):
            batch_transform.wait("j", settings(**{"sagemaker.transform.poll_seconds": 0}), client=sm)
