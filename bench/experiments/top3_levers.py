"""Top-3 directly (issue 22): a finished run's two halves, mixed as the served model mixes them, with the
mixture weight and a per-emoji bias chosen on the run's own validation split for top-3 (not log-loss), then
scored once on the held-out tweets. Nothing is retrained. Run `bench/accuracy.py` first (the run, and the
held-out split).

    cd bench && python -m experiments.top3_levers EmojiFlow/<id>
"""
import json
import sys
import tempfile

import numpy as np
from common import OUT, headline, held_out


def top3(probs: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean((np.argsort(-probs, axis=1)[:, :3] == labels[:, None]).any(axis=1)))


def biased(probs: np.ndarray, bias: np.ndarray) -> np.ndarray:
    scores = np.log(np.maximum(probs, 1e-12)) + bias
    exp = np.exp(scores - scores.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def fit_bias(probs: np.ndarray, labels: np.ndarray, rounds: int = 3) -> np.ndarray:
    """A per-emoji additive log-probability bias for top-3, by coordinate search on a grid (validation
    only)."""
    bias, grid = np.zeros(probs.shape[1]), np.round(np.arange(-1.0, 1.0001, 0.1), 2)
    for _ in range(rounds):
        for c in range(len(bias)):
            trial = [top3(biased(probs, np.where(np.arange(len(bias)) == c, b, bias)), labels) for b in grid]
            bias[c] = grid[int(np.argmax(trial))]
    return bias


def main(pathspec: str) -> dict:
    from metaflow import Run, namespace

    from emoji_reco import storage
    from emoji_reco.model import bundle, ensemble, evaluation

    namespace(None)
    run = Run(pathspec)
    emojis, validation = run.data.emojis, run["prepare"].task.data.splits["validation"]
    test = held_out(run.data.settings)
    with tempfile.TemporaryDirectory() as tmp:
        predictor = bundle.Predictor(storage.get_dir(run.data.bundle_uri, f"{tmp}/bundle"))
        val, held = predictor.parts(validation.text.tolist()), predictor.parts(test.text.tolist())
    val_labels, labels = validation.label.to_numpy(), test.label.to_numpy()
    served = predictor.metadata["ensemble"]["weight"]
    by_top3 = max(ensemble.GRID, key=lambda w: (top3(ensemble.blend(val["encoder"], val["ngram"], w),
                                                     val_labels),
                                                 -abs(w - served)))
    out = {"run": pathspec, "served_weight (validation log-loss)": served, "top3_weight": float(by_top3)}
    for name, weight in (("served: w by log-loss", served), ("w by validation top-3", by_top3)):
        mixed_val = ensemble.blend(val["encoder"], val["ngram"], weight)
        mixed = ensemble.blend(held["encoder"], held["ngram"], weight)
        bias = fit_bias(mixed_val, val_labels)
        out[name] = headline(evaluation.score(mixed, labels, emojis))
        out[name + " + per-emoji bias for "
                   "top-3"] = {**headline(evaluation.score(biased(mixed, bias), labels, emojis)),
                                                      "bias": dict(zip(emojis, bias.round(2).tolist()))}
    return out


if __name__ == "__main__":
    result = main(sys.argv[1])
    print(json.dumps(result, indent=1, ensure_ascii=False))
    (OUT / "top3_levers.json").write_text(json.dumps(result, indent=1, ensure_ascii=False))
