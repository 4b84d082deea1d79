"""The server with each runtime (issue 40), side by side in one run, on loopback: `emoji-reco serve --runtime
savedmodel` and `--runtime int8` on the same bundle, each with its default processes (float32: one; int8: one
per core) and with the other count, at 16 concurrent clients (requests/s, p50, p99) in rounds that take turns
(a round's 16 connections are new, and how the kernel splits them between processes changes from round to
round; the median round counts), and at one client (p50/p99 of one text), one real tweet per request (wrk, as
`serve_bench.py`); top-1/top-3 of each form on the held-out tweets through the server's own Predictor; and
what a million predictions cost on an instance of this machine's size (2 vCPUs: ml.c5.large) at an on-demand
hourly price. Beside them, the ceiling: the same server under the same load with a model that costs nothing,
and each server's CPU per request.

    python bench/int8_serving.py BUNDLE [--rounds 5] [--seconds 10] [--price-per-hour 0.102]

BUNDLE: a bundle folder; if it holds no int8 form (one trained before issue 40), a copy gets one, written as
training writes it (bench/out/int8_bundle). Run `bench/accuracy.py` first for the held-out tweets.
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import threading
from contextlib import ExitStack, contextmanager
from pathlib import Path

from common import OUT, headline, held_out
from serve_bench import Server, load, setup

CORES = len(os.sched_getaffinity(0))
# name: (runtime, server processes; None: the runtime's default); each runtime's default first
SERVERS = {"savedmodel": ("savedmodel", None), "int8": ("int8", None),
           "savedmodel_one_per_core": ("savedmodel", CORES), "int8_one_process": ("int8", 1)}
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


def tree_cpu(pid: int) -> float:
    """CPU seconds taken so far by process `pid` and its descendants (the server's worker processes)."""
    parents, spent = {}, {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        parents[int(entry.name)] = int(fields[1])
        spent[int(entry.name)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    tree, grown = {pid}, True
    while grown:
        grown = {child for child, parent in parents.items() if parent in tree} - tree
        tree |= grown
    return sum(spent.get(p, 0.0) for p in tree)


def connections_per_process(port: int) -> list[int]:
    """How the server's established connections are split between its processes, largest first."""
    listed = subprocess.run(["ss", "-tnpH", "state", "established", f"( sport = :{port} )"],
                            capture_output=True, text=True).stdout
    counts: dict = {}
    for pid in re.findall(r"pid=(\d+)", listed):
        counts[pid] = counts.get(pid, 0) + 1
    return sorted(counts.values(), reverse=True)


def server_load(server: Server, bodies: Path, clients: int, seconds: int) -> dict:
    """`load`, the CPU the server's processes took per request meanwhile, and (half-way) how its connections
    were split between them."""
    before, seen = tree_cpu(server.proc.pid), {}
    probe = threading.Timer(seconds / 2, lambda: seen.update(split=connections_per_process(server.port)))
    probe.start()
    result = load(server.url, bodies, clients, seconds)
    probe.join()
    result["server_cpu_ms_per_request"] = round(1000 * (tree_cpu(server.proc.pid) - before)
                                                / result["requests"], 3)
    return {**result, "connections_per_process": seen.get("split")}


def in_rounds(servers: dict, bodies: Path, clients: int, rounds: int, seconds: int) -> dict:
    """Each server under `clients` for `seconds`, taking turns, `rounds` times: the median round (by
    requests/s) of each, with every round's requests/s and connection split."""
    runs: dict = {name: [] for name in servers}
    for _ in range(rounds):
        for name, server in servers.items():
            runs[name].append(server_load(server, bodies, clients, seconds))
    out = {}
    for name, results in runs.items():
        median = sorted(results, key=lambda r: r["requests_per_s"])[len(results) // 2]
        out[name] = {**median, "rounds_requests_per_s": [r["requests_per_s"] for r in results],
                     "rounds_connections_per_process": [r["connections_per_process"] for r in results],
                     "server_cpu_ms_per_request": round(statistics.median(
                         r["server_cpu_ms_per_request"] for r in results), 3)}
    return out


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
    parser.add_argument("--rounds", type=int, default=5, help="16-client runs per server, taking turns")
    parser.add_argument("--seconds", type=int, default=10,
                        help="length of each 16-client round (the one-client run: 3x)")
    parser.add_argument("--price-per-hour", type=float, default=0.102,
                        help="on-demand USD per hour of the instance (ml.c5.large real-time inference, "
                             "us-east-1)")
    args = parser.parse_args()
    from emoji_reco.settings import defaults, with_overrides

    folder = with_int8_form(Path(args.bundle))
    _, _, bodies = setup(str(folder), "serve_bodies.txt")
    test = held_out(with_overrides(defaults(), {"data.path": str(OUT / "tweets" / "train")}))
    out = {"bundle": str(folder), "rounds": args.rounds, "seconds": args.seconds, "cores": CORES,
           "price_per_hour": args.price_per_hour}
    with ExitStack() as stack:
        servers = {name: stack.enter_context(Server(str(folder), "--runtime", runtime,
                                                    *(["--workers", str(n)] if n else [])))
                   for name, (runtime, n) in SERVERS.items()}
        with zero_cost_model():
            servers["zero_cost_model"] = stack.enter_context(Server(str(folder), "--runtime", "int8"))
        for server in servers.values():  # warm
            load(server.url, bodies, 16, 2)
        for name, result in in_rounds(servers, bodies, 16, args.rounds, args.seconds).items():
            out[name] = {"16_clients": result}
            print(name, json.dumps(result), flush=True)
        for runtime in ("savedmodel", "int8"):
            out[runtime]["1_client"] = server_load(servers[runtime], bodies, 1, 3 * args.seconds)
    for runtime in ("savedmodel", "int8"):
        out[runtime]["held_out"] = accuracy(folder, runtime, test)
        per_s = out[runtime]["16_clients"]["requests_per_s"]
        out[runtime]["usd_per_million"] = round(args.price_per_hour / (3600 * per_s) * 1e6, 3)
        print(runtime, json.dumps(out[runtime]), flush=True)
    a, b = out["savedmodel"], out["int8"]

    def rate(name: str) -> float:
        return out[name]["16_clients"]["requests_per_s"]

    out["int8_vs_savedmodel"] = {
        "requests_per_s_16_clients": round(rate("int8") / rate("savedmodel"), 2),
        "rounds_requests_per_s_16_clients": [
            round(i / f, 2) for i, f in zip(out["int8"]["16_clients"]["rounds_requests_per_s"],
                                            out["savedmodel"]["16_clients"]["rounds_requests_per_s"])],
        "requests_per_s_16_clients_one_process_each": round(rate("int8_one_process") / rate("savedmodel"), 2),
        "requests_per_s_16_clients_against_float32s_best": round(
            rate("int8") / max(rate("savedmodel"), rate("savedmodel_one_per_core")), 2),
        "p50_one_text": round(b["1_client"]["p50_ms"] / a["1_client"]["p50_ms"], 2),
        "p99_16_clients": round(b["16_clients"]["p99_ms"] / a["16_clients"]["p99_ms"], 2),
        "ceiling_requests_per_s_16_clients": round(rate("zero_cost_model") / rate("savedmodel"), 2),
        "cost_per_million": round(b["usd_per_million"] / a["usd_per_million"], 2),
        "top3_points": round(100 * (b["held_out"]["top3"] - a["held_out"]["top3"]), 2),
        "top1_points": round(100 * (b["held_out"]["top1"] - a["held_out"]["top1"]), 2)}
    return out


if __name__ == "__main__":
    result = main()
    print(json.dumps(result, indent=1))
    (OUT / "int8_serving.json").write_text(json.dumps(result, indent=1))
