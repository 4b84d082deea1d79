"""Training throughput on real tweets, every mode in the same run on the same data, each in a fresh process:
today's recipe (length bucketing, float32, batch 32) against fixed length-64 padding, XLA auto-clustering,
bfloat16 mixed precision, batch 64, and a frozen embedding layer (no gradient or optimizer update for its 12M
weights). Throughput is read from the second epoch (the first also traces and compiles). Next to it, the
machine's matrix throughput (a 4096² matmul in float32 and bfloat16), and the share of it training reaches,
counting the useful work only: 6 × non-embedding weights × real tokens per example, plus attention.

    python bench/train_bench.py [--rows N] [--modes bucketed,fixed_64,xla,bf16,batch64,frozen_embeddings]
"""
import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import OUT, shared_tweets

MODES = {"bucketed": {}, "fixed_64": {"train.bucket_boundaries": [], "train.pad_to_length": 64}, "xla": {},
         "bf16": {},
         "batch64": {"train.batch_size": 64}, "frozen_embeddings": {}}


def matmul_gflops(dtype: str, n: int = 4096, seconds: float = 5.0) -> float:
    import tensorflow as tf

    a = tf.random.normal((n, n), dtype=tf.float32)
    a = tf.cast(a, dtype)
    step = tf.function(lambda x: tf.matmul(x, x))
    step(a).numpy()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step(a).numpy()
        count += 1
    return 2 * n ** 3 * count / (time.perf_counter() - start) / 1e9


def run_mode(mode: str, rows: int, folder: str) -> dict:
    """One mode, in this process: fine-tune on the TFRecords in `folder`; epoch-2 examples/s."""
    import tensorflow as tf

    from emoji_reco.model import base_model, training
    from emoji_reco.settings import defaults, typed, with_overrides

    if mode == "xla":
        tf.config.optimizer.set_jit(True)
    if mode == "bf16":
        tf.keras.mixed_precision.set_global_policy("mixed_bfloat16")
    if mode == "frozen_embeddings":
        load = base_model.load_classifier

        def frozen(*args, **kwargs):
            model = load(*args, **kwargs)
            model.bert.embeddings.trainable = False
            return model

        training.base_model.load_classifier = frozen
    files = {s: [str(p) for p in sorted(Path(folder).glob(f"{s}-*"))] for s in ("train", "validation")}
    settings = typed(with_overrides(defaults(), {"train.batch_size": 32, "train.learning_rate": 5e-5,
                                                 "train.seed": 0, "train.label_smoothing": 0.0,
                                                 **MODES[mode]}))
    model, history, _ = training.fine_tune(files, rows, [str(i) for i in range(10)],
                                           base_model.resolve("bundled"),
                                           settings)
    config = model.config
    return {"epoch1_examples_per_s": history[0]["examples_per_second"],
            "epoch2_examples_per_s": history[1]["examples_per_second"],
            "val_accuracy_epoch2": history[1].get("val_accuracy"),
            "layers": config.num_hidden_layers, "hidden": config.hidden_size,
            "intermediate": config.intermediate_size}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=2000, help="training tweets")
    parser.add_argument("--modes", default=",".join(MODES))
    # mode,rows,folder: run one mode and print its JSON
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    import emoji_reco  # noqa: F401  (Keras 2 before TensorFlow)

    if args.child:
        mode, rows, folder = args.child.split(",", 2)
        print(json.dumps(run_mode(mode, int(rows), folder)))
        return
    import pandas as pd

    from emoji_reco.model import base_model, tfrecords, tokenization

    texts, labels = shared_tweets()
    frame = pd.DataFrame({"text": texts, "label": labels}).sample(n=args.rows + 256, random_state=0)
    splits = {"train": frame.iloc[: args.rows], "validation": frame.iloc[args.rows:]}
    results = {"rows": args.rows, "batch_size": 32,
               "matmul_gflops": {d: round(matmul_gflops(d), 1) for d in ("float32", "bfloat16")}}
    print(json.dumps(results), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        tok = tokenization.save_fast_tokenizer(base_model.resolve("bundled"), f"{tmp}/tok")
        written = tfrecords.convert_shard(splits, 0, 1, tok, 64, 2048, f"{tmp}/rec")
        tokens = sum(w["tokens"] for w in written if w["split"] == "train") / args.rows
        results["mean_tokens_per_tweet"] = round(tokens, 1)
        for mode in args.modes.split(","):
            done = subprocess.run([sys.executable, __file__, "--child", f"{mode},{args.rows},{tmp}/rec"],
                                  capture_output=True, text=True)
            if done.returncode:
                results[mode] = {"error": done.stderr.strip().splitlines()[-1]}
            else:
                results[mode] = json.loads(done.stdout.strip().splitlines()[-1])
            print(mode, json.dumps(results[mode]), flush=True)
    base = results["bucketed"]["epoch2_examples_per_s"]
    shape = results["bucketed"]
    # Training ≈ 3 × forward; forward ≈ 2 × non-embedding weights × tokens + attention (2 × 2 × T² × H per
    # layer).
    weights = shape["layers"] * (4 * shape["hidden"] ** 2 + 2 * shape["hidden"] * shape["intermediate"])
    flops = 3 * (2 * weights * tokens + shape["layers"] * 4 * tokens ** 2 * shape["hidden"])
    results["gflop_per_training_example"] = round(flops / 1e9, 3)
    for mode in args.modes.split(","):
        if "epoch2_examples_per_s" in results[mode]:
            rate = results[mode]["epoch2_examples_per_s"]
            peak = results["matmul_gflops"]["bfloat16" if mode == "bf16" else "float32"]
            results[mode].update(vs_bucketed=round(rate / base, 2),
                                 useful_gflops=round(rate * flops / 1e9, 1),
                                 share_of_matmul_peak=round(rate * flops / 1e9 / peak, 2))
    print(json.dumps(results, indent=1))
    OUT.mkdir(exist_ok=True)
    (OUT / "train.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
