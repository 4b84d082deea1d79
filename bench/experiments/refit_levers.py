"""The refit lever (issue 22) where it is cheap: a finished run's n-gram half fitted again on train +
validation once its mixture weight is chosen, mixed with the run's encoder at that weight, scored once on the
held-out tweets. The same half refitted on train alone reproduces the served one (a check of the method).
Refitting the encoder too would train it twice. Run `bench/accuracy.py` first (the run, and the held-out
split).

    cd bench && python -m experiments.refit_levers EmojiFlow/<id>     # bench/out/refit_levers.json
"""
import json
import sys
import tempfile
import time

import pandas as pd
from common import OUT, headline, held_out


def main(pathspec: str) -> dict:
    from metaflow import Run, namespace

    from emoji_reco import storage
    from emoji_reco.data.cleaning import clean_text
    from emoji_reco.model import bundle, ensemble, evaluation, ngrams, tokenization

    namespace(None)
    run = Run(pathspec)
    emojis, splits, settings = run.data.emojis, run["prepare"].task.data.splits, run.data.settings
    test = held_out(settings)
    with tempfile.TemporaryDirectory() as tmp:
        predictor = bundle.Predictor(storage.get_dir(run.data.bundle_uri, f"{tmp}/bundle"))
        held = predictor.parts(test.text.tolist())
    weight, labels = predictor.metadata["ensemble"]["weight"], test.label.to_numpy()
    vocab = predictor.tokenizer.get_vocab_size()

    def ids(frame):
        return tokenization.encode(predictor.tokenizer, [clean_text(t) for t in frame.text])

    held_ids = ids(test)
    out = {"run": pathspec, "weight": weight,
           "served": headline(evaluation.score(held["combined"], labels, emojis))}
    for name, frame in (("n-gram refit on train (check)", splits["train"]),
                        ("n-gram refit on train + validation",
                         pd.concat([splits["train"], splits["validation"]]))):
        started = time.perf_counter()
        params = ngrams.fit(ids(frame), frame.label.to_numpy(), len(emojis), vocab,
                            settings["model"]["ngram"]["buckets"],
                            settings["model"]["ngram"]["regularization"])
        x, _ = ngrams.matrix(held_ids, vocab, params["buckets"], params["idf"])
        ngram = ensemble.softmax(x @ params["coef"] + params["intercept"])
        out[name] = {**headline(evaluation.score(ensemble.blend(held["encoder"], ngram, weight), labels,
                                                 emojis)),
                     "ngram_alone": headline(evaluation.score(ngram, labels, emojis)), "rows": len(frame),
                     "fit_s": round(time.perf_counter() - started, 1)}
    return out


if __name__ == "__main__":
    result = main(sys.argv[1])
    print(json.dumps(result, indent=1, ensure_ascii=False))
    (OUT / "refit_levers.json").write_text(json.dumps(result, indent=1, ensure_ascii=False))
