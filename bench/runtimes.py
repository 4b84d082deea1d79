"""Which int8 runtime to serve (issue 40): the served model (a bundle's `serving_default` signature, both
halves) with dynamic-range int8 weights in LiteRT (`ai-edge-litert`, converted by TensorFlow's
`TFLiteConverter`) and in ONNX Runtime (converted by `tf2onnx`, quantized by
`onnxruntime.quantization.quantize_dynamic`), against the float32 SavedModel the bundle serves today. For
each: texts/s in batches of 1, 16 and 64 (texts of like length together, the same batches for each), p50/p99
of one text, load time (to the first answer), file size, and top-1/top-3 on the held-out shared tweets. Every
runtime gets 2 threads. Run `bench/accuracy.py` first (it trains the bundle and writes the held-out tweets).

    python bench/runtimes.py BUNDLE_DIR [--single 400]      # bench/out/runtimes.json
"""
import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from common import OUT, headline, held_out

THREADS = 2


def savedmodel(folder: Path):
    import tensorflow as tf

    serve = tf.saved_model.load(str(folder)).signatures["serving_default"]
    return lambda ids, mask: serve(input_ids=tf.constant(ids),
                                   attention_mask=tf.constant(mask))["logits"].numpy()


def litert_file(saved_model: Path, out: Path) -> Path:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model), signature_keys=["serving_default"])
    converter.optimizations = [tf.lite.Optimize.DEFAULT]  # dynamic-range int8 weights
    out.write_bytes(converter.convert())
    return out


def litert(path: Path):
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=str(path), num_threads=THREADS).get_signature_runner("serving_default")
    return lambda ids, mask: runner(input_ids=ids, attention_mask=mask)["logits"]


# tf2onnx has no handler for TensorFlow's Erfc (the exact GELU is 0.5·x·erfc(−x/√2)): ONNX has Erf, so 1 −
# Erf.
TF2ONNX_WITH_ERFC = """
import numpy as np
from tf2onnx import convert, utils
from tf2onnx.handler import tf_op

@tf_op("Erfc")
class Erfc:
    @classmethod
    def version_1(cls, ctx, node, **kwargs):
        node.type = "Erf"
        one = ctx.make_const(utils.make_name("one"), np.array(1, dtype=np.float32))
        ctx.insert_new_node_on_output("Sub", node.output[0], inputs=[one.output[0], node.output[0]])

convert.main()
"""


def onnx_file(saved_model: Path, out: Path) -> Path:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    float32 = out.with_suffix(".float32.onnx")
    subprocess.run([sys.executable, "-c", TF2ONNX_WITH_ERFC, "--saved-model", str(saved_model),
                    "--signature_def",
                    "serving_default", "--opset", "17", "--output", str(float32)], check=True,
                   capture_output=True)
    quantize_dynamic(str(float32), str(out), weight_type=QuantType.QInt8)
    return out


def onnx_runtime(path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = THREADS, 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    logits = next(o.name for o in session.get_outputs() if "logits" in o.name and "prob" not in o.name)
    feed = {n: ("input_ids" if "input_ids" in n else "attention_mask") for n in names}

    def call(ids, mask):
        arrays = {"input_ids": ids, "attention_mask": mask}
        return session.run([logits], {n: arrays[k] for n, k in feed.items()})[0]

    return call


def size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*")
                                                          if p.is_file())


def measure(make, path: Path, ids: list, labels, emojis: list, single: int) -> dict:
    """Load time to the first answer, throughput at each batch size, one-text latency, held-out scores."""
    from emoji_reco.model import ensemble, evaluation, tokenization

    started = time.perf_counter()
    call = make(path)
    call(*tokenization.pad([ids[0]]))
    out = {"load_s": round(time.perf_counter() - started, 2), "megabytes": round(size(path) / 1e6, 1)}
    order = np.argsort([len(r) for r in ids], kind="stable")
    for batch in (16, 64):
        batches = [tokenization.pad([ids[i] for i in order[s:s
                                                           + batch]]) for s in range(0, len(order), batch)]
        started = time.perf_counter()
        logits = np.concatenate([call(*b) for b in batches])
        out[f"texts_per_s_batch_{batch}"] = round(len(ids) / (time.perf_counter() - started), 1)
        if batch == 64:
            scores = evaluation.score(ensemble.softmax(logits), labels[order], emojis)
            out.update(headline(scores))
    latencies = []
    for row in ids[:single]:  # texts as they come, one a call
        padded = tokenization.pad([row])
        started = time.perf_counter()
        call(*padded)
        latencies.append(time.perf_counter() - started)
    out["texts_per_s_batch_1"] = round(len(latencies) / sum(latencies), 1)
    out["one_text_ms"] = {"p50": round(1000 * float(np.percentile(latencies, 50)), 2),
                          "p99": round(1000 * float(np.percentile(latencies, 99)), 2)}
    return out


def main(folder: str, single: int) -> dict:
    from emoji_reco.data.cleaning import clean_text
    from emoji_reco.model import bundle, tokenization
    from emoji_reco.model.runtimes import limit_tf_threads
    from emoji_reco.settings import defaults, with_overrides

    limit_tf_threads(THREADS)  # before TensorFlow runs anything
    folder = Path(folder)
    predictor = bundle.Predictor(folder)
    test = held_out(with_overrides(defaults(), {"data.path": str(OUT / "tweets" / "train")}))
    ids = tokenization.encode(predictor.tokenizer, [clean_text(t) for t in test.text])
    labels = test.label.to_numpy()
    work = OUT / "runtimes"
    work.mkdir(exist_ok=True)
    saved_model = folder / bundle.SAVED_MODEL
    started = time.perf_counter()
    forms = {"float32 SavedModel (TensorFlow)": (savedmodel, saved_model)}
    forms["int8 LiteRT"] = (litert, litert_file(saved_model, work / "model.int8.tflite"))
    converted = {"litert_s": round(time.perf_counter() - started, 1)}
    started = time.perf_counter()
    forms["int8 ONNX Runtime"] = (onnx_runtime, onnx_file(saved_model, work / "model.int8.onnx"))
    converted["onnx_s"] = round(time.perf_counter() - started, 1)
    out = {"bundle": str(folder), "texts": len(ids), "threads": THREADS, "conversion": converted}
    for name, (make, path) in forms.items():
        out[name] = measure(make, path, ids, labels, predictor.emojis, single)
        print(name, json.dumps(out[name]), flush=True)
    base = out["float32 SavedModel (TensorFlow)"]
    for name in ("int8 LiteRT", "int8 ONNX Runtime"):
        out[name]["vs_float32"] = {
            **{f"texts_per_s_batch_{b}": round(out[name][f"texts_per_s_batch_{b}"]
                                               / base[f"texts_per_s_batch_{b}"], 2) for b in (1, 16, 64)},
            "top3_points": round(100 * (out[name]["top3"] - base["top3"]), 2),
            "top1_points": round(100 * (out[name]["top1"] - base["top1"]), 2)}
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("bundle")
    parser.add_argument("--single", type=int, default=400, help="texts sent one at a time for the latency")
    args = parser.parse_args()
    result = main(args.bundle, args.single)
    print(json.dumps(result, indent=1, ensure_ascii=False))
    (OUT / "runtimes.json").write_text(json.dumps(result, indent=1, ensure_ascii=False))
