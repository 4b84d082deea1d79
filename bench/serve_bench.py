"""The inference server under load, on loopback only, bounded in time: micro-batching against one request at a
time, server overhead against the bare model call, and a 60 s load run. One real tweet per request.

    python bench/serve_bench.py [--model BUNDLE] [--seconds 60]

The model defaults to the local endpoint's current version (run `make run` first).
"""
import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

import emoji_reco  # noqa: F401
from common import OUT, shared_tweets


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`emoji-reco serve` in its own process on 127.0.0.1."""

    def __init__(self, model: str, max_batch: int):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cli = Path(sys.executable).parent / "emoji-reco"
        self.proc = subprocess.Popen([str(cli), "serve", "--model", model, "--port", str(self.port),
                                      "--max-batch", str(max_batch)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

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


async def load(url: str, texts: list[str], clients: int, seconds: float) -> dict:
    """`clients` concurrent clients, each sending one tweet per request back to back, for `seconds`."""
    latencies, errors = [], 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:

        async def one_client(offset):
            nonlocal errors
            i = offset
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                try:
                    response = await client.post("/invocations", json=[texts[i % len(texts)]])
                    ok = response.status_code == 200
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - start)
                errors += not ok
                i += clients

        started = time.perf_counter()
        await asyncio.gather(*(one_client(c) for c in range(clients)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {"clients": clients, "requests": len(latencies), "errors": errors, "seconds": round(elapsed, 1),
            "requests_per_s": round(len(latencies) / elapsed, 1),
            "p50_ms": round(1000 * latencies[len(latencies) // 2], 1),
            "p99_ms": round(1000 * latencies[int(len(latencies) * 0.99)], 1)}


def bare_model(model: str, texts: list[str], sizes=(1, 4, 16, 64), texts_per_size: int = 640) -> dict:
    """The model call the server makes (clean, tokenize, forward), in this process, by batch size:
    p50 milliseconds per call and texts/s. The ceiling any batching can reach."""
    from emoji_reco.bundle import Predictor

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
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", help="bundle folder (default: the local endpoint's current version)")
    parser.add_argument("--seconds", type=float, default=60, help="length of the load run")
    parser.add_argument("--compare-seconds", type=float, default=20, help="length of each throughput measurement")
    args = parser.parse_args()
    from emoji_reco.endpoint import LocalEndpoint

    model = args.model or str(LocalEndpoint("emoji-reco").current_dir())
    texts, _ = shared_tweets()
    texts = [t for t in texts if t.strip()][:5000]
    results = {"model": model}
    results["bare_model_by_batch"] = bare_model(model, texts)
    results["bare_model_p50_ms"] = results["bare_model_by_batch"][1]["p50_ms"]
    results["model_batch16_vs_single"] = round(results["bare_model_by_batch"][16]["texts_per_s"]
                                               / results["bare_model_by_batch"][1]["texts_per_s"], 2)
    with Server(model, max_batch=1) as server:
        results["one_at_a_time"] = asyncio.run(load(server.url, texts, 1, args.compare_seconds))
        print(json.dumps(results, indent=1), flush=True)
    with Server(model, max_batch=64) as server:
        results["single_client_batching_server"] = asyncio.run(load(server.url, texts, 1, args.compare_seconds))
        results["micro_batched_16_clients"] = asyncio.run(load(server.url, texts, 16, args.compare_seconds))
        print(json.dumps(results, indent=1), flush=True)
        results["load_run_16_clients"] = asyncio.run(load(server.url, texts, 16, args.seconds))
    results["throughput_16_batched_vs_one_at_a_time"] = round(
        results["micro_batched_16_clients"]["requests_per_s"] / results["one_at_a_time"]["requests_per_s"], 2)
    results["p50_one_tweet_vs_bare_model"] = round(
        results["single_client_batching_server"]["p50_ms"] / results["bare_model_p50_ms"], 2)
    print(json.dumps(results, indent=1))
    OUT.mkdir(exist_ok=True)
    (OUT / "serve.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
