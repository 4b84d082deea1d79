"""What the n-gram half costs at serving time: the bare model call (clean, tokenize, run the bundle's
signature) of a combined bundle against an encoder-only bundle of the same architecture, on the same real
tweets, in one run, the two alternating so that both see the same machine.

    python bench/combined_cost.py ENCODER_ONLY_BUNDLE COMBINED_BUNDLE [--rounds 5]
"""
import argparse
import json
import os
import time

from common import OUT, shared_tweets

import emoji_reco  # noqa: F401

BATCHES = (1, 16, 64)


def rate(predictor, texts: list[str], batch: int) -> float:
    """Texts per second, scoring `texts` in calls of `batch` (mixed lengths, so 16 and 64 run packed)."""
    predictor.batch_size = batch
    started = time.perf_counter()
    for i in range(0, len(texts), batch):
        predictor.logits(texts[i : i + batch])
    return len(texts) / (time.perf_counter() - started)


def main():
    from emoji_reco.model import bundle

    parser = argparse.ArgumentParser()
    parser.add_argument("encoder_only")
    parser.add_argument("combined")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "2")
    predictors = {"encoder only": bundle.Predictor(args.encoder_only),
                  "combined": bundle.Predictor(args.combined)}
    assert ("ensemble" in predictors["combined"].metadata
            and not bundle.Predictor(args.encoder_only).parts(["x"]))
    texts = shared_tweets()[0][:640]
    for p in predictors.values():
        p.warm_up()
    runs = {name: {b: [] for b in BATCHES} for name in predictors}
    for _ in range(args.rounds):
        for batch in BATCHES:
            for name, predictor in predictors.items():
                runs[name][batch].append(rate(predictor, texts[: 128 if batch == 1 else 640], batch))
    results = {name: {str(b): round(max(r), 1) for b, r in per.items()} for name, per in runs.items()}
    results["combined / encoder only"] = {str(b): round(results["combined"][str(b)]
                                                           / results["encoder only"][str(b)], 3)
                                          for b in BATCHES}
    results["bundles"] = vars(args)
    print(json.dumps(results, indent=1))
    (OUT / "combined_cost.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
