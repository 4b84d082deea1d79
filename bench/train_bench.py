"""Training throughput on real tweets: length bucketing against fixed length-64 padding, same model, same
data, same run. Throughput is read from the second epoch (the first also traces the graphs).

    python bench/train_bench.py [--rows N]
"""
import argparse
import json
import os
import tempfile

import pandas as pd

import emoji_reco  # noqa: F401
from common import OUT, shared_tweets


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=2000, help="training tweets per mode")
    args = parser.parse_args()
    from emoji_reco.model import base_model, tfrecords, tokenization, training

    texts, labels = shared_tweets()
    rows = args.rows + 256
    frame = pd.DataFrame({"text": texts, "label": labels}).sample(n=rows, random_state=0)
    splits = {"train": frame.iloc[: args.rows], "validation": frame.iloc[args.rows :]}
    base = base_model.resolve("bundled")
    emojis = [str(i) for i in range(10)]
    common = {"batch_size": 32, "epochs": 2, "learning_rate": 5e-5, "warmup_fraction": 0.1, "weight_decay": 0.01,
              "seed": 0}
    modes = {"bucketed": {"bucket_boundaries": [8, 16, 24, 32, 48]},
             "fixed_64": {"bucket_boundaries": [], "pad_to_length": 64}}
    results = {"train_rows": args.rows, "batch_size": 32}
    with tempfile.TemporaryDirectory() as tmp:
        tok = tokenization.save_fast_tokenizer(base, os.path.join(tmp, "tok"))
        written = tfrecords.convert_shard(splits, 0, 1, tok, 64, 2048, os.path.join(tmp, "rec"))
        files = {w["split"]: [w["uri"]] for w in written}
        tokens = sum(w["tokens"] for w in written if w["split"] == "train")
        results["mean_tokens_per_tweet"] = round(tokens / args.rows, 1)
        for name, mode in modes.items():
            _, history, _ = training.fine_tune(files, args.rows, emojis, base, {**common, **mode})
            results[name] = {"epoch1_examples_per_s": history[0]["examples_per_second"],
                             "epoch2_examples_per_s": history[1]["examples_per_second"]}
    results["bucketed_vs_fixed_64"] = round(results["bucketed"]["epoch2_examples_per_s"]
                                            / results["fixed_64"]["epoch2_examples_per_s"], 2)
    print(json.dumps(results, indent=1))
    OUT.mkdir(exist_ok=True)
    (OUT / "train.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
