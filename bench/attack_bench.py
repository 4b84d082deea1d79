"""Slow and costly clients against the inference server, on loopback only, bounded in time: the goodput of
normal clients and /ping's answers during each attack, side by side with no attack, in one run (and the same
for another version's server with `--baseline`).

    python bench/attack_bench.py [--model BUNDLE] [--seconds 20] [--baseline CHECKOUT]

Normal load: wrk, 16 closed-loop clients on 127.0.0.1, one real tweet per request (as bench/serve_bench.py).
Each attack alone, from ten other loopback addresses (127.0.2.1-10, one attacker with ten addresses), every
socket reconnecting as soon as the server answers or closes it:
- slow headers: 1,200 sockets, each sending part of a header line every 5 s;
- slow bodies: 300 sockets with `Content-Length: 100000`, sending one byte every 5 s;
- costly requests: 10 clients posting 256 texts of ~4 KB of real tweets each (a 1 MiB body) back to back;
- costly to price: 10 clients posting 65 texts of 3.9 KB in 90-letter words back to back: just over the token
  budget, and the cheap lower bound (a token per word) can't tell, so each is cleaned and tokenized in full
  before its 413.
/ping is asked every 250 ms from 127.0.0.1 while wrk runs; an answer other than 200, or none within 2 s,
counts. The model defaults to the local endpoint's current version (run `make run` first).
"""
import argparse
import asyncio
import http.client
import json
import os
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
from common import OUT
from serve_bench import Server, load, setup

ATTACKERS = [f"127.0.2.{i}" for i in range(1, 11)]
SLOW_HEADERS = {"sockets": 1200, "first": b"POST /invocations HTTP/1.1\r\nHost: localhost\r\nX-a: ",
                "drip": b"a"}
SLOW_BODIES = {"sockets": 300, "first": b"POST /invocations HTTP/1.1\r\nHost: localhost\r\nContent-Type: "
                                        b"application/json\r\nContent-Length: 100000\r\n\r\n[", "drip": b" "}
DRIP_SECONDS = 5.0


