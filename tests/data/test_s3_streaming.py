"""Input files on S3 (moto in server mode) are read as they stream, in ranged GETs, never copied whole: the
rows, their numbers and the malformed count are those of the same file read locally, in every format."""
import gzip
import hashlib

import boto3
import pandas as pd
import pytest

from emoji_reco import s3_files
from emoji_reco.data import readers


def _files(tmp_path) -> dict:
    """A CSV (with a malformed row and a quoted line break), its gzip, JSON Lines and Parquet: name →
    bytes."""
    rows = [f"tweet {i}, with a comma and {hashlib.sha256(str(i).encode()).hexdigest()}" for i in range(3000)]
    rows[7] = "a line\nbreak inside"
    lines = ["text,label"] + [f'"{t}",{i % 10}' for i, t in enumerate(rows)]
    lines.insert(100, "one,too,many")
    csv_bytes = ("\n".join(lines) + "\n").encode()
    parquet = tmp_path / "t.parquet"
    pd.DataFrame({"text": rows, "label": [str(i % 10) for i in range(len(rows))]}).to_parquet(parquet)
    jsonl = pd.DataFrame({"text": rows}).to_json(orient="records", lines=True, force_ascii=False).encode()
    return {"t.csv": csv_bytes, "t.csv.gz": gzip.compress(csv_bytes), "t.jsonl": jsonl,
            "t.parquet": parquet.read_bytes()}


def _text(value) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


@pytest.mark.parametrize("name", ["t.csv", "t.csv.gz", "t.jsonl", "t.parquet"])
def test_an_s3_file_reads_as_the_local_one_in_ranged_gets_never_whole(aws, tmp_path, monkeypatch, name):
    s3, bucket = aws
    data = _files(tmp_path)[name]
    (tmp_path / name).write_bytes(data)
    s3.put_object(Bucket=bucket, Key=f"in/{name}", Body=data)
    monkeypatch.setattr(s3_files, "CHUNK", 16 << 10)  # 16 KiB ranges: several for these small files
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # a session of this test's own, for its hook
    boto3.setup_default_session()
    ranges = []
    boto3.DEFAULT_SESSION.events.register(
        "before-send.s3.GetObject", lambda request, **_: ranges.append(_text(request.headers.get("Range"))))
    local = list(readers.read_chunks(str(tmp_path / name), rows=700))
    remote = list(readers.read_chunks(f"s3://{bucket}/in/{name}", rows=700))
    assert [bad for *_, bad in remote] == [bad for *_, bad in local] and len(remote) == len(local) > 1
    for (_, theirs, _), (_, ours, _) in zip(local, remote):
        pd.testing.assert_frame_equal(ours, theirs)
    sizes = [int(b) - int(a) + 1 for a, b in (r.removeprefix("bytes=").split("-") for r in ranges if r)]
    assert len(ranges) == len(sizes) > 1  # every GET a range, several of them
    # never whole, never read over and over
    assert max(sizes) <= 16 << 10 < len(data) and sum(sizes) < 2 * len(data)
    # whole blocks (Parquet reads its footer first), not 8 KiB reads
    assert len(ranges) <= len(data) // (16 << 10) + 6


def test_a_prefix_reads_its_data_files_in_name_order_and_skips_the_label_map(aws, tmp_path):
    s3, bucket = aws
    for key, body in {"in/b.csv": b"text\nsecond file\n", "in/a.csv": b"text\nfirst file\n",
                      "in/labels.json": b'{"0": "x"}', "in/notes.txt": b"not data"}.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    read = [(origin, frame.text.tolist()) for origin, frame, _ in readers.read_chunks(f"s3://{bucket}/in/")]
    assert read == [(f"s3://{bucket}/in/a.csv", ["first file"]), (f"s3://{bucket}/in/b.csv", ["second file"])]


def test_an_s3_path_with_no_data_says_so_in_one_line(aws):
    from emoji_reco.errors import DataError

    s3, bucket = aws
    s3.put_object(Bucket=bucket, Key="in/notes.txt", Body=b"not data")
    for missing in (f"s3://{bucket}/nothing.csv", f"s3://{bucket}/nothing/", f"s3://{bucket}/in/"):
        with pytest.raises(DataError, match=f"^Data not found at {missing}: no such object or "
                                            f"prefix with data files"):
            list(readers.read_chunks(missing))
