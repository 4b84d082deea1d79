"""ScoreFlow's input read from S3 as it streams: peak memory, the disk the input took, and the time of reading
and sharding (ScoreFlow's `start`, `scoring.shards.split`) for 1×, 10× and 100× the rows, each in a fresh
process, against moto in server mode on 127.0.0.1; with `--baseline DIR` (a checkout of another version) the
same beside it, in the same run.

    python bench/stream_bench.py [--rows 20000] [--baseline DIR]     # bench/out/stream.json
"""
import argparse
import csv
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
from common import OUT, shared_tweets

FACTORS = (1, 10, 100)
# Split `uri` into shards of 10,000 rows in a fresh process (from CHECKOUT when given); print its peak RSS in
# MB (VmHWM: this process's own, where getrusage's ru_maxrss keeps the forking parent's across exec).
SPLIT = ("import os, sys, tempfile\n"
         "if sys.argv[1]:\n"
         "    sys.meta_path[:] = [f for f in sys.meta_path if '__editable__' not in str(f)]\n"
         "    sys.path.insert(0, sys.argv[1])\n"
         "from emoji_reco.scoring import shards\n"
         "with tempfile.TemporaryDirectory(dir=os.path.dirname(os.getcwd())) as out:\n"
         "    made = shards.split(sys.argv[2], out, 10000)\n"
         "peak = next(line for line in open('/proc/self/status') if line.startswith('VmHWM:')).split()[1]\n"
         "print(sum(s['rows'] for s in made), int(peak) / 1024)\n")


def moto_server() -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(150):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("moto did not start")


def disk_mb(folder: str) -> float:
    return sum(f.stat().st_size for f in Path(folder).rglob("*") if f.is_file()) / 1e6


def split(uri: str, checkout: str, env: dict) -> dict:
    """One split in a fresh process whose working and temporary folder is a new one, watched for its peak size
    (what the input took on disk: the shards go to their own folder)."""
    work = tempfile.mkdtemp(prefix="stream-bench-")
    started, peak_disk = time.perf_counter(), 0.0
    proc = subprocess.Popen([sys.executable, "-c", SPLIT, checkout, uri], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env={**env, "TMPDIR": work}, cwd=work)
    while proc.poll() is None:
        peak_disk = max(peak_disk, disk_mb(work))
        time.sleep(0.2)
    if proc.returncode:
        raise RuntimeError(f"the split of {uri} failed")
    rows, peak = proc.stdout.read().split()[-2:]
    shutil.rmtree(work, ignore_errors=True)
    return {"rows": int(rows), "seconds": round(time.perf_counter() - started, 1),
            "peak_rss_mb": round(float(peak)),
            "peak_disk_mb": round(peak_disk, 1)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20000, help="the 1× input's rows (real tweets, repeated)")
    parser.add_argument("--baseline", help="a checkout of another version (git worktree add DIR REV)")
    args = parser.parse_args()
    texts = [t for t in shared_tweets()[0] if t.strip()]
    table = io.StringIO()
    csv.writer(table, lineterminator="\n").writerows([["text"]]
                                                     + [[texts[i % len(texts)]] for i in range(args.rows)])
    one = table.getvalue().encode()
    proc, url = moto_server()
    env = {**os.environ, "AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1"}
    results = {"rows_1x": args.rows, "bytes_1x": len(one), "runs": {}}
    try:
        s3 = boto3.client("s3", endpoint_url=url, aws_access_key_id="testing",
                          aws_secret_access_key="testing",
                          region_name="us-east-1")
        s3.create_bucket(Bucket="stream")
        body = one.split(b"\n", 1)[1]
        for factor in FACTORS:
            s3.put_object(Bucket="stream", Key=f"in-{factor}x.csv", Body=b"text\n" + body * factor)
            for name, checkout in (("streaming", ""),
                                   *((("baseline", args.baseline),) if args.baseline else ())):
                run = split(f"s3://stream/in-{factor}x.csv", checkout, env)
                results["runs"].setdefault(name, {})[f"{factor}x"] = run
                print(f"{name} {factor}x: {run}", flush=True)
    finally:
        proc.terminate()
    runs = results["runs"]["streaming"]
    results["peak_rss_100x_vs_1x"] = round(runs["100x"]["peak_rss_mb"] / runs["1x"]["peak_rss_mb"], 2)
    print(json.dumps(results, indent=1))
    OUT.mkdir(exist_ok=True)
    (OUT / "stream.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
