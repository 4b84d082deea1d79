"""What observing the server costs, and MonitorFlow's wall time, on loopback only, bounded in time.

    python bench/operate_bench.py [--model BUNDLE] [--seconds 15] [--baseline CHECKOUT] [--records 100000]

Serving: wrk, 16 closed-loop clients, one real tweet per request (as bench/serve_bench.py), each setting on a
server of its own, in one run: the server before /metrics and the access log (`--baseline`, a checkout), this
server, this server scraped every second (Prometheus scrapes every 15 s by default: 15x that), and capturing
10% and 100% of the requests to a local folder, written every 5 s (the default is 60 s: here the writes fall
inside the load). MonitorFlow: `--records` captured requests of one real tweet each, written in the capture
layout (their answers are drawn at random: only the time is measured), compared with the local endpoint's
champion by a real run. The model defaults to the local endpoint's current version (run `make run` first).
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from common import OUT
from serve_bench import Server, load, setup

ROOT = Path(__file__).resolve().parents[1]


class Scraper(threading.Thread):
    """GET /metrics every `every` seconds until stopped; counts the scrapes and their bytes."""

    def __init__(self, url: str, every: float):
        super().__init__(daemon=True)
        self.url, self.every, self.running, self.scrapes, self.bytes = url, every, True, 0, 0

    def run(self):
        with httpx.Client(timeout=5) as client:
            while self.running:
                self.bytes += len(client.get(f"{self.url}/metrics").content)
                self.scrapes += 1
                time.sleep(self.every)


def captured(url: str) -> dict:
    """The capture counters of /metrics: records written and dropped."""
    from prometheus_client.parser import text_string_to_metric_families

    families = text_string_to_metric_families(httpx.get(f"{url}/metrics").text)
    return {s.labels["outcome"]: s.value for f in families for s in f.samples
            if s.name == "emoji_reco_capture_records_total"}


def serving(model: str, bodies: Path, seconds: int, baseline: str | None) -> dict:
    out, folder = {}, tempfile.mkdtemp(prefix="emoji-reco-capture-")
    phases = [("before /metrics (baseline)", (), baseline)] if baseline else []
    phases += [("this server", (), None), ("scraped every second", (), None),
               ("capture 10%", ("--capture-sample", "0.1", "--capture-uri", folder, "--capture-flush-seconds",
                                "5"), None),
               ("capture 100%", ("--capture-sample", "1", "--capture-uri", folder, "--capture-flush-seconds",
                                 "5"), None)]
    for name, options, checkout in phases:
        with Server(model, *options, checkout=checkout) as server:
            load(server.url, bodies, 16, 5)  # warm up
            scraper = Scraper(server.url, 1.0) if name == "scraped every second" else None
            if scraper:
                scraper.start()
            result = load(server.url, bodies, 16, seconds)
            if scraper:
                scraper.running = False
                scraper.join()
                result["scrapes"], result["bytes_per_scrape"] = (scraper.scrapes, scraper.bytes
                                                                 // max(1, scraper.scrapes))
            if options:
                time.sleep(1.5)
                result["captured"] = captured(server.url)
        out[name] = result
        print(name, result, flush=True)
    base = out["this server"]["requests_per_s"]
    for row in out.values():
        row["vs_this_server"] = round(row["requests_per_s"] / base, 3)
    return out


def monitor(texts: list[str], records: int) -> dict:
    """MonitorFlow's wall time on `records` captured requests."""
    from emoji_reco.serving import capture
    from emoji_reco.serving.local_endpoint import LocalEndpoint

    emojis = json.loads((LocalEndpoint("emoji-reco").current_dir() / "labels.json").read_text()).values()
    emojis, rng = list(emojis), random.Random(0)
    folder = Path(tempfile.mkdtemp(prefix="emoji-reco-captured-"))
    now, per_file = time.time(), 1000
    for start in range(0, records, per_file):
        lines = []
        for i in range(start, min(records, start + per_file)):
            answer = {"version": "bench", "predictions": [[{"emoji": e, "probability": round(rng.random(), 4)}
                                                           for e in rng.sample(emojis, 3)]]}
            lines.append(json.dumps(capture.event(now - 3600 * 24 * 6 * i / records,
                                                  json.dumps([texts[i % len(texts)]]).encode(),
                                                  "application/json",
                                                  answer), ensure_ascii=False))
        hour = time.gmtime(now - 3600 * 24 * 6 * start / records)
        target = folder / "emoji-reco" / "AllTraffic" / time.strftime("%Y/%m/%d/%H",
                                                                      hour) / f"{start:07d}.jsonl"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    started = time.perf_counter()
    done = subprocess.run([sys.executable, str(ROOT / "flows" / "monitor_flow.py"), "run", "--capture",
                           str(folder)],
                          capture_output=True, text=True, env={**os.environ, "METAFLOW_USER": "emoji-reco"},
                          cwd=ROOT)
    seconds = time.perf_counter() - started
    assert done.returncode == 0, done.stderr[-3000:]
    verdict = next((line for line in done.stdout.splitlines() if "drift" in line), "")
    return {"records": records, "seconds": round(seconds, 1), "verdict": verdict.split(" ", 2)[-1][:200]}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", help="bundle folder (default: the local endpoint's current version)")
    parser.add_argument("--seconds", type=int, default=15, help="length of the load in each phase")
    parser.add_argument("--baseline", help="a checkout of the server before /metrics (git "
                                           "worktree add DIR REV)")
    parser.add_argument("--records", type=int, default=100_000, help="captured requests for MonitorFlow")
    args = parser.parse_args()
    model, texts, bodies = setup(args.model, "operate_bodies.txt")
    results = {"model": model, "serving": serving(model, bodies, args.seconds, args.baseline),
               "monitor": monitor(texts, args.records)}
    print(json.dumps(results, indent=1))
    (OUT / "operate.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
