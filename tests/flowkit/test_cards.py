"""Card builders: a card that can't be built says so and never raises into the step."""
import json

from metaflow.cards import Markdown

from emoji_reco.flowkit import cards
from helpers.config import typed_settings


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


class Recorder:
    """Stands in for Metaflow's card process: records whether each refresh re-renders the card or sends
    data."""

    def __init__(self):
        self.modes = []

    def create(self, mode, **_):
        self.modes.append(mode)


def test_the_live_training_card_is_built_once_and_then_only_its_data_changes():
    from metaflow.plugins.cards.component_serializer import CardComponentManager

    creator = Recorder()
    card = CardComponentManager("train-card", {"type": "default"}, creator, logger=print, refresh_interval=0)
    live = cards.TrainCard(card, typed_settings(**{"train.epochs": 2, "train.learning_rate": 5e-5}).train)
    history, steps, ids, layouts = [], [], [], []
    for epoch in (1, 2):
        for at in (0.5, 1.0):
            steps.append({"at": epoch - 1 + at, "loss": 2.0 / epoch, "accuracy": 0.3 * epoch,
                          "examples_per_second": 80})
            live.update(history, steps)
            card.refresh()
            data = card._get_latest_data()
            ids.append(list(data["components"]))
            layouts.append(data["component_update_ts"])
        history.append({"epoch": epoch, "loss": 2.0 / epoch, "accuracy": 0.3 * epoch, "val_accuracy": 0.25
                        * epoch})
    ensemble = {"weight": 0.3, "chosen": "validation log-loss", "seconds": 4.2, "validation": {
        "encoder": {"top1": 0.5, "top3": 0.8, "macro_f1": 0.45},
        "ngram": {"top1": 0.4, "top3": 0.7, "macro_f1": 0.38},
        "combined": {"top1": 0.55, "top3": 0.82, "macro_f1": 0.5}}}
    spread = {"devices": ["/physical_device:GPU:0", "/physical_device:GPU:1"], "workers": 2, "replicas": 4,
              "precision": "mixed_float16", "per_replica_batch": 32, "global_batch": 128,
              "strategy": "MultiWorkerMirrored"}
    live.update(history, steps, final={"seconds": 12.5, "examples_per_second": 81.3, "distribution": spread,
                                       "ensemble": ensemble})
    card.refresh()
    final = card._get_latest_data(final=True)
    assert creator.modes[0] == "render_runtime" and set(creator.modes[1:]) == {"refresh"}  # never rebuilt
    assert all(i == ids[0] for i in ids) and len(set(layouts)) == 1  # the same components, updated in place
    components = list(final["components"].values())
    text = json.dumps(components, ensure_ascii=False)
    assert "examples_per_second**: 81.3" in text and "Training (live)" not in text and "| 2 | 1.0 |" in text
    assert ("MultiWorkerMirrored: 2 worker(s), 4 replica(s) in sync, mixed_float16; batch 32 "
            "per replica, 128 in all" in text)
    assert "weight 0.3 (validation log-loss)" in text and "| combined | 0.55 | 0.82 | 0.5 |" in text
    curves = next(c for c in components if c["type"] == "vegaChart")
    assert {v["metric"] for v in curves["spec"]["data"]["values"]} >= {"loss", "val_accuracy",
                                                                       "loss (running)"}
