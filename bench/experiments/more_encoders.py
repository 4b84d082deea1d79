"""What more training compute would buy: the held-out tweets scored by one trained bundle's combined model,
and by the encoders of several bundles (trained independently, e.g. on other seeds or splits) averaged with
equal weights, then mixed with the first bundle's n-gram half at its own weight. Run `bench/accuracy.py` first
(it writes the held-out split); no bundle may have trained on those tweets.

    cd bench && python -m experiments.more_encoders BUNDLE_DIR BUNDLE_DIR [...]
"""
import json
import sys

from common import OUT, headline, held_out


def main(folders: list[str]) -> dict:
    import numpy as np

    from emoji_reco.model import bundle, ensemble, evaluation
    from emoji_reco.settings import defaults, with_overrides

    predictors = [bundle.Predictor(f) for f in folders]
    first = predictors[0]
    test = held_out(with_overrides(defaults(), {"data.path": str(OUT / "tweets" / "train")}))
    assert all(p.emojis == first.emojis for p in predictors), "the bundles must share their label map"
    texts = test.text.tolist()
    # format 1: an encoder
    parts = [p.parts(texts) or {"encoder": p.probabilities(texts)} for p in predictors]
    weight = first.metadata["ensemble"]["weight"]
    encoders = np.mean([p["encoder"] for p in parts], axis=0)
    candidates = {"first bundle, combined": parts[0]["combined"],
                  f"{len(folders)} encoders averaged": encoders,
                  f"{len(folders)} encoders averaged + n-gram half (w={weight})":
                      ensemble.blend(encoders, parts[0]["ngram"], weight)}
    for i, p in enumerate(parts):
        candidates[f"encoder {i + 1} alone"] = p["encoder"]
    labels = test.label.to_numpy()
    results = {name: headline(evaluation.score(probs, labels,
                                               first.emojis)) for name, probs in candidates.items()}
    results["bundles"] = folders
    return results


if __name__ == "__main__":
    out = main(sys.argv[1:])
    print(json.dumps(out, indent=1, ensure_ascii=False))
    (OUT / "more_encoders.json").write_text(json.dumps(out, indent=1, ensure_ascii=False))
