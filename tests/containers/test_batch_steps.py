"""`--with batch` for real: EmojiFlow with its heavy steps on AWS Batch as config/aws.json places them,
against moto in server mode, whose Batch backend runs each job in our training image through the engine's
Docker API. Metaflow's own Batch client submits, polls and reads the logs; the datastore is moto's S3; the run
is read back with Metaflow's Client."""
import tempfile
from pathlib import Path

import boto3
import numpy as np
import pytest

from emoji_reco.model import bundle, evaluation
from helpers import containers
from helpers.aws_stack import metaflow_aws_stack
from helpers.flows import flow_config, run_flow, task
from helpers.network import moto

pytestmark = [pytest.mark.slow, pytest.mark.aws, pytest.mark.timeout(1800)]
ON_BATCH = ("convert", "train", "evaluate")


def test_the_heavy_steps_run_as_batch_jobs_in_our_image(train_image, tmp_path, monkeypatch):
    with containers.docker_api(tmp_path) as docker, \
            moto({"DOCKER_HOST": docker, "MOTO_DOCKER_NETWORK_MODE": "host"}) as url:
        aws = {"AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_DEFAULT_REGION": "us-east-1"}
        for key, value in {**aws, "AWS_ENDPOINT_URL_BATCH": url, "METAFLOW_S3_ENDPOINT_URL": url}.items():
            monkeypatch.setenv(key, value)
        for key, value in metaflow_aws_stack("emoji-batch").items():
            monkeypatch.setenv(key, value)
        # What the Batch job would get from its job role and from AWS Batch itself (moto sets only the job
        # id): given to the steps placed on Batch, never baked into the image.
        job_environment = {**aws, "USERNAME": "tester", "AWS_BATCH_JOB_ATTEMPT": "1",
                           "AWS_BATCH_CE_NAME": "ce",
                           "AWS_BATCH_JQ_NAME": "queue", "AWS_EXECUTION_ENV": "AWS_ECS_EC2"}
        config = flow_config("aws.json", **{
            "model.base": "bundled", "model.max_length": 32, "demo.rows": 300, "train.epochs": 1,
            "train.batch_size": 16, "train.bucket_boundaries": [8, 16], "gate.min_score": 0.0,
            "convert.shards": 2,
            "deploy.target": "local", "deploy.endpoint": "batch-test", "platform.retries": 0,
            "platform.schedule": None, "platform.batch_image": f"localhost/{train_image}",
            "platform.remote_environment": job_environment})
        status, run, output = run_flow(config)
        assert status == "successful", output[-6000:]
        for name in ON_BATCH:  # each ran as a Batch job
            assert all(t.metadata_dict.get("aws-batch-job-id") for t in run[name]), name
        assert not task(run, "prepare").metadata_dict.get("aws-batch-job-id")
        assert "No module named" not in output  # the image had all the job's bootstrap needs (it has no pip)
        # The bundle the Batch job wrote in moto's S3 scores the test split on this host as the evaluate job
        # did.
        evaluated = task(run, "evaluate").data
        with tempfile.TemporaryDirectory() as local:
            bucket, key = evaluated.bundle_uri.removeprefix("s3://").split("/", 1)
            s3 = boto3.client("s3")
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key):
                for item in page["Contents"]:
                    target = Path(local) / item["Key"][len(key):].lstrip("/")
                    target.parent.mkdir(parents=True, exist_ok=True)
                    s3.download_file(bucket, item["Key"], str(target))
            test = task(run, "prepare").data.splits["test"]
            here = evaluation.score(bundle.Predictor(local).probabilities(test.text.tolist()),
                                    test.label.to_numpy(),
                                    task(run, "prepare").data.emojis)
        for metric in evaluation.HEADLINE:
            assert np.isclose(here[metric], evaluated.metrics[metric], atol=1e-9), metric
