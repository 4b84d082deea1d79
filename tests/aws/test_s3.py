"""Data and base models from s3:// (metaflow.S3) against moto in server mode on 127.0.0.1."""
import json

import pandas as pd
import pytest

from emoji_reco.errors import DataError
from helpers.datasets import labeled_rows, prepare

pytestmark = pytest.mark.timeout(180)  # a missing endpoint makes S3 clients hang, not fail


def test_labeled_csv_and_labels_json_from_s3(aws):
    client, bucket = aws
    rows = [(t, {"😂": 0, "😭": 1, "🔥": 2}[e]) for t, e in labeled_rows(10)]
    body = pd.DataFrame(rows, columns=["TWEET", "LABEL"]).to_csv(index=False)
    client.put_object(Bucket=bucket, Key="in/tweets.csv", Body=body.encode())
    client.put_object(Bucket=bucket, Key="in/labels.json",
                      Body=json.dumps({"0": "😂", "1": "😭", "2": "🔥"}).encode())
    prepared = prepare(f"s3://{bucket}/in/tweets.csv")
    assert prepared.emojis == ["😂", "😭", "🔥"] and prepared.report["rows_kept"] == 30
    assert prepared.report["source"] == f"s3://{bucket}/in/tweets.csv"
    # A prefix reads every data file under it (labels.json is not data).
    client.put_object(Bucket=bucket, Key="in/more.csv",
                      Body=body.replace("text number", "more text").encode())
    assert prepare(f"s3://{bucket}/in/").report["rows_kept"] == 60


def test_a_missing_s3_object_is_a_clear_error(aws):
    _, bucket = aws
    with pytest.raises(DataError, match=f"Data not found at s3://{bucket}/nothing.csv"):
        prepare(f"s3://{bucket}/nothing.csv")


def test_a_base_model_on_s3_is_fetched_once_and_loads(aws, tiny_model, tmp_path, monkeypatch):
    from emoji_reco.model import base_model

    client, bucket = aws
    for path in tiny_model.iterdir():
        client.upload_file(str(path), bucket, f"models/tiny/{path.name}")
    monkeypatch.setattr(base_model, "CACHE", tmp_path)
    local = base_model.resolve(f"s3://{bucket}/models/tiny")
    assert sorted(p.name for p in local.iterdir()) == sorted([base_model.COMPLETE,
                                                              *(p.name for p in tiny_model.iterdir())])
    assert base_model.load_classifier(local, ["a", "b"]).config.num_labels == 2
    with pytest.raises(base_model.ModelError, match="No base model at"):
        base_model.resolve(f"s3://{bucket}/models/missing")


@pytest.mark.parametrize("key", ["bundle/../escaped.txt", "bundle//etc/escaped.txt", "bundle/a/./b.txt"])
def test_object_names_that_would_leave_the_target_folder_are_refused(aws, tmp_path, key):
    from emoji_reco import storage

    client, bucket = aws
    client.put_object(Bucket=bucket, Key="bundle/ok.txt", Body=b"fine")
    client.put_object(Bucket=bucket, Key=key, Body=b"evil")
    with pytest.raises(DataError, match="would leave the target folder"):
        storage.get_dir(f"s3://{bucket}/bundle", str(tmp_path / "out" / "model"))
    assert not list(tmp_path.rglob("escaped.txt")) and not list(tmp_path.rglob("b.txt"))
    assert list((tmp_path / "out").iterdir()) == []  # nothing half-downloaded is left either


def test_an_interrupted_base_model_fetch_is_fetched_again_and_concurrent_fetches_are_safe(
        aws, tiny_model, tmp_path, monkeypatch):
    import shutil
    from concurrent.futures import ThreadPoolExecutor

    from emoji_reco import storage
    from emoji_reco.model import base_model

    client, bucket = aws
    for path in tiny_model.iterdir():
        client.upload_file(str(path), bucket, f"models/tiny/{path.name}")
    monkeypatch.setattr(base_model, "CACHE", tmp_path)
    copies = []

    def copy_then_fail(src, dst):  # the connection drops after the first file
        copies.append(dst)
        if len(copies) > 1:
            raise ConnectionResetError("network down")
        return shutil.copyfile(src, dst)

    with monkeypatch.context() as patched, pytest.raises(ConnectionResetError):
        patched.setattr(storage.shutil, "copyfile", copy_then_fail)
        base_model.resolve(f"s3://{bucket}/models/tiny")
    assert list((tmp_path / "models").iterdir()) == []  # no cache entry that looks complete, no leftovers
    with ThreadPoolExecutor(3) as pool:
        folders = set(pool.map(lambda _: base_model.resolve(f"s3://{bucket}/models/tiny"), range(3)))
    (folder,) = folders
    assert [p.name for p in (tmp_path / "models").iterdir()] == [folder.name]
    assert base_model.load_classifier(folder, ["a", "b"]).config.num_labels == 2
