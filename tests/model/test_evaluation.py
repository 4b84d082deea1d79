"""Scores and the quality gate, on numbers small enough to check by hand."""
import numpy as np
import pytest

from emoji_reco.model.evaluation import align, gate, score

GATE = {"metric": "top1", "min_score": 0.3, "max_regression": 0.01}


def test_align_reorders_columns_and_scores_unknown_emojis_zero():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    out = align(probs, ["😂", "😭", "🔥"], ["🔥", "😂", "🤔"])
    assert out.tolist() == [[0.1, 0.7, 0.0], [0.8, 0.1, 0.0]]


def test_score_counts_top1_top3_f1_and_the_confusion_matrix():
    probs = np.array([[0.6, 0.3, 0.1, 0.0], [0.1, 0.2, 0.3, 0.4], [0.5, 0.4, 0.1, 0.0], [0.0, 0.1, 0.2, 0.7]])
    result = score(probs, np.array([0, 2, 1, 3]), ["a", "b", "c", "d"], texts=["w", "x", "y", "z"])
    assert result["top1"] == 0.5 and result["top3"] == 1.0
    assert result["confusion"] == [[1, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 0, 1]]
    assert result["macro_f1"] == pytest.approx(np.mean([2 / 3, 0, 0, 2 / 3]))
    assert [m["text"] for m in result["confident_mistakes"]] == ["y", "x"]  # the surest wrong answer first


def test_the_gate_passes_a_candidate_above_the_minimum_without_a_champion():
    verdict = gate({"top1": 0.4}, None, GATE)
    assert verdict["passed"] and "no champion yet" in verdict["reasons"][0]


def test_the_gate_refuses_a_candidate_worse_than_the_champion_beyond_the_margin():
    worse = gate({"top1": 0.40}, {"top1": 0.42}, GATE)
    assert not worse["passed"] and "worse than the champion's 0.4200 by more than 0.0100" in worse["reasons"][0]
    within = gate({"top1": 0.415}, {"top1": 0.42}, GATE)
    assert within["passed"] and within["champion"] == 0.42


def test_the_gate_gives_every_reason_a_candidate_fails():
    verdict = gate({"top1": 0.1}, {"top1": 0.5}, GATE)
    assert not verdict["passed"] and len(verdict["reasons"]) == 2 and "below the minimum" in verdict["reasons"][0]
