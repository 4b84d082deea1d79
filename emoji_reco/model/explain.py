"""Why this emoji: each word's share of the n-gram half's score, exactly.

The n-gram half (`ngrams`) is linear over a text's token and token-pair features, so its score for an emoji is
a sum over them: feature value × weight / the text's norm. A word gets the features of its tokens, and half of
each pair it is in. Weights are taken relative to the mean over the emojis (softmax ignores what all emojis
share), so a positive weight pushed that emoji up against the others and a negative one pushed it down. The
encoder half, which the answer mixes in with weight 1 - w, is not explained here.

Schema, per text: {"ngram_weight": w, "emojis": [{"emoji": "🔥", "words": [{"word": "lit", "weight": 0.83},
...]}, ...]}: for each emoji of the answer, best first, its words by how much they moved it (largest |weight|
first).
"""
from collections import defaultdict

import numpy as np

from emoji_reco.data.cleaning import clean_text, tokenizer_input


class Explainer:
    """Explains a bundle's n-gram half (`Predictor.explainer()`)."""

    def __init__(self, tokenizer, idf: np.ndarray, kernel: np.ndarray, vocab: int, buckets: int, emojis: list,
                 weight: float, max_length: int):
        self.tokenizer, self.idf, self.vocab, self.buckets = tokenizer, idf, vocab, buckets
        self.kernel = kernel - kernel.mean(axis=1, keepdims=True)
        self.index = {e: i for i, e in enumerate(emojis)}
        self.weight, self.max_length = weight, max_length

    def words(self, text: str) -> tuple[list[str], np.ndarray]:
        """The words of a cleaned text, and each word's contribution to each emoji's score ([words + 1,
        emojis]: the last row is what the [CLS]/[SEP] tokens carry; all rows plus the bias sum to the half's
        centered logits)."""
        cleaned = tokenizer_input(clean_text(text), self.max_length)
        encoding = self.tokenizer.encode(cleaned)
        ids, owners = np.asarray(encoding.ids, np.int64), encoding.word_ids
        spans = defaultdict(list)
        for token, word in enumerate(owners):
            if word is not None:
                spans[word].extend(encoding.offsets[token])
        words = sorted(spans)
        slot = {w: i for i, w in enumerate(words)}
        features = np.concatenate([ids, (ids[:-1] * self.vocab + ids[1:]) % self.buckets + self.vocab])
        # who owns each occurrence: (word slot, share); a pair is shared by its two tokens' words
        rest = len(words)  # the special tokens' row
        owners_of = [[(slot[w] if w is not None else rest, 1.0)] for w in owners]
        owners_of += [[(slot[w] if w is not None else rest,
                        0.5) for w in pair] for pair in zip(owners[:-1], owners[1:])]
        unique, counts = np.unique(features, return_counts=True)
        count = dict(zip(unique.tolist(), counts.tolist()))
        values = self.idf[features] * (1 + np.log([count[f] for f in features.tolist()]))
        norm = np.sqrt(sum(self.idf[f] ** 2 * (1 + np.log(n)) ** 2 for f, n in count.items())) or 1.0
        out = np.zeros((len(words) + 1, self.kernel.shape[1]), np.float64)
        for occurrence, feature in enumerate(features.tolist()):
            share = values[occurrence] / count[feature] / norm
            for word, part in owners_of[occurrence]:
                out[word] += part * share * self.kernel[feature]
        text_of = [cleaned[min(spans[w]):max(spans[w])] for w in words]
        return text_of, out

    def explain(self, text: str, emojis: list[str], top: int = 5) -> dict:
        """The words that moved each of `emojis` (the answer's), largest first."""
        words, weights = self.words(text)
        weights = weights[:-1]  # words only
        explained = []
        for emoji in emojis:
            column = weights[:, self.index[emoji]]
            order = np.argsort(-np.abs(column), kind="stable")[:top]
            explained.append({"emoji": emoji,
                              "words": [{"word": words[i], "weight": round(float(column[i]), 4)}
                                                        for i in order if column[i] != 0]})
        return {"ngram_weight": self.weight, "emojis": explained}
