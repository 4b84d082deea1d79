"""Scores on numbers small enough to check by hand."""
import numpy as np
import pytest

from emoji_reco.model.evaluation import align, score


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
