"""Scale-out on this machine, side by side in one run, on the shared real tweets and the bundled MiniLM:

1. Training: one process (batch 32) against two workers on 127.0.0.1 (MultiWorkerMirroredStrategy, 16 per
   replica: the same global batch and steps), examples/s of the second epoch (the first also traces). Both
   workers share the same 2 cores, so no speed-up is possible here: the figure is the price of going
   distributed.
2. Communication per step: two workers all-reducing tensors of every trainable weight's shape (what one step
   of synchronous training exchanges), timed alone.
3. Scoring 20,000 tweets: `emoji-reco predict --input` against ScoreFlow with 2 shards, with the bundle
   trained in 1.

    python bench/scale_bench.py [--train-rows 1536] [--score-rows 20000]
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import OUT, SHARED_TWEETS, shared_tweets

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _ports() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cluster(n: int, port: int, index: int) -> str:
    return json.dumps({"cluster": {"worker": [f"127.0.0.1:{port + i}" for i in range(n)]},
                       "task": {"type": "worker", "index": index}})


def _spawn(job: dict, workers: int) -> list[dict]:
    """Run `job` in `workers` fresh processes (a cluster when more than one); each one's JSON result."""
    folder = Path(job["out"])
    port = _ports()
    procs = []
    for i in range(workers):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        if workers > 1:
            env["TF_CONFIG"] = _cluster(workers, port, i)
        (folder / "job.json").write_text(json.dumps(job))
        procs.append(subprocess.Popen([sys.executable, __file__, "--worker", str(folder / "job.json"),
                                       str(i)], env=env))
    for p in procs:
        if p.wait(3600):
            raise SystemExit(f"a worker of {job['kind']} failed ({p.returncode})")
    return [json.loads((folder / f"{job['kind']}-{i}.json").read_text()) for i in range(workers)]


def worker(job_file: str, index: str) -> None:
    """One process of a job: train a bundle, or all-reduce a step's worth of gradients."""
    import emoji_reco  # noqa: F401  (Keras 2 before TensorFlow)

    job = json.loads(Path(job_file).read_text())
    out = Path(job["out"]) / f"{job['kind']}-{index}.json"
    if job["kind"] == "allreduce":
        out.write_text(json.dumps(allreduce(job)))
        return
    from emoji_reco.model import training
    from emoji_reco.settings import typed

    result = training.train_bundle(job["records"], job["emojis"], typed(job["settings"]), job["bundle"], {})
    out.write_text(json.dumps({k: result[k] for k in ("history", "seconds", "distribution")}))


def allreduce(job: dict) -> dict:
    """Seconds per all-reduce of every trainable weight's shape across the workers (after 2 warm-up
    rounds)."""
    import tensorflow as tf

    from emoji_reco.model import base_model

    strategy = tf.distribute.MultiWorkerMirroredStrategy()  # before TensorFlow runs anything
    shapes = [tuple(w.shape) for w in _trainable(base_model.load_classifier(base_model.resolve("bundled"),
                                                                            job["emojis"]))]
    with strategy.scope():
        grads = [tf.Variable(tf.ones(s)) for s in shapes]

    @tf.function
    def step():
        def reduce():
            ctx = tf.distribute.get_replica_context()
            return ctx.all_reduce(tf.distribute.ReduceOp.SUM, [g.read_value() for g in grads])
        return strategy.run(reduce)

    for _ in range(2):
        step()
    rounds, start = 10, time.perf_counter()
    for _ in range(rounds):
        tf.nest.map_structure(lambda t: t.numpy(), strategy.experimental_local_results(step()))
    seconds = (time.perf_counter() - start) / rounds
    return {"seconds_per_allreduce": round(seconds, 3),
            "floats": int(sum(int(tf.reduce_prod(s)) for s in shapes))}


def _trainable(model):
    model(model.dummy_inputs)
    return model.trainable_weights


