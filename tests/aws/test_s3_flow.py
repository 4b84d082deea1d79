"""EmojiFlow with Metaflow's S3 datastore, against moto in server mode on 127.0.0.1."""
import json
import shutil

import boto3
import pytest
from metaflow import Flow

from helpers.flows import card_json, run_flow, task, tiny_flow_config
from helpers.sagemaker_job import QUICK_SAGEMAKER, queue_answer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def test_a_run_on_the_s3_datastore_keeps_its_files_in_the_bucket_resumes_from_them_and_deploys_to_sagemaker(
         aws, moto_server, tiny_model, tmp_path, monkeypatch):
    client, bucket = aws
    monkeypatch.setenv("METAFLOW_DEFAULT_DATASTORE", "s3")
    monkeypatch.setenv("METAFLOW_DATASTORE_SYSROOT_S3", f"s3://{bucket}/metaflow")
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    (model / "tf_model.h5").rename(tmp_path / "weights.h5")  # train fails: no weights
    config = tiny_flow_config(model, **QUICK_SAGEMAKER,
                              **{"deploy.endpoint": f"ep-{bucket}", "deploy.target": "sagemaker",
                                                          "sagemaker.registry.group": f"flow-{bucket}",
                                                          "platform.datastore": "s3"})
    status, failed, output = run_flow(config)
    assert status == "failed" and "No weights in" in output
    records = task(failed, "join_convert").data.tfrecords
    prefix = f"s3://{bucket}/metaflow/EmojiFlow/{failed.id}/emoji_reco/"
    assert records and all(r["uri"].startswith(prefix + "tfrecords/") for r in records)

    def listing():
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket,
                                                                 Prefix=f"metaflow/EmojiFlow/{failed.id}/")
        return {o["Key"]: o["LastModified"] for page in pages for o in page.get("Contents", [])}

    shards = listing()
    assert {r["uri"][len(f"s3://{bucket}/"):] for r in records} <= set(shards)

    (tmp_path / "weights.h5").rename(model / "tf_model.h5")
    # what the endpoint answers the deploy step's smoke test
    smoke = [[{"emoji": "😂", "probability": 0.5}]] * 3
    queue_answer(moto_server, json.dumps({"version": "x", "predictions": smoke}).encode())
    status, run, output = run_flow(config, resume_from=failed.id)
    assert status == "successful", output[-4000:]
    for convert in run["convert"]:
        assert convert.origin_pathspec.startswith(f"EmojiFlow/{failed.id}/convert/")
    assert task(run, "join_convert").data.tfrecords == records  # the resumed run reads the first run's shards
    assert {key: listing()[key] for key in shards} == shards  # ... and did not rewrite them
    keys = {o["Key"] for o in client.list_objects_v2(Bucket=bucket,
                                                     Prefix=f"metaflow/EmojiFlow/{run.id}/")["Contents"]}
    assert f"metaflow/EmojiFlow/{run.id}/emoji_reco/model/saved_model/saved_model.pb" in keys
    package = task(run, "register").data.model_package
    assert package["status"] == "Approved" and package["version"] == run.id
    deployment = task(run, "deploy").data.deployment
    assert (deployment["deployed"] and deployment["changed"] and deployment["endpoint_config"]
            == f"ep-{bucket}-{run.id}")
    served = boto3.client("sagemaker").describe_endpoint(EndpointName=f"ep-{bucket}")
    assert served["EndpointConfigName"] == f"ep-{bucket}-{run.id}" and served["EndpointStatus"] == "InService"
    summary = card_json(run, "end", "summary")  # its run history holds only runs of this datastore
    assert run.id in summary
    assert not [other.id for other in Flow("EmojiFlow").runs() if other.id not in (run.id, failed.id)
                and other.id in summary]


def test_with_sagemaker_training_the_train_step_runs_a_job_and_evaluates_its_model(
         aws, moto_server, tiny_model, tiny_bundle, tmp_path, monkeypatch):
    import asyncio

    from metaflow import Runner

    from emoji_reco import storage
    from emoji_reco.serving import sources
    from helpers.flows import FLOW

    client, bucket = aws
    monkeypatch.setenv("METAFLOW_DEFAULT_DATASTORE", "s3")
    monkeypatch.setenv("METAFLOW_DATASTORE_SYSROOT_S3", f"s3://{bucket}/metaflow")
    # Another demo seed: other smoke texts than the test above (moto answers a repeated request body from its
    # cache).
    config = tiny_flow_config(tiny_model, **QUICK_SAGEMAKER, **{
        "demo.seed": 11, "train.backend": "sagemaker", "deploy.target": "sagemaker",
        "deploy.endpoint": f"ep-{bucket}",
        "sagemaker.registry.group": f"flow-{bucket}"})
    # Moto completes training jobs without running them: play the job's part by putting a model (the tiny
    # bundle, over the demo emojis) where SageMaker writes it, as soon as the run's id names that place.
    tarball = sources.make_tarball(tiny_bundle[1], tmp_path / "model.tar.gz")

    async def run_with_a_job_output():
        with Runner(FLOW, show_output=False, config_value=[("config", config)]) as runner:
            executing = await runner.async_run()
            run_id = executing.run.id
            storage.put_file(str(tarball), f"s3://{bucket}/metaflow/EmojiFlow/{run_id}/emoji_reco/sagemaker/"
                                           f"emoji-reco-{run_id}-0/output/model.tar.gz")
            queue_answer(moto_server, json.dumps({"version": run_id, "predictions": [
                [{"emoji": "😂", "probability": 0.5}]] * 3}).encode())
            await executing.wait(timeout=800)
            return executing.status, executing.run, executing.stdout + executing.stderr

    status, run, output = asyncio.run(run_with_a_job_output())
    assert status == "successful", output[-4000:]
    job = task(run, "train").data.training["sagemaker"]
    assert job["job_name"] == f"emoji-reco-{run.id}-0" and job["status"] == "Completed"
    assert job["image"].endswith("tensorflow-training:2.16-cpu-py310")
    assert f"[emoji-reco-{run.id}-0] Starting" in output  # the job's status, in the step's log
    assert task(run, "train").data.bundle_uri == f"s3://{bucket}/metaflow/EmojiFlow/{run.id}/emoji_reco/model"
    assert task(run, "evaluate").data.metrics["examples"] > 0  # evaluated the job's model
    assert task(run, "deploy").data.deployment["model_data"].endswith("/sagemaker/model.tar.gz")
