"""The server with each runtime (issue 40), in one run side by side, on loopback: `emoji-reco serve --runtime
savedmodel` and `--runtime int8` on the same bundle, at 16 concurrent clients (requests/s, p50, p99) and one
client (p50/p99 of one text), one real tweet per request (wrk, as `serve_bench.py`); top-1/top-3 of each form
on the held-out tweets through the server's own Predictor; and what a million predictions cost on an instance
of this machine's size (2 vCPUs: ml.c5.large) at an on-demand hourly price. Beside them, the ceiling: the same
server under the same load with a model that costs nothing, and the server's CPU per request in each run.

    python bench/int8_serving.py BUNDLE [--seconds 30] [--price-per-hour 0.102]

BUNDLE: a bundle folder; if it holds no int8 form (one trained before issue 40), a copy gets one, written as
training writes it (bench/out/int8_bundle). Run `bench/accuracy.py` first for the held-out tweets.
"""
import argparse
import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

from common import OUT, headline, held_out
from serve_bench import Server, load, setup

RUNTIMES = ("savedmodel", "int8")
# The ceiling of this machine for any model: the same server and load with a model that costs nothing (every
# Predictor.logits answers zeros at once), patched in by a sitecustomize on the server's PYTHONPATH.
ZERO_MODEL = """import numpy as np
from emoji_reco.model import bundle
bundle.Predictor.logits = lambda self, texts: np.zeros((len(texts), len(self.emojis)), np.float32)
"""


@contextmanager
def zero_cost_model():
    folder = OUT / "zero_model"
    folder.mkdir(exist_ok=True)
    (folder / "sitecustomize.py").write_text(ZERO_MODEL)
    os.environ["PYTHONPATH"] = str(folder)
    try:
        yield
    finally:
        del os.environ["PYTHONPATH"]


def server_load(server: Server, bodies: Path, clients: int, seconds: int) -> dict:
    """`load`, and the CPU the server process took per request meanwhile."""
    def cpu() -> float:
        fields = Path(f"/proc/{server.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    before = cpu()
    result = load(server.url, bodies, clients, seconds)
    result["server_cpu_ms_per_request"] = round(1000 * (cpu() - before) / result["requests"], 3)
    return result


def with_int8_form(folder: Path) -> Path:
    """`folder` if it holds an int8 form, else a copy with one (the n-gram weights from its SavedModel)."""
    import tensorflow as tf

    from emoji_reco.model import bundle, int8

    if int8.INT8_FORM in int8.forms(bundle.read_metadata(folder)):
        return folder
    copy = OUT / "int8_bundle"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(folder, copy)
    int8.export(copy, getattr(tf.saved_model.load(str(copy / bundle.SAVED_MODEL)), "ngram", None))
    return copy


def accuracy(folder: Path, runtime: str, test) -> dict:
    from emoji_reco.model import bundle, evaluation

    predictor = bundle.Predictor(folder, runtime=runtime)
    scores = evaluation.score(predictor.probabilities(test.text.tolist()), test.label.to_numpy(),
                              predictor.emojis)
    return {"form": predictor.runtime, **headline(scores)}


def main() -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("bundle")
    parser.add_argument("--seconds", type=int, default=30, help="length of each load run")
    parser.add_argument("--price-per-hour", type=float, default=0.102,
                        help="on-demand USD per hour of the instance (ml.c5.large real-time inference, "
                             "us-east-1)")
    args = parser.parse_args()
    from emoji_reco.settings import defaults, with_overrides

    folder = with_int8_form(Path(args.bundle))
    _, _, bodies = setup(str(folder), "serve_bodies.txt")
    test = held_out(with_overrides(defaults(), {"data.path": str(OUT / "tweets" / "train")}))
    out = {"bundle": str(folder), "seconds": args.seconds, "price_per_hour": args.price_per_hour}
    for runtime in RUNTIMES:
        with Server(str(folder), "--runtime", runtime) as server:
            out[runtime] = {"16_clients": server_load(server, bodies, 16, args.seconds),
                            "1_client": server_load(server, bodies, 1, args.seconds)}
        out[runtime]["held_out"] = accuracy(folder, runtime, test)
        rate = out[runtime]["16_clients"]["requests_per_s"]
        out[runtime]["usd_per_million"] = round(args.price_per_hour / (3600 * rate) * 1e6, 3)
        print(runtime, json.dumps(out[runtime]), flush=True)
    with zero_cost_model(), Server(str(folder), "--runtime", "int8") as server:
        out["zero_cost_model"] = {"16_clients": server_load(server, bodies, 16, args.seconds)}
    print("zero-cost model", json.dumps(out["zero_cost_model"]), flush=True)
    a, b = out["savedmodel"], out["int8"]
    out["int8_vs_savedmodel"] = {
        "requests_per_s_16_clients": round(b["16_clients"]["requests_per_s"]
                                           / a["16_clients"]["requests_per_s"], 2),
        "p50_one_text": round(b["1_client"]["p50_ms"] / a["1_client"]["p50_ms"], 2),
        "p99_16_clients": round(b["16_clients"]["p99_ms"] / a["16_clients"]["p99_ms"], 2),
        "ceiling_requests_per_s_16_clients": round(out["zero_cost_model"]["16_clients"]["requests_per_s"]
                                                   / a["16_clients"]["requests_per_s"], 2),
        "cost_per_million": round(b["usd_per_million"] / a["usd_per_million"], 2),
        "top3_points": round(100 * (b["held_out"]["top3"] - a["held_out"]["top3"]), 2),
        "top1_points": round(100 * (b["held_out"]["top1"] - a["held_out"]["top1"]), 2)}
    return out


if __name__ == "__main__":
    result = main()
    print(json.dumps(result, indent=1))
    (OUT / "int8_serving.json").write_text(json.dumps(result, indent=1))
