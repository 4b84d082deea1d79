"""Int8 and float16 weights at serving time (issue 22): the served model (a bundle's `serving_default`
signature, both halves) converted by TensorFlow Lite's post-training quantization, dynamic-range int8 weights
and float16 weights, against the float32 SavedModel it came from and the same graph in TF Lite at float32:
size, texts per second over the held-out tweets in padded batches of 64 by length (the same batches for each),
and held-out accuracy. The bundle is first exported again, same weights, by today's code, whose graph TF Lite
converts with its built-in ops alone (the pip TensorFlow's interpreter has no Flex delegate). Run
`bench/accuracy.py` first.

    python bench/quantized.py BUNDLE_DIR      # bench/out/quantized.json
"""
import json
import sys
import time
from pathlib import Path

import numpy as np
from common import OUT, headline, held_out


def _reexported(folder: Path, out: Path) -> Path:
    """`folder`'s bundle written again by `bundle.export` with the weights it holds."""
    import tensorflow as tf

    from emoji_reco.model import base_model, bundle, ngrams

    metadata, emojis = bundle.read_metadata(folder), bundle.read_labels(folder)
    model = base_model.load_classifier(base_model.resolve(metadata["base_model"]), emojis,
                                       metadata["pooling"])
    model(input_ids=tf.ones([1, 4], tf.int32), attention_mask=tf.ones([1, 4], tf.int32))
    restored = tf.saved_model.load(str(folder / bundle.SAVED_MODEL))
    by_name = {v.name: v for v in restored.encoder.variables}
    for variable in model.variables:
        variable.assign(by_name[variable.name])
    idf = restored.ngram.idf.numpy()
    buckets = metadata["ensemble"]["buckets"]
    head = ngrams.head({"idf": idf, "coef": restored.ngram.kernel.numpy(),
                        "intercept": restored.ngram.bias.numpy(),
                        "vocab": len(idf) - buckets, "buckets": buckets})
    return bundle.export(model, folder / bundle.TOKENIZER, emojis, metadata, out, ngram=head,
                         weight=metadata["ensemble"]["weight"])


def _converted(saved_model: str, kind: str) -> bytes:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model, signature_keys=["serving_default"])
    if kind != "float32":  # float32: the TF Lite runtime alone, to tell it from the quantization
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if kind == "float16":
        converter.target_spec.supported_types = [tf.float16]
    return converter.convert()


def _run(call, batches: list) -> tuple[np.ndarray, float]:
    call(*batches[0])  # the first call builds the graph or allocates tensors
    started = time.perf_counter()
    logits = [call(ids, mask) for ids, mask in batches]
    return np.concatenate(logits), time.perf_counter() - started


def main(folder: str) -> dict:
    import tensorflow as tf

    from emoji_reco.data.cleaning import clean_text
    from emoji_reco.model import bundle, ensemble, evaluation, tokenization
    from emoji_reco.settings import defaults, with_overrides

    folder = Path(folder)
    predictor = bundle.Predictor(folder)
    test = held_out(with_overrides(defaults(), {"data.path": str(OUT / "tweets" / "train")}))
    ids = tokenization.encode(predictor.tokenizer, [clean_text(t) for t in test.text])
    order = np.argsort([len(r) for r in ids], kind="stable")
    batches = [tokenization.pad([ids[i] for i in order[s : s + 64]]) for s in range(0, len(order), 64)]
    labels = test.label.to_numpy()[order]
    served = tf.saved_model.load(str(folder / bundle.SAVED_MODEL)).signatures["serving_default"]
    saved_model = str(_reexported(folder, OUT / "requantized") / bundle.SAVED_MODEL)
    serve = tf.saved_model.load(saved_model).signatures["serving_default"]
    probe = dict(zip(("input_ids", "attention_mask"), (tf.constant(a) for a in batches[len(batches) // 2])))
    gap = np.abs(serve(**probe)["logits"] - served(**probe)["logits"]).max()
    assert gap < 1e-4, f"the exported-again bundle scores differently (largest logit gap {gap})"
    variants = {"float32 SavedModel": (lambda i, m: serve(input_ids=tf.constant(i),
                                                          attention_mask=tf.constant(m))
                                       ["logits"].numpy(),
                                       sum(p.stat().st_size for p in Path(saved_model).rglob("*")
                                                              if p.is_file()))}
    for kind in ("float32", "int8", "float16"):
        started = time.perf_counter()
        model = _converted(saved_model, kind)
        print(f"{kind}: converted in {time.perf_counter() - started:.1f} s, {len(model) / 1e6:.1f} MB",
              flush=True)
        runner = tf.lite.Interpreter(model_content=model,
                                     num_threads=2).get_signature_runner("serving_default")
        variants[f"{kind} weights (TF "
                 f"Lite)"] = (lambda i, m, r=runner: r(input_ids=i, attention_mask=m)["logits"],
                                                 len(model))
    out = {"bundle": str(folder), "texts": len(ids), "batch": 64}
    for name, (call, size) in variants.items():
        logits, seconds = _run(call, batches)
        out[name] = {**headline(evaluation.score(ensemble.softmax(logits), labels, predictor.emojis)),
                     "texts_per_second": round(len(ids) / seconds, 1), "megabytes": round(size / 1e6, 1)}
        print(name, json.dumps(out[name]), flush=True)
    return out


if __name__ == "__main__":
    result = main(sys.argv[1])
    print(json.dumps(result, indent=1, ensure_ascii=False))
    (OUT / "quantized.json").write_text(json.dumps(result, indent=1, ensure_ascii=False))
