"""Cold start of each inference image (issue 40): from `run` to /ping 200, what an autoscaling SageMaker
endpoint waits for on every scale-out (after pulling the image, which its size prices), in one run, the images
taking turns; and their sizes. The images as `make images` built them; the model mounted read-only in
/opt/ml/model as SageMaker unpacks it.

    python bench/cold_start.py BUNDLE [--runs 5]      # BUNDLE must hold an int8 form (bench/int8_serving.py)
"""
import argparse
import json
import socket
import statistics
import subprocess
import time
import uuid
from pathlib import Path

import httpx
from common import OUT
from images import engine, size_mb, version

IMAGES = {"inference": {}, "inference-int8": {}}  # each with the environment it runs in


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cold_start(image: str, bundle: str, environment: dict) -> float:
    """Seconds from `run` to the first /ping 200."""
    port, name = free_port(), f"cold-{uuid.uuid4().hex[:8]}"
    env = [f"--env={k}={v}" for k, v in environment.items()]
    began = time.monotonic()
    subprocess.run([engine(), "run", "-d", "--rm", "--name", name, "--read-only", "-p",
                    f"127.0.0.1:{port}:8080", "-v", f"{bundle}:/opt/ml/model:ro", *env, image], check=True,
                   capture_output=True)
    try:
        while time.monotonic() - began < 120:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ping", timeout=2).status_code == 200:
                    return time.monotonic() - began
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise SystemExit(f"{image} did not answer /ping within 120 s")
    finally:
        subprocess.run([engine(), "rm", "-f", "-t", "0", name], capture_output=True)


def main() -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("bundle")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    bundle = str(Path(args.bundle).resolve())
    subprocess.run(["chmod", "-R", "a+rX", bundle], check=True)
    images = {name: f"emoji-reco-{name}:{version()}" for name in IMAGES}
    times = {name: [] for name in IMAGES}
    for _ in range(args.runs):
        for name, image in images.items():
            times[name].append(cold_start(image, bundle, IMAGES[name]))
    out = {name: {"image": images[name], "megabytes": size_mb(images[name]),
                  "cold_start_s": {"median": round(statistics.median(t), 2), "min": round(min(t), 2),
                                   "max": round(max(t), 2)}} for name, t in times.items()}
    full, small = out["inference"], out["inference-int8"]
    out["int8_vs_full"] = {"megabytes": round(small["megabytes"] / full["megabytes"], 3),
                           "cold_start": round(small["cold_start_s"]["median"]
                                               / full["cold_start_s"]["median"], 2)}
    out["runs"] = args.runs
    return out


if __name__ == "__main__":
    result = main()
    print(json.dumps(result, indent=1))
    (OUT / "cold_start.json").write_text(json.dumps(result, indent=1))
