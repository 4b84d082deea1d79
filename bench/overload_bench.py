"""The inference server past its capacity, on loopback only, bounded in time: an open-loop load (requests sent
at a fixed rate whatever the answers, here 3x the measured capacity) against the default run's model.

    python bench/overload_bench.py [--model BUNDLE] [--factor 3] [--seconds 20]

1. Capacity: wrk, 16 closed-loop clients, one real tweet per request (as bench/serve_bench.py).
2. Overload: `--factor` x capacity, open loop, for `--seconds`: goodput (200s per second) against capacity,
   the share of 200 and 503 answers (anything else is counted apart), p99 of the 200s against the deadline,
   the server's peak memory against its idle memory.
3. Recovery: as the load stops, /ping and one request, and how long each took.

The open-loop generator is asyncio on raw sockets: each request goes out at its scheduled time on an idle
keep-alive connection (a new one when none is idle), and its latency counts from the scheduled time, so a slow
server can't slow the load down (no coordinated omission).
"""
import argparse
import asyncio
import json
import random
import resource
import statistics
import threading
import time
from pathlib import Path

from common import OUT
from serve_bench import Server, load, setup

MAX_CONNECTIONS = 2000


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class MemoryWatch(threading.Thread):
    """The peak resident memory of a process, sampled every 50 ms."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak, self.running = pid, 0.0, True

    def run(self):
        while self.running:
            self.peak = max(self.peak, rss_mb(self.pid))
            time.sleep(0.05)


async def _exchange(reader, writer, request: bytes) -> int:
    writer.write(request)
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("closed")
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        if name.lower() == "content-length":
            length = int(value)
    await reader.readexactly(length)
    return int(status_line.split()[1])


async def open_loop(port: int, bodies: list[bytes], rate: float, seconds: float) -> dict:
    """Send `rate` requests per second for `seconds`, each at its scheduled time; collect (status,
    latency)."""
    loop = asyncio.get_running_loop()
    idle, results, opened, inflight = [], [], 0, set()
    start = loop.time() + 0.2
    total = int(rate * seconds)

    async def one(i: int, scheduled: float):
        nonlocal opened
        body = bodies[i % len(bodies)]
        request = (f"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: "
                   f"application/json\r\n"
                   f"Content-Length: {len(body)}\r\n\r\n").encode() + body
        conn = idle.pop() if idle else None
        for attempt in (1, 2):
            reused = conn is not None
            try:
                if conn is None:
                    if opened >= MAX_CONNECTIONS:
                        results.append(("no connection", 0.0))
                        return
                    opened += 1
                    conn = await asyncio.open_connection("127.0.0.1", port)
                status = await _exchange(*conn, request)
                results.append((status, loop.time() - scheduled))
                idle.append(conn)
                return
            except (OSError, ConnectionError, asyncio.IncompleteReadError) as exc:
                conn[1].close() if conn else None
                conn, opened = None, opened - 1
                # A kept-alive connection the server closed while idle (uvicorn's keep-alive timeout): send
                # again on a new one, as HTTP clients do. Anything else counts as an error.
                if not (reused and attempt == 1
                        and isinstance(exc, (ConnectionError, asyncio.IncompleteReadError))):
                    results.append((type(exc).__name__, loop.time() - scheduled))
                    return

    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.ensure_future(one(i, scheduled))
        inflight.add(task)
        task.add_done_callback(inflight.discard)
    sent_for = loop.time() - start
    recovery = await after_load(port, loop.time())  # while the last requests of the load are still in flight
    pending = list(inflight)
    if pending:
        await asyncio.wait(pending, timeout=30)
    results += [("no answer 30 s after the load", 30.0)] * sum(1 for task in pending if not task.done())
    for reader_writer in idle:
        reader_writer[1].close()
    return {"results": results, "sent_for_s": sent_for, "connections_opened": opened, "after_load": recovery}


async def after_load(port: int, stopped: float) -> dict:
    """As the load stops: /ping, then one request, each on a new connection; seconds from the stop to each
    answer."""
    loop, out = asyncio.get_running_loop(), {}
    body = json.dumps(["is it over yet"]).encode()
    for name, request in (
            ("ping", f"GET /ping HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()),
            ("request", (f"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: "
                         f"application/json\r\n"
                         f"Content-Length: {len(body)}\r\n\r\n").encode() + body)):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            out[f"{name}_status"] = await asyncio.wait_for(_exchange(reader, writer, request), 60)
        except TimeoutError:
            out[f"{name}_status"] = "no answer within 60 s"
        out[f"{name}_answered_s_after_stop"] = round(loop.time() - stopped, 3)
        writer.close()
    return out


def summarise(run: dict, rate: float, seconds: float, capacity: float, deadline_ms: float) -> dict:
    statuses = [s for s, _ in run["results"]]
    ok = [lat for s, lat in run["results"] if s == 200]
    busy = [lat for s, lat in run["results"] if s == 503]
    counts = {str(k): statuses.count(k) for k in sorted(set(statuses), key=str)}
    p = statistics.quantiles(ok, n=100) if len(ok) >= 100 else [max(ok or [0])] * 99
    return {
        "offered_requests_per_s": rate, "sent": len(statuses), "sent_over_s": round(run["sent_for_s"], 2),
        "answers": counts,
        "share_200": round(statuses.count(200) / len(statuses), 3),
        "share_503": round(statuses.count(503) / len(statuses), 3),
        "share_other": round(1 - (statuses.count(200) + statuses.count(503)) / len(statuses), 4),
        "goodput_per_s": round(len(ok) / seconds, 1),
        # What a client with the server's deadline as its own timeout gets: 200s answered within it.
        "goodput_within_deadline_per_s": round(sum(lat <= deadline_ms / 1000 for lat in ok) / seconds, 1),
        "goodput_vs_capacity": round(len(ok) / seconds / capacity, 2),
        "p50_200_ms": round(1000 * statistics.median(ok), 1) if ok else None,
        "p99_200_ms": round(1000 * p[98], 1), "deadline_ms": deadline_ms,
        "p99_200_vs_deadline": round(1000 * p[98] / deadline_ms, 2),
        "p50_503_ms": round(1000 * statistics.median(busy), 1) if busy else None,
        "p99_503_ms": round(1000 * statistics.quantiles(busy, n=100)[98], 1) if len(busy) >= 100 else None,
        "connections_opened": run["connections_opened"],
    }


def overload(server: Server, wrk_bodies: Path, bodies: list[bytes], args, deadline_ms: float) -> dict:
    """Capacity, then the open-loop overload, then recovery, against one server."""
    out = {}
    with server:
        time.sleep(1)
        out["idle_rss_mb"] = round(rss_mb(server.proc.pid), 1)
        capacity = load(server.url, wrk_bodies, 16, args.capacity_seconds)
        out["capacity"] = capacity
        rate = round(args.factor * capacity["requests_per_s"], 1)
        print(json.dumps(out, indent=1), flush=True)
        watch = MemoryWatch(server.proc.pid)
        watch.start()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        run = asyncio.run(open_loop(server.port, bodies, rate, args.seconds))
        spent = resource.getrusage(resource.RUSAGE_SELF)
        watch.running = False
        watch.join()
        out["overload"] = summarise(run, rate, args.seconds, capacity["requests_per_s"], deadline_ms)
        out["peak_rss_mb"] = round(watch.peak, 1)
        out["peak_vs_idle_rss"] = round(watch.peak / out["idle_rss_mb"], 2)
        out["load_generator_cpu_s"] = round(spent.ru_utime + spent.ru_stime - usage.ru_utime - usage.ru_stime,
                                            1)
        out["after_load"] = run["after_load"]
    print(json.dumps(out, indent=1), flush=True)
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", help="bundle folder (default: the local endpoint's current version)")
    parser.add_argument("--factor", type=float, default=3.0, help="offered load as a multiple of capacity")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the overload")
    parser.add_argument("--capacity-seconds", type=int, default=15)
    parser.add_argument("--server-option", action="append", default=[], help="extra `emoji-reco serve` "
                                                                             "option")
    parser.add_argument("--baseline", help="a checkout of another version (git worktree add "
                                           "DIR REV): its server "
                                           "gets the same load in the same run, for ratios")
    args = parser.parse_args()
    from emoji_reco.serving.serve_settings import ServeSettings

    model, texts, wrk_bodies = setup(args.model, "overload_bodies.txt")
    random.Random(0).shuffle(texts)
    bodies = [json.dumps([t]).encode() for t in texts]
    options = [o for opt in args.server_option for o in opt.split(" ", 1)]
    deadline_ms = ServeSettings().deadline_ms
    for i, option in enumerate(options):
        if option == "--deadline-ms":
            deadline_ms = float(options[i + 1])
    results = {"model": model, "server_options": options}
    results["server"] = overload(Server(model, *options), wrk_bodies, bodies, args, deadline_ms)
    if args.baseline:
        results["baseline"] = {"checkout": args.baseline,
                               **overload(Server(model, checkout=args.baseline), wrk_bodies,
                                                                    bodies, args, deadline_ms)}
        ours, theirs = results["server"], results["baseline"]
        results["ratios_server_vs_baseline"] = {
            "goodput": round(ours["overload"]["goodput_per_s"]
                             / max(theirs["overload"]["goodput_per_s"], 0.1), 2),
            "goodput_within_deadline": round(ours["overload"]["goodput_within_deadline_per_s"]
                                             / max(theirs["overload"]["goodput_within_deadline_per_s"], 0.1),
                                             2),
            "p99_of_200s": round(ours["overload"]["p99_200_ms"] / theirs["overload"]["p99_200_ms"], 3),
            "peak_memory_growth": round((ours["peak_rss_mb"] - ours["idle_rss_mb"])
                                        / max(theirs["peak_rss_mb"] - theirs["idle_rss_mb"], 0.1), 3),
            "request_after_load": round(ours["after_load"]["request_answered_s_after_stop"]
                                        / theirs["after_load"]["request_answered_s_after_stop"], 3)}
    print(json.dumps(results, indent=1))
    (OUT / "overload.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
