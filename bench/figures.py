"""`make figures`: rerun every quick bench (under 5 minutes here) and print each figure beside the value
README and RESULTS quote, flagging any that moved by more than its noise; then run README's commands that show
their output and compare. The slow benches are listed with their time, to rerun by hand.

    python bench/figures.py [--only NAME ...] [--list]     # a deployed default model first: `make run`

Exit status 1 when a figure moved past its noise, a quote is missing from its file, or a bench failed.
"""
import argparse
import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
README, RESULTS = "README.md", "bench/RESULTS.md"
NUMBER = r"([\d,]+(?:\.\d+)?)"


@dataclass(frozen=True)
class Figure:
    """One number a bench writes (`path` into its JSON), quoted in files as `pattern` (its group: the
    number)."""
    name: str
    path: tuple
    quotes: tuple  # (file, pattern)
    noise: float  # relative: how far one run moves from the next here


@dataclass(frozen=True)
class Bench:
    name: str
    command: tuple
    output: str  # its JSON in bench/out
    minutes: float | None  # how long it took here (None: not timed)
    figures: tuple = ()


QUICK = (
    Bench("convert", ("python", "bench/convert_bench.py"), "convert.json", 0.5, (
        Figure("ours vs classic conversion", ("ours_vs_classic",),
               ((RESULTS, rf"ours vs classic: \*\*{NUMBER}×"),), 0.15),
        Figure("2 shards vs 1", ("two_shards_vs_one",),
               ((RESULTS, rf"2 shards vs 1 shard on 2 cores: \*\*{NUMBER}×"),),
               0.1))),
    Bench("request costs", ("python", "bench/request_costs.py"), "request_costs.json", 0.3, (
        Figure("explanation, ms a text", ("explain", "explain_ms_per_text"),
               ((README, rf"not explained\. {NUMBER} ms a text"),), 0.5),
        Figure("costliest admitted request, s", ("costliest", "median_s"),
               ((README, rf"answered\s+in {NUMBER} s on an idle"),), 0.25))),
    Bench("default run", ("bash", "bench/default_run.sh"), "default_run.json", 1.3, (
        Figure("default run wall, s", ("default_run_wall_s",), ((README, rf"\({NUMBER} s measured on"),),
               0.2),
        Figure("default run test top-1 %", ("top1_percent",), ((README, rf"\] test top-1 {NUMBER}%"),), 0.03),
        Figure("default run test top-3 %", ("top3_percent",),
               ((README, rf"\] test top-1 [\d.]+%, top-3 {NUMBER}%"),),
               0.03))),
    Bench("overload", ("python", "bench/overload_bench.py"), "overload.json", 0.7, (
        Figure("goodput at 3× capacity, × capacity", ("server", "overload", "goodput_vs_capacity"),
               ((README, rf"it answered {NUMBER}× its measured capacity"),
                (RESULTS, rf"(?s)Latest rerun.*?goodput [\d.]+/s \({NUMBER}× capacity\)")), 0.15),)),
    Bench("serving", ("python", "bench/serve_bench.py"), "serve.json", 3.4, (
        Figure("16 clients batched vs one at a time", ("throughput_16_batched_vs_one_at_a_time",),
               ((RESULTS, rf"16 clients micro-batched against one request at a time: \*\*{NUMBER}×"),), 0.2),
        Figure("one tweet's p50 vs the bare model call", ("p50_one_tweet_vs_bare_model",),
               ((RESULTS, rf"for the bare call = \*\*{NUMBER}×"),), 0.4))),  # 0.92 to 1.23 across runs
)
SLOW = (
    Bench("accuracy on the shared tweets", ("python", "bench/accuracy.py"), "accuracy.json", 30),
    Bench("training levers", ("python", "bench/train_bench.py"), "train.json", None),
    Bench("scale-out", ("python", "bench/scale_bench.py"), "scale.json", 5),
    Bench("images", ("python", "bench/images.py", "--cold-base"), "images.json", 9),
    Bench("slow and costly clients", ("python", "bench/attack_bench.py", "--seconds", "15", "--baseline",
                                         "DIR"),
          "attack.json", None),
    Bench("operating cost", ("python", "bench/operate_bench.py", "--seconds", "15", "--baseline", "DIR"),
          "operate.json", None),
    Bench("int8 / float16 serving", ("python", "bench/quantized.py", "BUNDLE"), "quantized.json", None),
    Bench("int8 runtimes", ("python", "bench/runtimes.py", "BUNDLE"), "runtimes.json", 1.5),
    Bench("int8 in the server", ("python", "bench/int8_serving.py", "BUNDLE"), "int8_serving.json", 6, (
        Figure("int8 / float32 requests/s, 16 clients", ("int8_vs_savedmodel", "requests_per_s_16_clients"),
               ((README, rf"\| requests/s, 16 clients[^|]*\| [\d,]+ \| [\d,]+ \({NUMBER}×"),
                (RESULTS, rf"\*\*int8 LiteRT\*\*, 2 proc[^|]*\| [\d,.]+ \(\*\*{NUMBER}×\*\*\)")), 0.2),)),
    Bench("cold starts", ("python", "bench/cold_start.py", "BUNDLE"), "cold_start.json", 1.5, (
        Figure("int8 image's cold start, s", ("inference-int8", "cold_start_s", "median"),
               ((RESULTS, rf"\*\*`emoji-reco-inference-int8`\*\* .*? \| \*\*{NUMBER} s\*\*"),), 0.3),)),
    Bench("streaming S3 input", ("python", "bench/stream_bench.py"), "stream.json", None),
)
# README's commands shown with their output: `emoji-reco ...` lines followed by `#   ` lines (what it prints,
# after the echoed text), run against the default model.
COMMAND = re.compile(r"^(emoji-reco [^#]*?)\s*(?:#.*)?$")