class Attack(threading.Thread):
    """Runs one attack on its own event loop until `stop()`; counts what the server did to it."""

    def __init__(self, port: int, kind: str, costly_body: bytes | None):
        super().__init__(daemon=True)
        self.port, self.kind, self.costly_body = port, kind, costly_body
        self.stopping = threading.Event()
        self.counts = Counter()

    def stop(self):
        self.stopping.set()
        self.join(30)

    def run(self):
        asyncio.run(self.main())

    async def main(self):
        if self.costly_body:
            await asyncio.gather(*(asyncio.to_thread(self.costly, i) for i in range(10)))
            return
        shape = SLOW_HEADERS if self.kind == "slow headers" else SLOW_BODIES
        await asyncio.gather(*(self.slow(i, shape) for i in range(shape["sockets"])))

    async def slow(self, i: int, shape: dict):
        await asyncio.sleep(i * 2.0 / shape["sockets"])  # ramp up over 2 s
        while not self.stopping.is_set():
            try:
                reader, writer = await asyncio.open_connection(
                    "127.0.0.1", self.port, local_addr=(ATTACKERS[i % len(ATTACKERS)], 0))
            except OSError:
                self.counts["connect failed"] += 1
                await asyncio.sleep(1)
                continue
            self.counts["connections"] += 1
            try:
                writer.write(shape["first"])
                while not self.stopping.is_set():
                    try:
                        answer = await asyncio.wait_for(reader.read(65536), DRIP_SECONDS)
                    except TimeoutError:
                        writer.write(shape["drip"])
                        await writer.drain()
                        continue
                    self.counts[answer.split(b" ", 2)[1].decode() if answer else "closed"] += 1
                    break
            except OSError:
                self.counts["reset"] += 1
            finally:
                writer.close()

    def costly(self, i: int):
        """One client posting the 1 MiB body back to back on a kept-alive connection (http.client: the bytes
        go out from C, so the attacker's own CPU takes little of the cores it shares with the server)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30,
                                          source_address=(ATTACKERS[i], 0))
        while not self.stopping.is_set():
            try:
                conn.request("POST", "/invocations", self.costly_body, {"Content-Type": "application/json"})
                answer = conn.getresponse()
                answer.read()
                self.counts[answer.status] += 1
            except (OSError, http.client.HTTPException) as exc:
                self.counts[type(exc).__name__] += 1
                conn.close()
        conn.close()


class PingWatch(threading.Thread):
    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url, self.answers, self.running = url, Counter(), True

    def run(self):
        with httpx.Client(timeout=2) as client:
            while self.running:
                try:
                    self.answers[client.get(f"{self.url}/ping").status_code] += 1
                except httpx.HTTPError as exc:
                    self.answers[type(exc).__name__] += 1
                time.sleep(0.25)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def costly_bodies(texts: list[str]) -> dict[str, bytes]:
    """The bodies of the two costly attacks, each under the 1 MiB body limit."""
    joined = " ".join(texts)
    joined = joined * (1 + 256 * 4000 // len(joined))  # real tweets, again and again
    size = 3900
    while len(body := json.dumps([joined[i * size:(i + 1) * size] for i in range(256)],
                                 ensure_ascii=False).encode()) > 1 << 20:
        size -= 100
    word = "".join(chr(ord("a") + i % 26) for i in range(90))
    return {"costly requests": body, "costly to price": json.dumps([" ".join([word] * 43)] * 65).encode()}


def under_attack(server: Server, bodies, texts: list[str], seconds: int) -> dict:
    """Normal load and /ping with no attack, then during each attack."""
    out, heavy = {}, costly_bodies(texts)
    with server:
        load(server.url, bodies, 16, 5)  # warm up
        for kind in ("no attack", "slow headers", "slow bodies", "costly requests", "costly to price"):
            attack = Attack(server.port, kind, heavy.get(kind)) if kind != "no attack" else None
            if attack:
                attack.start()
                time.sleep(3)  # let it take hold
            ping = PingWatch(server.url)
            ping.start()
            cpu = cpu_seconds(server.proc.pid)
            normal = load(server.url, bodies, 16, seconds)
            cpu = cpu_seconds(server.proc.pid) - cpu
            ping.running = False
            ping.join()
            if attack:
                attack.stop()
            goodput = (normal["requests"] - normal["errors"]) / normal["seconds"]
            out[kind] = {"goodput_per_s": round(goodput, 1), "normal_errors": normal["errors"],
                         "p99_ms": normal["p99_ms"], "ping": dict(ping.answers),
                         "server_cores_busy": round(cpu / normal["seconds"], 2),
                         **({"attack": dict(attack.counts)} if attack else {})}
            print(kind, out[kind], flush=True)
            time.sleep(2)
    base = out["no attack"]["goodput_per_s"]
    for row in out.values():
        row["goodput_vs_no_attack"] = round(row["goodput_per_s"] / base, 3)
        row["ping_always_200"] = set(row["ping"]) == {200}
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", help="bundle folder (default: the local endpoint's current version)")
    parser.add_argument("--seconds", type=int, default=20, help="length of the normal load in each phase")
    parser.add_argument("--baseline", help="a checkout of another version (git worktree add "
                                           "DIR REV): its server "
                                           "meets the same attacks in the same run")
    args = parser.parse_args()
    model, texts, bodies = setup(args.model, "attack_bodies.txt")
    results = {"model": model, "server": under_attack(Server(model), bodies, texts, args.seconds)}
    if args.baseline:
        results["baseline"] = {"checkout": args.baseline,
                               **under_attack(Server(model, checkout=args.baseline), bodies, texts,
                                              args.seconds)}
    print(json.dumps(results, indent=1))
    (OUT / "attack.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
