"""The inference server under load, on loopback only, bounded in time: micro-batching against one request at a
time, server overhead against the bare model call, and a 60 s load run. One real tweet per request. The load
comes from wrk (C, one thread; `apt-get install wrk`), so the load generator takes little of the cores it
shares with the server.

    python bench/serve_bench.py [--model BUNDLE] [--seconds 60]

The model defaults to the local endpoint's current version (run `make run` first).
"""
import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from common import OUT, shared_tweets

import emoji_reco  # noqa: F401

LUA = Path(__file__).resolve().parent / "post.lua"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Runs `emoji-reco` from another checkout (an older version, for a side-by-side run): the editable install's
# finder is taken out so that checkout's `emoji_reco` is the one imported.
FROM_CHECKOUT = ("import sys; sys.meta_path[:] = [f for f in sys.meta_path if '__editable__' not in str(f)]; "
                 "sys.path.insert(0, sys.argv.pop(1)); from emoji_reco.cli import main; sys.exit(main())")


class Server:
    """`emoji-reco serve` in its own process on 127.0.0.1 (from `checkout` when given, else this one)."""

    def __init__(self, model: str, *options: str, checkout: str | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cli = [sys.executable, "-c", FROM_CHECKOUT,
               checkout] if checkout else [str(Path(sys.executable).parent / "emoji-reco")]
        self.proc = subprocess.Popen([*cli, "serve", "--model", model, "--port", str(self.port), *options],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def __enter__(self):
        deadline = time.time() + 180
        while time.time() < deadline:
            try:
                if httpx.get(f"{self.url}/ping").status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        raise RuntimeError("server did not become ready")

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait(30)


def load(url: str, bodies: Path, clients: int, seconds: float) -> dict:
    """`clients` connections, each sending one tweet per request back to back, for `seconds` (wrk)."""
    out = subprocess.run(["wrk", "-t1", f"-c{clients}", f"-d{seconds}s", "--timeout", "30s", "-s", str(LUA),
                          url],
                         env={**os.environ, "BODIES": str(bodies)}, capture_output=True, text=True,
                         check=True).stdout
    requests, micros, errors, p50, p99 = next(line for line in out.splitlines()
                                              if line.startswith("RESULT")).split()[1:]
    elapsed = int(micros) / 1e6
    return {"clients": clients, "requests": int(requests), "errors": int(errors),
            "seconds": round(elapsed, 1),
            "requests_per_s": round(int(requests) / elapsed, 1), "p50_ms": float(p50), "p99_ms": float(p99)}


def bare_model(model: str, texts: list[str], threads: int, sizes=(1, 4, 16, 64),
               texts_per_size: int = 640) -> dict:
    """The model call the server makes (clean, tokenize, forward), in this process with the server's thread
    settings: p50 milliseconds per call and texts/s by batch size on one thread, then batches of 16 on
    `threads` threads at once (what the server does under load), and the model's ceiling: length-sorted
    batches of 64."""
    from emoji_reco.model.bundle import Predictor

    predictor = Predictor(model, batch_size=max(sizes))
    predictor.logits(texts[: max(sizes)])
    out = {}
    for size in sizes:
        times = []
        for start in range(0, texts_per_size, size):
            began = time.perf_counter()
            predictor.logits(texts[start : start + size])
            times.append(time.perf_counter() - began)
        p50 = statistics.median(times)
        out[size] = {"p50_ms": round(1000 * p50, 2), "texts_per_s": round(size / p50, 1)}

    def concurrent(batches):
        began = time.perf_counter()
        workers = [threading.Thread(target=lambda part: [predictor.logits(b) for b in part],
                                    args=(batches[k::threads],))
                   for k in range(threads)]
        [w.start() for w in workers]
        [w.join() for w in workers]
        return round(sum(map(len, batches)) / (time.perf_counter() - began), 1)

    def chunks(items, size):
        return [items[i : i + size] for i in range(0, len(items), size)]

    sample = texts[: 4 * texts_per_size]
    out[f"16 on {threads} threads"] = {"texts_per_s": concurrent(chunks(sample, 16))}
    out[f"64 sorted on {threads} threads"] = {"texts_per_s": concurrent(chunks(sorted(sample, key=len), 64))}
    padded = Predictor(model, pack=False)
    padded.logits(texts[:16])
    began = time.perf_counter()
    for batch in chunks(sample[:texts_per_size], 16):
        padded.logits(batch)
    out["16 padded, not packed"] = {"texts_per_s": round(texts_per_size / (time.perf_counter() - began), 1)}
    return out


def setup(model: str | None, bodies_name: str) -> tuple[str, list[str], Path]:
    """The model to serve (default: the local endpoint's current version), 5,000 real tweets, and a file of
    request bodies for wrk (one tweet each)."""
    if not shutil.which("wrk"):
        sys.exit("This bench uses wrk as its load generator: apt-get install wrk")
    from emoji_reco.serving.local_endpoint import LocalEndpoint

    model = model or str(LocalEndpoint("emoji-reco").current_dir())
    texts, _ = shared_tweets()
    texts = [t for t in texts if t.strip()][:5000]
    OUT.mkdir(exist_ok=True)
    bodies = OUT / bodies_name
    bodies.write_text("".join(json.dumps([t]) + "\n" for t in texts), encoding="utf-8")
    return model, texts, bodies


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", help="bundle folder (default: the local endpoint's current version)")
    parser.add_argument("--seconds", type=int, default=60, help="length of the load run")
    parser.add_argument("--compare-seconds", type=int, default=20, help="length of each "
                                                                        "throughput measurement")
    args = parser.parse_args()
    from emoji_reco.model.runtimes import limit_tf_threads
    from emoji_reco.serving.serve_settings import ServeSettings, model_threads

    model, texts, bodies = setup(args.model, "serve_bodies.txt")

    threads, op_threads = model_threads(ServeSettings())
    limit_tf_threads(op_threads)
    results = {"model": model, "model_threads": threads, "tensorflow_threads_per_op": op_threads}
    results["bare_model"] = bare_model(model, texts, threads)
    single = results["bare_model"][1]
    results["model_16_concurrent_vs_single"] = round(
        results["bare_model"][f"16 on {threads} threads"]["texts_per_s"] / single["texts_per_s"], 2)
    results["model_16_packed_vs_padded"] = round(
        results["bare_model"][16]["texts_per_s"]
        / results["bare_model"]["16 padded, not packed"]["texts_per_s"], 2)
    results["model_ceiling_vs_single"] = round(
        results["bare_model"][f"64 sorted on {threads} threads"]["texts_per_s"] / single["texts_per_s"], 2)
    print(json.dumps(results, indent=1), flush=True)
    with Server(model, "--max-batch", "1") as server:
        results["one_at_a_time"] = load(server.url, bodies, 1, args.compare_seconds)
    with Server(model, "--max-batch", "1", "--model-threads", "1") as server:  # one call using every core
        results["one_at_a_time_all_cores_per_call"] = load(server.url, bodies, 1, args.compare_seconds)
    print(json.dumps(results, indent=1), flush=True)
    # micro-batched, one call at a time using every core
    with Server(model, "--model-threads", "1") as server:
        results["micro_batched_16_clients_one_call_at_a_time"] = load(server.url, bodies, 16,
                                                                      args.compare_seconds)
    with Server(model) as server:
        results["single_client_batching_server"] = load(server.url, bodies, 1, args.compare_seconds)
        results["micro_batched_16_clients"] = load(server.url, bodies, 16, args.compare_seconds)
        print(json.dumps(results, indent=1), flush=True)
        results["load_run_16_clients"] = load(server.url, bodies, 16, args.seconds)
    baseline = max(results["one_at_a_time"]["requests_per_s"],
                   results["one_at_a_time_all_cores_per_call"]["requests_per_s"])
    results["throughput_16_batched_vs_one_at_a_time"] = round(
        results["micro_batched_16_clients"]["requests_per_s"] / baseline, 2)
    results["model_threads_vs_one_call_at_a_time"] = round(
        results["micro_batched_16_clients"]["requests_per_s"]
        / results["micro_batched_16_clients_one_call_at_a_time"]["requests_per_s"], 2)
    results["p50_one_tweet_vs_bare_model"] = round(
        results["single_client_batching_server"]["p50_ms"] / single["p50_ms"], 2)
    print(json.dumps(results, indent=1))
    (OUT / "serve.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
