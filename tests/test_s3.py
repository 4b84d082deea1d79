"""Data and base models from s3:// (metaflow.S3) against moto in server mode on 127.0.0.1."""
import json

import pandas as pd
import pytest

from emoji_reco.errors import DataError
from test_data import labeled_rows, prepare

pytestmark = pytest.mark.timeout(180)  # a missing endpoint makes S3 clients hang, not fail


def test_labeled_csv_and_labels_json_from_s3(aws):
    client, bucket = aws
    rows = [(t, {"😂": 0, "😭": 1, "🔥": 2}[e]) for t, e in labeled_rows(10)]
    body = pd.DataFrame(rows, columns=["TWEET", "LABEL"]).to_csv(index=False)
    client.put_object(Bucket=bucket, Key="in/tweets.csv", Body=body.encode())
    client.put_object(Bucket=bucket, Key="in/labels.json", Body=json.dumps({"0": "😂", "1": "😭", "2": "🔥"}).encode())
    prepared = prepare(f"s3://{bucket}/in/tweets.csv")
    assert prepared.emojis == ["😂", "😭", "🔥"] and prepared.report["rows_kept"] == 30
    assert prepared.report["source"] == f"s3://{bucket}/in/tweets.csv"
    # A prefix reads every data file under it (labels.json is not data).
    client.put_object(Bucket=bucket, Key="in/more.csv", Body=body.replace("text number", "more text").encode())
    assert prepare(f"s3://{bucket}/in/").report["rows_kept"] == 60


def test_a_missing_s3_object_is_a_clear_error(aws):
    _, bucket = aws
    with pytest.raises(DataError, match=f"Data not found at s3://{bucket}/nothing.csv"):
        prepare(f"s3://{bucket}/nothing.csv")


def test_a_base_model_on_s3_is_fetched_once_and_loads(aws, tiny_model, tmp_path, monkeypatch):
    from emoji_reco import base_model

    client, bucket = aws
    for path in tiny_model.iterdir():
        client.upload_file(str(path), bucket, f"models/tiny/{path.name}")
    monkeypatch.setattr(base_model, "CACHE", tmp_path)
    local = base_model.resolve(f"s3://{bucket}/models/tiny")
    assert sorted(p.name for p in local.iterdir()) == sorted(p.name for p in tiny_model.iterdir())
    assert base_model.load_classifier(local, ["a", "b"]).config.num_labels == 2
    with pytest.raises(base_model.ModelError, match="No base model at"):
        base_model.resolve(f"s3://{bucket}/models/missing")
