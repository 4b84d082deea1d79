"""What one request costs on an idle server (`emoji-reco serve`, loopback only), the figures README quotes:
the explanation of a text (`"explain": true`, the words behind each emoji), and the costliest request the
default token budget admits (64 texts of 64 tokens, 4,096 tokens) against its 2 s deadline.

    python bench/request_costs.py [--model BUNDLE] [--rounds 30]     # bench/out/request_costs.json

The model defaults to the local endpoint's current version (run `make run` first).
"""
import argparse
import json
import statistics
import time

import httpx
from common import OUT, shared_tweets
from serve_bench import Server

BATCH = 16


def timed_post(client: httpx.Client, url: str, body: dict) -> float:
    started = time.perf_counter()
    answer = client.post(f"{url}/invocations", json=body)
    seconds = time.perf_counter() - started
    answer.raise_for_status()
    return seconds


def explain_cost(client, url, texts, rounds) -> dict:
    """Requests of 16 real tweets with and without `explain`, alternating: the extra milliseconds a text."""
    plain, explained = [], []
    for i in range(rounds):
        batch = texts[i * BATCH:(i + 1) * BATCH]
        plain.append(timed_post(client, url, {"instances": batch}))
        explained.append(timed_post(client, url, {"instances": batch, "explain": True}))
    per_text = (statistics.median(explained) - statistics.median(plain)) / BATCH * 1000
    return {"texts_per_request": BATCH, "rounds": rounds,
            "plain_ms": round(statistics.median(plain) * 1000, 1),
            "explained_ms": round(statistics.median(explained) * 1000, 1),
            "explain_ms_per_text": round(per_text, 2)}


def costliest_request(client, url, texts, rounds) -> dict:
    """64 texts of at least 64 tokens each (real tweets run together to 80 words; the model truncates them to
    64)."""
    long_texts, at = [], 0
    while len(long_texts) < 64:
        joined = ""
        while len(joined.split()) < 80:
            joined, at = f"{joined} {texts[at]}".strip(), at + 1
        long_texts.append(joined)
    seconds = [timed_post(client, url, {"instances": long_texts}) for _ in range(rounds)]
    return {"texts": 64, "words_per_text_min": min(len(t.split()) for t in long_texts), "rounds": rounds,
            "median_s": round(statistics.median(seconds), 2), "max_s": round(max(seconds), 2)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", help="bundle folder (default: the local endpoint's current version)")
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    from emoji_reco.serving.local_endpoint import LocalEndpoint

    model = args.model or str(LocalEndpoint("emoji-reco").current_dir())
    texts = [t for t in shared_tweets()[0] if t.strip()]
    with Server(model) as server, httpx.Client(timeout=30) as client:
        for _ in range(3):  # warm up: the first calls trace the model
            timed_post(client, server.url, {"instances": texts[:BATCH], "explain": True})
        results = {"explain": explain_cost(client, server.url, texts, args.rounds),
                   "costliest": costliest_request(client, server.url, texts, max(5, args.rounds // 3))}
    print(json.dumps(results, indent=1))
    OUT.mkdir(exist_ok=True)
    (OUT / "request_costs.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
