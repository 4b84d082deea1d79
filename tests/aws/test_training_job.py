"""SageMaker training jobs against moto on 127.0.0.1. Moto completes a job at once without running it (and
writes no model): the job's own work is done here by running our training entry point as a process."""
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from emoji_reco import storage
from emoji_reco.aws import training_job
from emoji_reco.data import demo
from emoji_reco.errors import EmojiRecoError
from emoji_reco.model import bundle
from emoji_reco.serving import sources
from helpers.sagemaker_job import ROLE, opt_ml, run_train, settings

pytestmark = pytest.mark.timeout(600)


def shards(run_root: str) -> list[dict]:
    """The convert step's TFRecord shards of a run, as the train step hands them on (two shards per split)."""
    return [{"split": split, "uri": f"{run_root}/tfrecords/{split}-{shard:05d}-of-00002.tfrecord",
             "records": 3}
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
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"]
                for c in described["InputDataConfig"]}
    # Each channel is the prefix its split's shards share (and no test shard).
    assert channels == {"train": f"{run_root}/tfrecords/train-0000",
                        "validation": f"{run_root}/tfrecords/validation-0000"}
    assert described["OutputDataConfig"]["S3OutputPath"] == f"{run_root}/sagemaker"
    assert described["ResourceConfig"]["InstanceType"] == config.sagemaker.training.instance_type
    assert (described["StoppingCondition"]["MaxRuntimeInSeconds"] == 60
            * config.sagemaker.training.max_run_minutes)
    hyper = described["HyperParameters"]
    sent = json.loads(json.loads(hyper["settings"]))  # script mode JSON-encodes every value once more
    assert (sent["train"] == config.train.model_dump() and json.loads(json.loads(hyper["emojis"]))
            == demo.EMOJIS)
    assert json.loads(json.loads(hyper["provenance"])) == {"run": "EmojiFlow/7", "data": "tweets.csv"}
    # The local base model went to the datastore, where the job can read it.
    assert sent["model"]["base"].startswith(f"s3://{bucket}/metaflow/emoji_reco/base_models/")
    assert storage.read_text(sent["model"]["base"]
                             + "/config.json") == (tiny_model / "config.json").read_text()

    bucket_name, key = json.loads(hyper["sagemaker_submit_directory"])[len("s3://"):].split("/", 1)
    source = client.get_object(Bucket=bucket_name, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(source)) as tar:
        names = set(tar.getnames())
        requirements = tar.extractfile("requirements.txt").read().decode().split()
    assert {"train.py", "emoji_reco/aws/job_entry.py", "emoji_reco/model/training.py"} <= names
    assert "tf-keras~=2.16.0" in requirements and not any(r.startswith("tensorflow") for r in requirements)


def test_the_gpu_config_trains_on_two_gpu_instances_in_the_matching_aws_gpu_image(aws, tiny_model):
    from emoji_reco.settings import parse, typed, with_overrides

    _, bucket = aws
    run_root = f"s3://{bucket}/metaflow/EmojiFlow/17/emoji_reco"
    config = typed(with_overrides(parse(json.dumps({"extends": "gpu.json"})), {
        "sagemaker.role": ROLE, "sagemaker.training.poll_seconds": 0.1, "model.base": str(tiny_model)}))
    training_job.train(shards(run_root), demo.EMOJIS, config, run_root, f"s3://{bucket}/metaflow",
                       "emoji-reco-17-0",
                       {"run": "EmojiFlow/17", "data": "tweets.csv"}, print)
    described = boto3.client("sagemaker").describe_training_job(TrainingJobName="emoji-reco-17-0")
    image = described["AlgorithmSpecification"]["TrainingImage"]
    assert image.endswith("/tensorflow-training:2.16-gpu-py310")
    assert described["ResourceConfig"]["InstanceType"] == "ml.g5.12xlarge"
    assert described["ResourceConfig"]["InstanceCount"] == 2  # one training across both (resourceconfig.json)
    sent = json.loads(json.loads(described["HyperParameters"]["settings"]))
    assert sent["train"]["batch_size"] == 64 and sent["train"]["distribution"]["port"] == 23456


def test_our_container_trains_on_what_the_job_passes_and_the_step_unpacks_its_model(
        aws, tiny_model, tmp_path):
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
    # the step's provenance reached the job's bundle
    assert bundle.read_metadata(local)["data"] == "tweets.csv"
    assert bundle.Predictor(local).logits(["it works"]).shape == (1, len(demo.EMOJIS))


def test_a_failed_training_job_stops_the_step_with_its_reason():
    sagemaker = boto3.client("sagemaker", region_name="us-east-1")
    with Stubber(sagemaker) as stub:
        stub.add_response("describe_training_job", {
            "TrainingJobName": "j",
            "TrainingJobArn": "arn:aws:sagemaker:us-east-1:123456789012:training-job/j",
            "ModelArtifacts": {"S3ModelArtifacts": ""}, "TrainingJobStatus": "Failed",
            "SecondaryStatus": "Failed",
            "FailureReason": "AlgorithmError: out of memory",
            "AlgorithmSpecification": {"TrainingInputMode": "File"},
            "RoleArn": ROLE, "OutputDataConfig": {"S3OutputPath": "s3://b/o"}, "ResourceConfig": {
                "InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 30},
            "StoppingCondition": {}, "CreationTime": "2026-11-22T00:00:00Z"})
        with pytest.raises(EmojiRecoError, match="training job j failed: AlgorithmError: out of memory"):
            training_job.wait("j", print, 0, client=sagemaker)


def test_the_local_default_never_imports_the_sagemaker_sdk():
    modules = ["emoji_reco." + m for m in ("data.dataset", "model.training", "model.evaluation",
                                           "serving.local_endpoint",
                                             "serving.server", "registry", "backends", "backends.local",
                                             "flowkit.cards", "cli",
                                             "flowkit.base", "flowkit.placement",
                                             "aws.event_rules", "aws.job_entry")]
    done = subprocess.run([sys.executable, "-c", f"import sys, importlib; [importlib.import_module(m) "
                                                 f"for m in {modules}]; "
                           "print('sagemaker' in sys.modules)"], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "False", done.stderr[-2000:]
