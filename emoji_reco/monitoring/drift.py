"""Drift between live traffic and the data the serving model came from, feature by feature, as population
stability index (PSI) and Jensen–Shannon distance (base 2, 0 to 1).

Features of a text: the emoji the model puts first and its probability (`confidence`), the text's length in
words after cleaning, and the share of its tokens the tokenizer doesn't know (`unknown`). The reference is the
champion scored on its own run's held-out data, so that a model's own leanings are not taken for drift: live
predictions are compared with what the same model predicted on texts like its training data that it never saw
(the card shows the training labels beside).
"""
import math
from collections import Counter

import numpy as np

from emoji_reco.data.cleaning import clean_text
from emoji_reco.model import tokenization

FEATURES = ("emoji", "confidence", "length", "unknown")
EPSILON = 1e-4  # an empty bin's share, so that PSI stays finite


def features(texts: list[str], predictions: list[list[dict]], tokenizer) -> dict:
    """Each feature's values for `texts`, given the model's top emojis for them (`predictions`, best
    first)."""
    cleaned = [clean_text(t) for t in texts]
    unknown_id = tokenizer.token_to_id(getattr(tokenizer.model, "unk_token", "[UNK]") or "[UNK]")
    encoded = tokenization.encode(tokenizer, cleaned)  # the ids the model is given
    return {"emoji": [p[0]["emoji"] for p in predictions],
            "confidence": [float(p[0]["probability"]) for p in predictions],
            "length": [len(t.split()) for t in cleaned],
            "unknown": [sum(i == unknown_id for i in ids) / max(1, len(ids)) for ids in encoded]}


def bins_of(feature: str, reference: list, live: list, quantiles: int = 10):
    """Categories seen in either sample, or the inner edges of the reference's deciles (merged where they
    meet)."""
    if feature == "emoji":
        return sorted(set(reference) | set(live))
    return np.unique(np.quantile(reference, np.linspace(0, 1, quantiles + 1)[1:-1]))


def _shares(values: list, bins) -> np.ndarray:
    """The share of `values` in each category, or between consecutive edges (open at both ends)."""
    if isinstance(bins, list):
        counts = Counter(values)
        shares = np.array([counts.get(b, 0) for b in bins], dtype=float)
    else:
        shares = np.bincount(np.searchsorted(bins, values, side="right"), minlength=len(bins)
                             + 1).astype(float)
    return np.maximum(shares / max(1, len(values)), EPSILON)


def _labels(bins) -> list[str]:
    if isinstance(bins, list):
        return bins
    edges = [f"{e:.3g}" for e in bins]
    return [f"< {edges[0]}", *(f"{a}–{b}" for a, b in zip(edges, edges[1:])),
            f"≥ {edges[-1]}"] if edges else ["all"]


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def js_distance(p: np.ndarray, q: np.ndarray) -> float:
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2
    divergence = (np.sum(p * np.log2(p / m)) + np.sum(q * np.log2(q / m))) / 2
    return float(math.sqrt(max(0.0, divergence)))


def compare(reference: dict, live: dict, thresholds: dict) -> dict:
    """Per feature: PSI, JS distance, both distributions (for the card), and whether it crossed a
    threshold."""
    out = {}
    for feature in FEATURES:
        bins = bins_of(feature, reference[feature], live[feature])
        expected, actual = _shares(reference[feature], bins), _shares(live[feature], bins)
        value_psi, value_js = psi(expected, actual), js_distance(expected, actual)
        out[feature] = {"psi": round(value_psi, 4), "js": round(value_js, 4),
                        "drifted": value_psi > thresholds["psi"] or value_js > thresholds["js"],
                        "bins": _labels(bins), "reference": expected.round(4).tolist(),
                        "live": actual.round(4).tolist()}
    return out
