"""Helpers for data tests: `prepare` with test settings, and labeled rows."""
from emoji_reco.data import dataset

SETTINGS = {"path": "", "format": "auto", "shape": "auto", "text_column": None, "label_column": None,
            "labels": None, "top_emojis": 10, "min_examples_per_class": 3, "sample": None,
            "validation_fraction": 0.1, "test_fraction": 0.1, "seed": 42}


def prepare(path, **overrides):
    return dataset.prepare({**SETTINGS, "path": str(path), **overrides}, {"rows": 0, "seed": 0})


def labeled_rows(n_per_class=10, emojis=("😂", "😭", "🔥")):
    return [(f"text number {i} for {e}", e) for e in emojis for i in range(n_per_class)]


# A few texts to compare answers on (host and image, trained and exported models).
SAMPLE_TEXTS = ["monday again, really?", "best day ever at the beach", "i miss you so much", "that was hilarious"]
