"""Build time and size of each image, from an empty layer cache, in one run (bench/RESULTS.md, "Images").

    python bench/images.py [--cold-base] [--images train inference inference-int8 train-gpu]

Removes the images (and, with --cold-base, the local Debian base) and the engine's dangling layers first, then
builds the base and each image with `make images`'s own scripts, timing each. Uses the engine `make images`
uses.
"""
import argparse
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def engine() -> str:
    return subprocess.run([str(ROOT / "containers" / "engine")], capture_output=True, text=True,
                          check=True).stdout.strip()


def version() -> str:
    """The version the images are tagged with (containers/version)."""
    return subprocess.run([str(ROOT / "containers" / "version")], capture_output=True, text=True,
                          check=True).stdout.strip()


def size_mb(image: str) -> int:
    done = subprocess.run([engine(), "image", "inspect", "--format", "{{.Size}}", image], capture_output=True,
                          text=True, check=True)
    return int(done.stdout) // 1_000_000


def timed(command: list[str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return time.perf_counter() - started, done.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold-base", action="store_true", help="rebuild the local Debian base too")
    parser.add_argument("--images", nargs="+", default=["train", "inference", "inference-int8", "train-gpu"])
    args = parser.parse_args()
    tool = engine()
    names = [f"emoji-reco-{name}:{version()}" for name in args.images]
    subprocess.run([tool, "rmi", "-f", *names], capture_output=True)
    if args.cold_base:
        listed = subprocess.run([tool, "images", "--format", "{{.Repository}}:{{.Tag}}"], capture_output=True,
                                text=True).stdout.split()
        subprocess.run([tool, "rmi", "-f", *[i for i in listed if "/emoji-reco-base:" in i]],
                       capture_output=True)
    subprocess.run([tool, "image", "prune", "-f"], capture_output=True)
    seconds, base = timed([str(ROOT / "containers" / "base" / "build"), tool])
    print(f"| base {base} | {seconds:.0f} s | {size_mb(base)} MB |")
    for name, image in zip(args.images, names):
        seconds, _ = timed([str(ROOT / "containers" / "build"), name])
        print(f"| {image} | {seconds:.0f} s | {size_mb(image)} MB |", flush=True)


if __name__ == "__main__":
    main()
