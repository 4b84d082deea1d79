"""Shared bench helpers: the shared real tweets, and timing."""
import os
import time
from contextlib import contextmanager
from pathlib import Path

SHARED_TWEETS = Path(os.environ.get("EMOJI_RECO_TWEETS", Path(__file__).resolve().parents[2] / "shared"
                                    / "data" / "tweets"))
OUT = Path(__file__).resolve().parent / "out"


def shared_tweets():
    """The 84,771 labeled tweets beside the project: (texts, label ids), in file order."""
    import pandas as pd

    frames = [pd.read_csv(SHARED_TWEETS / f"tweets_part{i}.csv.gz", dtype={"TWEET": str},
                          keep_default_na=False)
              for i in (1, 2)]
    frame = pd.concat(frames, ignore_index=True)
    return frame.TWEET.tolist(), frame.LABEL.astype(int).tolist()


@contextmanager
def timed(results: dict, key: str):
    start = time.perf_counter()
    yield
    results[key] = time.perf_counter() - start
    print(f"{key}: {results[key]:.2f} s", flush=True)


def held_out(run_settings: dict):
    """The held-out tweets `bench/accuracy.py` wrote, cleaned and labeled as a run with these settings (its
    `settings` artifact) did its data (texts also in its training data dropped)."""
    from emoji_reco.data import dataset
    from emoji_reco.settings import defaults, merge, typed, with_overrides

    settings = typed(with_overrides(merge(defaults(), run_settings),
                                    {"data.test_path": str(OUT / "tweets" / "test")}))
    return dataset.prepare(settings.data, settings.demo).splits["test"]


def headline(scores: dict) -> dict:
    """The figures a bench reports of `evaluation.score`'s result, rounded."""
    return {k: round(scores[k], 4) for k in ("top1", "top3", "macro_f1", "examples")}
