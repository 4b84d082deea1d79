"""Drift measures in-process, against independent computations: PSI by its formula, Jensen–Shannon distance by
scipy, the bins, their labels and the verdict at the thresholds."""
import math

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from tokenizers import Tokenizer, models, pre_tokenizers

from emoji_reco.monitoring import drift

THRESHOLDS = {"psi": 0.2, "js": 0.1}


def test_psi_and_js_match_their_definitions():
    p, q = np.array([0.5, 0.3, 0.2]), np.array([0.2, 0.3, 0.5])
    assert drift.psi(p, q) == pytest.approx(sum((b - a) * math.log(b / a) for a, b in zip(p, q)))
    assert drift.psi(p, p) == 0.0 and drift.js_distance(p, p) == 0.0
    assert drift.js_distance(p, q) == pytest.approx(jensenshannon(p, q, base=2))
    assert drift.js_distance(np.array([2.0, 0.0 + 1e-12]),
                             np.array([1e-12, 3.0])) == pytest.approx(1.0, abs=1e-6)
    assert drift.js_distance(p * 4, q * 2) == pytest.approx(jensenshannon(p, q, base=2))  # normalised first


def test_categories_are_the_union_and_numbers_bin_at_the_reference_deciles():
    assert drift.bins_of("emoji", ["😂", "🔥"], ["😭", "🔥"]) == sorted({"😂", "😭", "🔥"})
    edges = drift.bins_of("length", list(range(1, 101)), [5])
    np.testing.assert_allclose(edges, np.quantile(range(1, 101), [i / 10 for i in range(1, 10)]))
    assert drift.bins_of("length", [3] * 50, [1, 9]).tolist() == [3.0]  # equal deciles merge
    assert len(drift.bins_of("length", list(range(100)), [], quantiles=4)) == 3


def test_shares_count_each_bin_open_at_both_ends_and_never_zero():
    np.testing.assert_allclose(drift._shares(["a", "b", "b", "z"], ["a", "b", "c"]),
                               [0.25, 0.5, drift.EPSILON])
    edges = np.array([1.0, 2.0])
    np.testing.assert_allclose(drift._shares([0, 1, 1.5, 2, 5], edges), [0.2, 0.4, 0.4])  # 1 and 2 go right
    np.testing.assert_allclose(drift._shares([], ["a"]), [drift.EPSILON])


def test_bin_labels_name_their_ranges():
    assert drift._labels(["😂", "🔥"]) == ["😂", "🔥"]
    assert drift._labels(np.array([1.0, 2.5])) == ["< 1", "1–2.5", "≥ 2.5"]
    assert drift._labels(np.array([])) == ["all"]


def test_compare_reports_each_feature_and_flags_only_what_crosses_a_threshold():
    reference = {"emoji": ["🔥"] * 50 + ["😂"] * 50, "confidence": list(np.linspace(0.2, 0.9, 100)),
                 "length": list(range(100)), "unknown": [0.0] * 100}
    same = drift.compare(reference, reference, THRESHOLDS)
    assert set(same) == set(drift.FEATURES) and not any(f["drifted"] for f in same.values())
    assert same["emoji"] == {"psi": 0.0, "js": 0.0, "drifted": False, "bins": sorted({"🔥", "😂"}),
                             "reference": [0.5, 0.5], "live": [0.5, 0.5]}
    live = {**reference, "emoji": ["🔥"] * 90 + ["😂"] * 10}
    moved = drift.compare(reference, live, THRESHOLDS)
    live_shares = [0.9, 0.1] if sorted({"🔥", "😂"})[0] == "🔥" else [0.1, 0.9]
    expected = drift.psi(np.array([0.5, 0.5]), np.array(live_shares))
    assert moved["emoji"]["psi"] == round(expected, 4) and moved["emoji"]["drifted"]
    assert moved["emoji"]["live"] == live_shares
    assert moved["emoji"]["js"] == round(jensenshannon([0.5, 0.5], live_shares, base=2), 4)
    assert [f for f, v in moved.items() if v["drifted"]] == ["emoji"]
    just_js = drift.compare(reference, live, {"psi": 100.0, "js": 0.1})  # either threshold is enough
    assert just_js["emoji"]["drifted"] and not drift.compare(reference, live,
                                                             {"psi": 100.0, "js": 1.0})["emoji"][
        "drifted"]


def test_features_of_texts_are_the_top_emoji_its_probability_the_words_and_the_unknown_share():
    vocab = {"[UNK]": 0, "[CLS]": 1, "[SEP]": 2, "good": 3, "day": 4}
    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    predictions = [[{"emoji": "🔥", "probability": 0.75}, {"emoji": "😂", "probability": 0.2}],
                   [{"emoji": "😂", "probability": 0.5}]]
    got = drift.features(["good day", "good zebra xylophone day"], predictions, tokenizer)
    assert got["emoji"] == ["🔥", "😂"] and got["confidence"] == [0.75, 0.5] and got["length"] == [2, 4]
    # zebra and xylophone of 4 tokens (no special tokens in this tokenizer)
    assert got["unknown"] == [0.0, 0.5]


def test_the_unknown_share_uses_the_tokenizers_own_unknown_token_and_counts_a_lone_token_whole():
    vocab = {"<unk>": 0, "[UNK]": 1, "good": 2}
    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    got = drift.features(["zebra", "good zebra"], [[{"emoji": "🔥", "probability": 1.0}]] * 2, tokenizer)
    assert got["unknown"] == [1.0, 0.5]


def test_shares_of_a_single_value_and_of_values_below_every_edge():
    np.testing.assert_allclose(drift._shares(["a"], ["a", "b"]), [1.0, drift.EPSILON])
    np.testing.assert_allclose(drift._shares([0, 0], np.array([1.0, 2.0])),
                               [1.0, drift.EPSILON, drift.EPSILON])


def test_a_feature_exactly_at_a_threshold_has_not_drifted_and_shares_are_rounded_to_four_places():
    reference = {"emoji": ["🔥", "😂", "😭"] * 10, "confidence": [0.5] * 30, "length": [3] * 30,
                 "unknown": [0.0] * 30}
    live = {**reference, "emoji": ["🔥"] * 20 + ["😂"] * 10}
    bins = drift.bins_of("emoji", reference["emoji"], live["emoji"])
    expected, actual = drift._shares(reference["emoji"], bins), drift._shares(live["emoji"], bins)
    at = {"psi": drift.psi(expected, actual), "js": drift.js_distance(expected, actual)}
    assert not drift.compare(reference, live, at)["emoji"]["drifted"]
    assert drift.compare(reference, live, {"psi": at["psi"], "js": at["js"] - 1e-9})["emoji"]["drifted"]
    assert drift.compare(reference, live, {"psi": at["psi"] - 1e-9, "js": at["js"]})["emoji"]["drifted"]
    assert drift.compare(reference, live, at)["emoji"]["reference"] == [0.3333] * 3
