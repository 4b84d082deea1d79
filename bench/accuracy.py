"""Accuracy on the shared real tweets with the defaults a user gets: `emoji_flow.py run --data <train>` and
nothing else, scored on tweets it never saw, next to TF-IDF + logistic regression trained on the rows the flow
trained on. Train on part 1 + part 2 but its last `--holdout` rows; those are the held-out test.

    python bench/accuracy.py [--holdout 10000] [--run EmojiFlow/<id>] [--config JSON] [--out NAME]
    [--flow-args ...]

The flow runs with EMOJI_RECO_HOME=bench/out/home, so it has its own endpoint and no champion, and the user's
demo endpoint is left alone. The combined model is scored whole and part by part.
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
from common import OUT, SHARED_TWEETS, headline, held_out

ROOT = Path(__file__).resolve().parent.parent


def write_split(holdout: int) -> None:
    parts = [pd.read_csv(SHARED_TWEETS / f"tweets_part{i}.csv.gz", dtype=str,
                         keep_default_na=False) for i in (1, 2)]
    train, test = pd.concat([parts[0], parts[1].iloc[:-holdout]]), parts[1].iloc[-holdout:]
    for name, frame in (("train", train), ("test", test)):
        folder = OUT / "tweets" / name
        folder.mkdir(parents=True, exist_ok=True)
        frame.to_csv(folder / "tweets.csv", index=False)
        (folder / "labels.json").write_text((SHARED_TWEETS / "labels.json").read_text(encoding="utf-8"),
                                            encoding="utf-8")
    print(f"train {len(train)} rows, test {len(test)} rows under {OUT / 'tweets'}", flush=True)


def baseline(train, test, emojis) -> dict:
    """TF-IDF (word 1-2-grams) + logistic regression on the rows the flow trained on (its train +
    validation)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from emoji_reco.model import evaluation

    started = time.perf_counter()
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    model = LogisticRegression(max_iter=2000, C=2.0).fit(vectorizer.fit_transform(train.text), train.label)
    probs = model.predict_proba(vectorizer.transform(test.text))
    return {**headline(evaluation.score(probs, test.label.to_numpy(), emojis)),
            "train_s": round(time.perf_counter() - started, 1)}


def run_flow(flow_args: list, config: str | None) -> tuple[str, int]:
    """The run's pathspec and wall time."""
    started = time.perf_counter()
    configured = ["--config-value", "config", config] if config else []
    subprocess.run([sys.executable, str(ROOT / "flows" / "emoji_flow.py"), *configured, "run", "--data",
                    str(OUT / "tweets" / "train"), *flow_args], check=True, cwd=ROOT)
    from metaflow import Flow, namespace

    namespace(None)
    return Flow("EmojiFlow").latest_successful_run.pathspec, round(time.perf_counter() - started)


def score_run(pathspec: str) -> dict:
    """The run's model, whole and part by part, on the held-out tweets; the baseline beside it."""
    import tempfile

    from metaflow import Run, namespace

    from emoji_reco import storage
    from emoji_reco.model import bundle, evaluation

    namespace(None)
    run = Run(pathspec)
    settings, emojis, splits = run.data.settings, run.data.emojis, run["prepare"].task.data.splits
    test = held_out(settings)
    with tempfile.TemporaryDirectory() as tmp:
        predictor = bundle.Predictor(storage.get_dir(run.data.bundle_uri, f"{tmp}/bundle"))
        started = time.perf_counter()
        parts = (predictor.parts(test.text.tolist())
                 or {"combined": predictor.probabilities(test.text.tolist())})
        seconds = time.perf_counter() - started
    training = run["train"].task.data.training
    chosen = {k: settings["train"].get(k) for k in ("epochs", "learning_rate", "batch_size",
                                                    "label_smoothing")}
    return {"run": pathspec, "settings": {**chosen, "pooling": settings["model"].get("pooling")},
            "rows": {k: len(v) for k, v in splits.items()} | {"held_out": len(test)},
            "train_s": training["seconds"],
            "train_examples_per_s": training["examples_per_second"], "ensemble": training.get("ensemble"),
            "flow_test_split": headline(run.data.metrics),
            "held_out": {name: headline(evaluation.score(p, test.label.to_numpy(),
                                                         emojis)) for name, p in parts.items()},
            "held_out_scoring_s": round(seconds, 1),
            "tfidf_logreg": baseline(pd.concat([splits["train"], splits["validation"]]), test, emojis)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--holdout", type=int, default=10000)
    parser.add_argument("--run", help="score this finished run instead of starting one")
    parser.add_argument("--config", help="the run's config as JSON, e.g. "
                                         "'{\"extends\": \"local.json\", ...}'")
    parser.add_argument("--out", default="accuracy", help="results in bench/out/<out>.json")
    parser.add_argument("--flow-args", nargs=argparse.REMAINDER, default=[],
                        help="more `run` arguments (e.g. --epochs 3); the defaults otherwise")
    args = parser.parse_args()
    os.chdir(ROOT)
    os.environ.setdefault("EMOJI_RECO_HOME", str(OUT / "home"))
    write_split(args.holdout)
    pathspec, wall = (args.run, None) if args.run else run_flow(args.flow_args, args.config)
    results = {**score_run(pathspec), "flow_wall_s": wall}
    print(json.dumps(results, indent=1), flush=True)
    (OUT / f"{args.out}.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
