"""EmojiFlow with Metaflow's S3 datastore, against moto in server mode on 127.0.0.1."""
import pytest
from metaflow import Flow

from conftest import card_json, run_flow, task, tiny_flow_config

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def test_a_run_on_the_s3_datastore_keeps_its_files_in_the_bucket(aws, tiny_model, tmp_path, monkeypatch):
    client, bucket = aws
    monkeypatch.setenv("METAFLOW_DEFAULT_DATASTORE", "s3")
    monkeypatch.setenv("METAFLOW_DATASTORE_SYSROOT_S3", f"s3://{bucket}/metaflow")
    config = tiny_flow_config(tmp_path / "flow.json", tiny_model, deploy__endpoint="s3-test")
    status, run, output = run_flow(config)
    assert status == "successful", output[-4000:]
    records = task(run, "join_convert").data.tfrecords
    prefix = f"s3://{bucket}/metaflow/EmojiFlow/{run.id}/emoji_reco/"
    assert records and all(r["uri"].startswith(prefix + "tfrecords/") for r in records)
    listing = client.list_objects_v2(Bucket=bucket, Prefix=f"metaflow/EmojiFlow/{run.id}/emoji_reco/")
    keys = {o["Key"] for o in listing["Contents"]}
    assert {r["uri"][len(f"s3://{bucket}/"):] for r in records} <= keys
    assert f"metaflow/EmojiFlow/{run.id}/emoji_reco/model/saved_model/saved_model.pb" in keys
    assert task(run, "deploy").data.deployment["deployed"]
    summary = card_json(run, "end", "summary")  # its run history holds only runs of this datastore
    assert run.id in summary
    assert not [other.id for other in Flow("EmojiFlow").runs() if other.id != run.id and other.id in summary]
