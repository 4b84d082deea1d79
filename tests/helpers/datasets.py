"""Helpers for data tests: `prepare` with test settings, and labeled rows."""
from emoji_reco.data import dataset
from helpers.config import typed_settings

DATA = {"data.min_examples_per_class": 3, "data.validation_fraction": 0.1, "data.test_fraction": 0.1,
        "demo.rows": 0, "demo.seed": 0}


def prepare(path, **changes):
    """`dataset.prepare` on `path` with the test settings and `data.*` changes (keyword per key)."""
    settings = typed_settings(**{**DATA, "data.path": str(path),
                                 **{f"data.{k}": v for k, v in changes.items()}})
    return dataset.prepare(settings.data, settings.demo)


def labeled_rows(n_per_class=10, emojis=("😂", "😭", "🔥")):
    return [(f"text number {i} for {e}", e) for e in emojis for i in range(n_per_class)]


# A few texts to compare answers on (host and image, trained and exported models).
SAMPLE_TEXTS = ["monday again, really?", "best day ever at the beach", "i miss you so much",
                "that was hilarious"]
