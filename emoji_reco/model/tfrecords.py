"""Texts → token ids → TFRecord files (variable length), and back to bucketed `tf.data` batches."""
import hashlib
import os
import struct
import tempfile
import time

import numpy as np
import tensorflow as tf

from emoji_reco import storage
from emoji_reco.model import tokenization

FEATURES = {
    "input_ids": tf.io.RaggedFeature(tf.int64),
    "attention_mask": tf.io.RaggedFeature(tf.int64),
    "label": tf.io.FixedLenFeature([], tf.int64),
}


def shard_of(frame, shard: int, shards: int):
    """Rows `shard`, `shard + shards`, ... of a frame: the same split of work on every re-run."""
    return frame.iloc[shard::shards]


def serialize(ids: list[int], label: int) -> bytes:
    feature = {
        "input_ids": tf.train.Feature(int64_list=tf.train.Int64List(value=ids)),
        "attention_mask": tf.train.Feature(int64_list=tf.train.Int64List(value=[1] * len(ids))),
        "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def write_records(path: str, tok, texts: list[str], labels: list[int], max_length: int,
                  batch_size: int) -> dict:
    """Tokenize in batches and write one TFRecord file; return its record/token/truncation counts."""
    records = tokens = truncated = 0
    with tf.io.TFRecordWriter(path) as writer:
        for start in range(0, len(texts), batch_size):
            ids = tokenization.encode(tok, texts[start : start + batch_size])
            for row, label in zip(ids, labels[start : start + batch_size]):
                writer.write(serialize(row, int(label)))
                tokens += len(row)
                truncated += len(row) >= max_length
            records += len(ids)
    return {"records": records, "tokens": tokens, "truncated": truncated}


def sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def convert_shard(splits: dict, shard: int, shards: int, tokenizer_dir, max_length: int, batch_size: int,
                  out_prefix: str, cpus: int = 1) -> list[dict]:
    """Write this shard of every split to `out_prefix`; deterministic names, so a re-run rewrites the same
    files. The tokenizer uses `cpus` threads: the task's share of the machine, not all of it."""
    os.environ.setdefault("RAYON_NUM_THREADS", str(cpus))
    tok = tokenization.load(tokenizer_dir, max_length)
    written = []
    with tempfile.TemporaryDirectory(prefix="emoji-reco-tfrecords-") as tmp:
        for split, frame in splits.items():
            part = shard_of(frame, shard, shards)
            name = f"{split}-{shard:05d}-of-{shards:05d}.tfrecord"
            local = os.path.join(tmp, name)
            started = time.perf_counter()
            stats = write_records(local, tok, part.text.tolist(), part.label.tolist(), max_length, batch_size)
            uri = storage.join(out_prefix, name)
            stats.update(split=split, shard=shard, uri=uri, sha256=sha256(local),
                         bytes=os.path.getsize(local))
            storage.put_file(local, uri)
            stats["seconds"] = round(time.perf_counter() - started, 3)
            print(f"shard {shard}/{shards} {split}: {stats['records']} records, {stats['tokens']} tokens "
                  f"→ {uri} ({stats['seconds']} s)", flush=True)
            written.append(stats)
    return written


def _parse(record):
    parsed = tf.io.parse_single_example(record, FEATURES)
    features = {"input_ids": tf.cast(parsed["input_ids"], tf.int32),
                "attention_mask": tf.cast(parsed["attention_mask"], tf.int32)}
    return features, parsed["label"]


def dataset(files: list[str], batch_size: int, boundaries: list[int] | None, shuffle: int = 0, seed: int = 0,
            pad_to: int | None = None, shard: tuple | None = None):
    """Batches of (features, labels), padded to the longest row of each batch.

    With `boundaries`, rows of similar length are batched together (length bucketing), so most
    batches carry little padding; without, batches are padded as they come. `pad_to` pads every
    batch to that fixed length instead (static shapes, for XLA or TPUs). `shard` (count, index) keeps every
    count-th record from the index-th on, of the shuffled order (one worker's share).
    """
    ds = tf.data.TFRecordDataset(files, num_parallel_reads=1 if shard else tf.data.AUTOTUNE)
    if shuffle:
        ds = ds.shuffle(shuffle, seed=seed, reshuffle_each_iteration=True)
    if shard:  # after the shuffle: every worker draws its records from the same order
        ds = ds.shard(*shard)
    ds = ds.map(_parse, num_parallel_calls=tf.data.AUTOTUNE)
    if pad_to:
        shapes = ({"input_ids": [pad_to], "attention_mask": [pad_to]}, [])
        ds = ds.padded_batch(batch_size, padded_shapes=shapes)
    elif boundaries:
        ds = ds.bucket_by_sequence_length(
            lambda features, _label: tf.shape(features["input_ids"])[0],
            bucket_boundaries=list(boundaries),
            bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
        )
    else:
        ds = ds.padded_batch(batch_size)
    return ds.prefetch(tf.data.AUTOTUNE)


def count(path: str) -> int:
    """Records in a TFRecord file, read from its framing (length, CRC, data, CRC) without TensorFlow
    running."""
    records = 0
    with open(path, "rb") as handle:
        while header := handle.read(12):
            (length,) = struct.unpack("<Q", header[:8])
            handle.seek(length + 4, os.SEEK_CUR)
            records += 1
    return records


def read_all(files: list[str]) -> tuple[list[list[int]], np.ndarray]:
    """Every record's token ids and label, in file order."""
    ids, labels = [], []
    for features, label in tf.data.TFRecordDataset(files).map(_parse).ragged_batch(4096):
        ids.extend(features["input_ids"].to_list())
        labels.extend(label.numpy().tolist())
    return ids, np.array(labels, dtype=np.int64)