def took(bench: Bench) -> str:
    return "not timed" if bench.minutes is None else f"about {bench.minutes:g} min"


def quoted(file: str, pattern: str) -> float | None:
    found = re.search(pattern, (ROOT / file).read_text(encoding="utf-8"))
    return float(found.group(1).replace(",", "")) if found else None


def measured(data: dict, path: tuple) -> float:
    for key in path:
        data = data[key]
    return float(data)


def run_bench(bench: Bench) -> dict | None:
    print(f"\n== {bench.name}: {' '.join(bench.command)} ({took(bench)})", flush=True)
    command = [sys.executable if part == "python" else part for part in bench.command]
    started = time.time()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        print(f"   FAILED after {time.time() - started:.0f} s:\n{done.stderr[-2000:]}")
        return None
    print(f"   took {time.time() - started:.0f} s")
    return json.loads((OUT / bench.output).read_text())


def compare(figure: Figure, data: dict) -> bool:
    """Print the figure beside each quote; True when every quote is within noise."""
    now, fine = measured(data, figure.path), True
    for file, pattern in figure.quotes:
        then = quoted(file, pattern)
        if then is None:
            print(f"   {figure.name}: no quote in {file} matches {pattern!r}  MISSING")
            fine = False
            continue
        moved = (now - then) / max(abs(then), 1e-9)
        ok = abs(moved) <= figure.noise
        fine &= ok
        print(f"   {figure.name}: {file} says {then:g}, now {now:g} ({moved:+.0%} moved, noise "
              f"{figure.noise:.0%})"
              f"  {'ok' if ok else 'MOVED'}")
    return fine


def same_output(shown: str, printed: str) -> bool:
    """Words and emojis equal, numbers within 0.05 or 10%."""
    shown_parts, printed_parts = shown.split(), printed.split()
    if len(shown_parts) != len(printed_parts):
        return False
    for a, b in zip(shown_parts, printed_parts):
        try:
            x, y = float(a), float(b)
        except ValueError:
            if a != b:
                return False
            continue
        if abs(x - y) > max(0.05, 0.1 * abs(x)):
            return False
    return True


def samples() -> list[tuple[str, list[str]]]:
    """(command, the lines README shows it printing) for each README command followed by `#   ` lines."""
    lines, found = (ROOT / README).read_text(encoding="utf-8").splitlines(), []
    for at, line in enumerate(lines):
        command, shown = COMMAND.match(line), []
        while command and at + 1 + len(shown) < len(lines) and lines[at + 1 + len(shown)].startswith("#   "):
            shown.append(lines[at + 1 + len(shown)][4:])
        if shown:
            found.append((command.group(1), shown))
    return found


def check_samples() -> bool:
    print("\n== README's commands with their output (the default model)")
    fine = True
    for command, shown in samples():
        args = [a.strip('"') for a in re.findall(r'"[^"]*"|\S+', command)[1:]]
        done = subprocess.run([str(Path(sys.executable).parent / "emoji-reco"), *args], capture_output=True,
                              text=True, cwd=ROOT)
        printed = [line.strip() for line in done.stdout.splitlines() if line.strip()
                   and line.strip() not in args]
        ok = done.returncode == 0 and len(printed) == len(shown) and all(map(same_output, shown, printed))
        fine &= ok
        print(f"   {command}: {'ok' if ok else 'MOVED'}")
        for then, now in zip(shown, printed or [done.stderr.strip()]):
            print(f"     README: {then}\n     now:    {now}")
    return fine


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", nargs="*", help="bench names to run (default: every quick "
                                                  "one, then the samples)")
    parser.add_argument("--list", action="store_true", help="list the benches and stop")
    args = parser.parse_args()
    if args.list:
        for bench in QUICK + SLOW:
            print(f"{bench.name:32} {took(bench):>14}  {' '.join(bench.command)}")
        return 0
    fine = True
    for bench in QUICK:
        if args.only and bench.name not in args.only:
            continue
        data = run_bench(bench)
        fine &= data is not None and all([compare(f, data) for f in bench.figures])
    if not args.only or "samples" in args.only:
        fine &= check_samples()
    print("\nSlow benches, to rerun by hand (RESULTS.md has the command above each result):")
    for bench in SLOW:
        print(f"   {bench.name} ({took(bench)}): {' '.join(bench.command)}")
    print("\nall figures within noise" if fine else "\nsome figures moved, are missing or failed (above)")
    return 0 if fine else 1


if __name__ == "__main__":
    sys.exit(main())
