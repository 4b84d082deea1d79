"""Reading tweets from s3:// (metaflow.S3) against moto in server mode on 127.0.0.1."""
import json

import pandas as pd
import pytest

from emoji_reco.errors import DataError
from test_data import SETTINGS, labeled_rows, prepare

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
