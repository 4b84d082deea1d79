"""Accuracy on the shared real tweets: EmojiFlow with the default base model, and a TF-IDF + logistic regression
baseline on the same split. Train on part 1 + part 2 but its last `--holdout` rows; test on those.

    python bench/accuracy.py [--holdout 10000] [--skip-flow]

The flow runs with config/shared-tweets.json into its own endpoint (`shared-tweets`), so the demo champion
is left alone.
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from common import OUT, SHARED_TWEETS

ROOT = Path(__file__).resolve().parent.parent


def write_split(holdout: int) -> None:
    parts = [pd.read_csv(SHARED_TWEETS / f"tweets_part{i}.csv.gz", dtype=str, keep_default_na=False) for i in (1, 2)]
    train, test = pd.concat([parts[0], parts[1].iloc[:-holdout]]), parts[1].iloc[-holdout:]
    for name, frame in (("train", train), ("test", test)):
        folder = OUT / "tweets" / name
        folder.mkdir(parents=True, exist_ok=True)
        frame.to_csv(folder / "tweets.csv", index=False)
        (folder / "labels.json").write_text((SHARED_TWEETS / "labels.json").read_text(encoding="utf-8"), encoding="utf-8")
    print(f"train {len(train)} rows, test {len(test)} rows under {OUT / 'tweets'}", flush=True)


def baseline(config: dict) -> dict:
    """TF-IDF (word 1-2-grams) + logistic regression on exactly the flow's prepared splits."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from emoji_reco.data import dataset
    from emoji_reco.model import evaluation

    prepared = dataset.prepare(config["data"], config["demo"])
    train = pd.concat([prepared.splits["train"], prepared.splits["validation"]])
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    model = LogisticRegression(max_iter=2000, C=2.0).fit(vectorizer.fit_transform(train.text), train.label)
    test = prepared.splits["test"]
    probs = model.predict_proba(vectorizer.transform(test.text))
    scores = evaluation.score(probs, test.label.to_numpy(), prepared.emojis)
    return {k: round(scores[k], 4) for k in ("top1", "top3", "macro_f1", "examples")}


def run_flow(config_path: Path) -> dict:
    from metaflow import Flow, namespace

    started = time.perf_counter()
    subprocess.run([sys.executable, str(ROOT / "flows" / "emoji_flow.py"), "--config", "config", str(config_path),
                    "run"], check=True, cwd=ROOT)
    seconds = time.perf_counter() - started
    namespace(None)
    run = Flow("EmojiFlow").latest_successful_run
    metrics, training = run["evaluate"].task.data.metrics, run["train"].task.data.training
    return {"run": run.pathspec, "wall_s": round(seconds), "train_s": training["seconds"],
            "train_examples_per_s": training["examples_per_second"],
            **{k: round(metrics[k], 4) for k in ("top1", "top3", "macro_f1", "examples")}}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--holdout", type=int, default=10000)
    parser.add_argument("--skip-flow", action="store_true", help="only the baseline")
    args = parser.parse_args()
    config_path = ROOT / "config" / "shared-tweets.json"
    config = json.loads(config_path.read_text())
    os.chdir(ROOT)
    write_split(args.holdout)
    results = {"config": str(config_path.relative_to(ROOT)), "holdout": args.holdout, "tfidf_logreg": baseline(config)}
    print(json.dumps(results, indent=1), flush=True)
    if not args.skip_flow:
        results["emoji_flow"] = run_flow(config_path)
    print(json.dumps(results, indent=1))
    (OUT / "accuracy.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
