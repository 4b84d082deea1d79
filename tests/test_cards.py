"""Card builders: a card that can't be built says so and never raises into the step."""
from metaflow.cards import Markdown

from emoji_reco import cards


class Collector(list):
    """What a step's `current.card[...]` offers a builder: append and clear."""

    def clear(self):
        del self[:]


def test_a_failing_card_builder_never_raises_and_says_why():
    card = Collector()
    cards.evaluation_card(card, {"top1": 0.5}, None, {"passed": True})  # metrics lack most fields
    assert isinstance(card[-1], Markdown)
    assert "could not be built" in card[-1].render()["source"]


def test_the_conversion_card_totals_its_shards():
    card = Collector()
    records = [{"shard": s, "split": sp, "records": 100, "tokens": 1200, "truncated": 5, "seconds": 2.0}
               for s in (0, 1) for sp in ("train", "test")]
    cards.conversion_card(card, records)
    total = card[-1].render()["source"]
    assert "400 records" in total and "4800 tokens" in total and "5.0%" in total and "100 records/s" in total