def prepare_records(texts, labels, emojis, rows: int, folder: Path) -> list[dict]:
    """`rows` training and rows/6 validation tweets, as two TFRecord files per split (a whole file per
    worker)."""
    import pandas as pd

    from emoji_reco.model import base_model, tfrecords, tokenization

    frame = pd.DataFrame({"text": texts, "label": labels}).sample(rows + rows // 6, random_state=5)
    splits = {"train": frame.iloc[:rows].reset_index(drop=True),
              "validation": frame.iloc[rows:].reset_index(drop=True)}
    tok = tokenization.save_fast_tokenizer(base_model.resolve("bundled"), folder / "tok")
    return [r for shard in (0, 1) for r in tfrecords.convert_shard(splits, shard, 2, tok, 64, 256,
                                                                   str(folder / "tfr"))]


def training_side_by_side(records, emojis, folder: Path) -> dict:
    from emoji_reco.settings import defaults, with_overrides

    results = {}
    for name, workers, batch in (("one_process", 1, 32), ("two_workers", 2, 16)):
        settings = with_overrides(defaults(), {"train.epochs": 2, "train.batch_size": batch,
                                               "train.distribution.timeout_seconds": 120})
        out = folder / name
        out.mkdir()
        job = {"kind": "train", "records": records, "emojis": emojis, "settings": settings,
               "bundle": str(folder / f"bundle-{name}"), "out": str(out)}
        started = time.perf_counter()
        done = _spawn(job, workers)
        epoch2 = done[0]["history"][-1]
        results[name] = {"workers": workers, "batch_per_replica": batch, "global_batch": 32,
                         "epoch2_seconds": epoch2["seconds"],
                         "epoch2_examples_per_second": epoch2["examples_per_second"],
                         "loss": [round(h["loss"], 4) for h in done[0]["history"]],
                         "wall_seconds": round(time.perf_counter() - started, 1)}
        print(name, results[name], flush=True)
    steps = -(-sum(r["records"] for r in records if r["split"] == "train") // 32)
    one, two = results["one_process"], results["two_workers"]
    results["two_vs_one_examples_per_second"] = round(two["epoch2_examples_per_second"]
                                                      / one["epoch2_examples_per_second"], 3)
    results["steps_per_epoch"] = steps
    results["extra_seconds_per_step"] = round((two["epoch2_seconds"] - one["epoch2_seconds"]) / steps, 3)
    out = folder / "allreduce"
    out.mkdir()
    reduce = _spawn({"kind": "allreduce", "emojis": emojis, "out": str(out)}, 2)[0]
    results["allreduce"] = {**reduce, "share_of_a_two_worker_step": round(
        reduce["seconds_per_allreduce"] / (two["epoch2_seconds"] / steps), 3)}
    print("allreduce", results["allreduce"], flush=True)
    return results


def scoring_side_by_side(texts, bundle: str, rows: int, folder: Path) -> dict:
    """`predict --input` and ScoreFlow (2 shards) on the same `rows` tweets, with the same bundle: wall
    seconds."""
    import pandas as pd

    source = folder / "score-in.csv"
    pd.DataFrame({"text": texts[:rows]}).to_csv(source, index=False)
    config = folder / "score.json"
    config.write_text(json.dumps({"extends": "local.json", "score": {"shard_rows": -(-rows // 2)}}))
    env = {**os.environ, "METAFLOW_USER": os.environ.get("METAFLOW_USER", "emoji-reco"),
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    commands = {
        "predict_input": [str(BIN / "emoji-reco"), "predict", "--model", bundle, "--input", str(source),
                          "--output", str(folder / "predicted.csv")],
        "score_flow_2_shards": [sys.executable, str(ROOT / "flows" / "score_flow.py"), "--config", "config",
                                str(config), "run", "--input", str(source), "--output",
                                str(folder / "scored"),
                                "--model", bundle]}
    results = {}
    for name, command in commands.items():
        started = time.perf_counter()
        subprocess.run(command, cwd=folder, env=env, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        seconds = time.perf_counter() - started
        results[name] = {"seconds": round(seconds, 1), "rows_per_second": round(rows / seconds, 1)}
        print(name, results[name], flush=True)
    predicted = pd.read_csv(folder / "predicted.csv", keep_default_na=False, dtype=str)
    scored = pd.concat([pd.read_csv(p, keep_default_na=False, dtype=str)
                        for p in sorted((folder / "scored").glob("part-*.csv"))], ignore_index=True)
    results["same_rows"] = bool(predicted.equals(scored))
    results["score_flow_vs_predict_seconds"] = round(results["score_flow_2_shards"]["seconds"]
                                                     / results["predict_input"]["seconds"], 3)
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--train-rows", type=int, default=1536)
    parser.add_argument("--score-rows", type=int, default=20000)
    args = parser.parse_args()
    texts, labels = shared_tweets()
    emojis = json.loads((SHARED_TWEETS / "labels.json").read_text())
    emojis = [emojis[k] for k in sorted(emojis, key=int)]
    with tempfile.TemporaryDirectory(prefix="scale-bench-") as tmp:
        folder = Path(tmp)
        records = prepare_records(texts, labels, emojis, args.train_rows, folder)
        results = {"train_rows": args.train_rows, "cores": os.cpu_count(),
                   "training": training_side_by_side(records, emojis, folder),
                   "scoring": scoring_side_by_side(texts, str(folder / "bundle-one_process"), args.score_rows,
                                                   folder)}
    OUT.mkdir(exist_ok=True)
    (OUT / "scale.json").write_text(json.dumps(results, indent=1, ensure_ascii=False))
    print(json.dumps(results, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[3])
    else:
        main()
