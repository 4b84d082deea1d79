"""Text → TFRecord conversion of the shared tweets: the classic per-example method against ours, and the
flow's 2 shards on 2 cores against 1 shard, measured side by side in one run.

    python bench/convert_bench.py [--rows N]
"""
import argparse
import json
import multiprocessing
import os
import tempfile
import time

import pandas as pd
from common import OUT, shared_tweets, timed

import emoji_reco  # noqa: F401


def classic(texts, labels, vocab_dir, path):
    """The workshop's way: slow Python WordPiece `encode_plus` padded to 64, one Example at a time (each text
    tokenized once)."""
    import tensorflow as tf
    from transformers import BertTokenizer

    tok = BertTokenizer.from_pretrained(vocab_dir)
    with tf.io.TFRecordWriter(path) as writer:
        for text, label in zip(texts, labels):
            enc = tok.encode_plus(text, max_length=64, padding="max_length", truncation=True)
            feature = {
                "input_ids": tf.train.Feature(int64_list=tf.train.Int64List(value=enc["input_ids"])),
                "attention_mask": tf.train.Feature(
                    int64_list=tf.train.Int64List(value=enc["attention_mask"])),
                "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
            }
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())


def ours(args, barrier, queue):
    """One convert task of the flow (`tfrecords.convert_shard`), timed from a start shared with its siblings,
    after imports, so the wall time is conversion, not interpreter start-up."""
    splits, shard, shards, tok_dir, out = args
    from emoji_reco.model import tfrecords

    barrier.wait()
    start = time.time()
    written = tfrecords.convert_shard(splits, shard, shards, tok_dir, 64, 2048, out)
    queue.put((start, time.time(), written[0]["records"]))


def convert_in_parallel(ctx, shards, splits, tok_dir, out) -> tuple[float, int]:
    """Wall seconds for `shards` convert tasks in parallel processes, and the records they wrote."""
    barrier, queue = ctx.Barrier(shards), ctx.Queue()
    procs = [ctx.Process(target=ours, args=((splits, i, shards, tok_dir, out), barrier,
                                            queue)) for i in range(shards)]
    for p in procs:
        p.start()
    done = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    return max(d[1] for d in done) - min(d[0] for d in done), sum(d[2] for d in done)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=0, help="use the first N tweets (0: all)")
    args = parser.parse_args()
    from emoji_reco.model import base_model, tokenization

    texts, labels = shared_tweets()
    if args.rows:
        texts, labels = texts[: args.rows], labels[: args.rows]
    splits = {"train": pd.DataFrame({"text": texts, "label": labels})}
    base = base_model.resolve("bundled")
    results = {"tweets": len(texts)}
    ctx = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        tok_dir = tokenization.save_fast_tokenizer(base, os.path.join(tmp, "tok"))
        with timed(results, "classic_s"):
            classic(texts, labels, str(base), os.path.join(tmp, "classic.tfrecord"))
        for shards, key in ((1, "ours_1_shard_s"), (2, "ours_2_shards_s")):
            results[key], records = convert_in_parallel(ctx, shards, splits, tok_dir, os.path.join(tmp, key))
            assert records == len(texts)
            print(f"{key}: {results[key]:.2f} s", flush=True)
    results["classic_per_s"] = round(len(texts) / results["classic_s"])
    results["ours_1_shard_per_s"] = round(len(texts) / results["ours_1_shard_s"])
    results["ours_vs_classic"] = round(results["classic_s"] / results["ours_1_shard_s"], 2)
    results["two_shards_vs_one"] = round(results["ours_1_shard_s"] / results["ours_2_shards_s"], 2)
    print(json.dumps(results, indent=1))
    OUT.mkdir(exist_ok=True)
    (OUT / "convert.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
