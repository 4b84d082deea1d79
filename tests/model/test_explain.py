"""Why this emoji: the words' shares of the n-gram half's score add up to the score the SavedModel
computes."""
import numpy as np
import pytest

from emoji_reco.model.bundle import Predictor

TEXTS = ["so hyped for tonight", "monday monday again again", "fire 🔥 emoji inside",
         "@someone http://x.co hi",
         "word " * 200, "日本語 mixed with english"]


@pytest.fixture(scope="module")
def predictor(tiny_bundle):
    return Predictor(tiny_bundle[1])


def test_word_shares_sum_exactly_to_the_ngram_halfs_score(predictor):
    explainer = predictor.explainer
    scores = predictor._scores(TEXTS, ("ngram_logits",), "parts")["ngram_logits"]  # the in-graph half
    bias = np.load(predictor.folder / "ngram.npz")["bias"]  # as the SavedModel holds it (test_int8)
    for text, logits in zip(TEXTS, scores):
        words, shares = explainer.words(text)
        assert len(shares) == len(words) + 1  # and the special tokens' row
        np.testing.assert_allclose(shares.sum(axis=0) + bias - bias.mean(), logits - logits.mean(), atol=1e-4)


def test_an_explanation_names_words_of_the_text_for_each_emoji_asked(predictor):
    emojis = predictor.emojis[:3]
    explained = predictor.explainer.explain("monday monday again", emojis, top=2)
    assert [e["emoji"] for e in explained["emojis"]] == emojis and 0 <= explained["ngram_weight"] <= 1
    for entry in explained["emojis"]:
        assert len(entry["words"]) <= 2 and {w["word"] for w in entry["words"]} <= {"monday", "again"}
        weights = [abs(w["weight"]) for w in entry["words"]]
        assert weights == sorted(weights, reverse=True)
