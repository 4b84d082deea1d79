"""Mutation scores per module from mutmut's results (`make mutation` runs mutmut, then this): killed (a
timeout counts as killed, as mutmut's own score does) over the mutants tested, and the survivors by name
(`mutmut show NAME` prints one).

    python bench/mutation_scores.py [--goal 90]
"""
import argparse
import configparser
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KILLED, SURVIVED, NO_TESTS = {1, 3, 24, 36, 152, 255, -24}, {0}, {5, 33}


def modules() -> list[str]:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    return [line for line in config.get("mutmut", "only_mutate").splitlines() if line]


def score(module: str) -> dict:
    meta = ROOT / "mutants" / f"{module}.meta"
    if not meta.exists():
        return {"module": module, "missing": True}
    codes = json.loads(meta.read_text())["exit_code_by_key"]
    killed = [k for k, c in codes.items() if c in KILLED]
    survived = sorted(k for k, c in codes.items() if c in SURVIVED)
    untested = sorted(k for k, c in codes.items() if c in NO_TESTS)
    other = sorted(k for k, c in codes.items() if c is not None and c not in KILLED | SURVIVED | NO_TESTS)
    # a mutant not run yet (None) is left out
    tested = len(killed) + len(survived) + len(untested) + len(other)
    return {"module": module, "mutants": len(codes), "killed": len(killed), "tested": tested,
            "score": round(100 * len(killed) / tested, 1) if tested else 0.0, "survived": survived,
            "no_tests": untested, "other": other}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--goal", type=float, default=90.0, help="the least score each module must reach")
    goal = parser.parse_args().goal
    results = [score(m) for m in modules()]
    print("| module | mutants | killed | score |\n| --- | --- | --- | --- |")
    for r in results:
        print(f"| `{r['module']}` | " + ("not run |  |  |" if r.get("missing") else
                                        f"{r['mutants']} | {r['killed']} | {r['score']}% |"))
    for r in results:
        for kind in ("survived", "no_tests", "other"):
            if r.get(kind):
                print(f"\n{r['module']}, {kind.replace('_', ' ')}: {', '.join(r[kind])}")
    (ROOT / "bench" / "out").mkdir(exist_ok=True)
    (ROOT / "bench" / "out" / "mutation.json").write_text(json.dumps(results, indent=1))
    below = [r["module"] for r in results if r.get("missing") or r["score"] < goal]
    print(f"\nbelow {goal:g}%: {', '.join(below)}" if below else f"\nevery module at {goal:g}% or more")
    return 1 if below else 0


if __name__ == "__main__":
    sys.exit(main())
