"""Metaflow cards for EmojiFlow's steps. A card that fails to build never fails the step."""
import functools
import traceback

from metaflow.cards import Markdown, Table, VegaChart

from emoji_reco.data.text import display_emoji as show
from emoji_reco.settings.sections import TrainSettings

# Emoji categories on an x axis: upright (Vega-Lite turns nominal labels 90° by default) and large enough to
# read.
EMOJI_AXIS = {"labelAngle": 0, "labelFontSize": 16, "labelPadding": 4}


def safe(builder):
    """Run a card builder; on error, say so in the log and in the card, and carry on."""

    @functools.wraps(builder)
    def wrapper(card, *args, **kwargs):
        try:
            builder(card, *args, **kwargs)
        except Exception as exc:  # a broken card must never cost a run
            print(f"card {builder.__name__} could not be built: {exc}\n{traceback.format_exc()}", flush=True)
            try:
                card.append(Markdown(f"**This card could not be built:** `{exc}`"))
            except Exception:
                pass

    return wrapper


def _bar(values: list[dict], x: str, y: str, color: str | None = None, title: str = "") -> VegaChart:
    encoding = {"x": {"field": x, "type": "nominal", "sort": None, "axis": EMOJI_AXIS},
                "y": {"field": y, "type": "quantitative"}}
    if color:
        encoding["color"] = {"field": color, "type": "nominal"}
        encoding["xOffset"] = {"field": color}
    return VegaChart({"$schema": "https://vega.github.io/schema/vega-lite/v5.json", "title": title,
                      "width": 480,
                      "data": {"values": values}, "mark": "bar", "encoding": encoding})


@safe
def data_card(card, report: dict, splits: dict, emojis: list, samples: int = 3) -> None:
    card.append(Markdown(f"# Data\nSource: `{report['source']}` ({report['shape']} shape)\n\n"
                         f"Rows read **{report['rows_read']}**, kept **{report['rows_kept']}**."))
    dropped = report["dropped"] or {"(none)": 0}
    card.append(Markdown("## Dropped rows by reason"))
    card.append(Table([[reason, n] for reason, n in dropped.items()], headers=["reason", "rows"]))
    counts = [{"emoji": show(e), "split": split, "rows": n}
              for split, per in report["splits"].items() for e, n in per.items()]
    card.append(_bar(counts, "emoji", "rows", color="split", title="Class distribution per split"))
    lengths = [{"words": min(len(t.split()), 60)} for t in splits["train"].text]
    card.append(VegaChart({"$schema": "https://vega.github.io/schema/vega-lite/v5.json", "width": 480,
                           "title": "Text length (words, train split)", "data": {"values": lengths},
                           "mark": "bar",
                           "encoding": {"x": {"field": "words", "bin": {"maxbins": 30},
                                              "type": "quantitative"},
                                        "y": {"aggregate": "count", "type": "quantitative"}}}))
    train = splits["train"]
    rows = [[show(emojis[label]),
             " · ".join(group.text.head(samples))] for label, group in train.groupby("label")]
    card.append(Markdown("## Sample of cleaned texts"))
    card.append(Table(rows, headers=["emoji", f"first {samples} training texts"]))


def _curves(history: list[dict], steps: list[dict]) -> dict:
    values = [{"epoch": h["epoch"], "metric": k, "value": h[k]} for h in history
              for k in ("loss", "val_loss", "accuracy", "val_accuracy") if k in h]
    values += [{"epoch": s["at"], "metric": f"{k} (running)",
                "value": s[k]} for s in steps for k in ("loss", "accuracy")]
    return {"$schema": "https://vega.github.io/schema/vega-lite/v5.json", "width": 480,
            "title": "Training curves", "data": {"values": values}, "mark": {"type": "line", "point": True},
            "encoding": {"x": {"field": "epoch", "type": "quantitative"},
                         "y": {"field": "value", "type": "quantitative"},
                         "color": {"field": "metric", "type": "nominal"}}}


def _markdown_table(rows: list[list], headers: list[str]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + " --- |" * len(headers)]
    return "\n".join(lines + ["| " + " | ".join(str(v) for v in row) + " |" for row in rows])


class TrainCard:
    """The `train` card, built once; `update` changes its components' data in place, so a refresh sends new
    data rather than a new card (the Metaflow UI then updates the card instead of reloading it)."""

    def __init__(self, card, train: TrainSettings):
        self.title = Markdown("# Training (live)")
        self.status = Markdown("Waiting for the first training steps…")
        self.curves = VegaChart(_curves([], []))
        self.epochs = Markdown("")
        self.final = Markdown("")
        for component in (self.title, self.status, Table([[k, str(v)] for k, v in train.model_dump().items()],
                                                         headers=["hyperparameter", "value"]),
                          self.curves, self.epochs, self.final):
            card.append(component)

    def update(self, history: list[dict], steps: list[dict], final: dict | None = None) -> None:
        try:
            self.curves.update(_curves(history, steps))
            if steps:
                last = steps[-1]
                self.status.update(f"At epoch **{last['at']:.2f}**: running loss {last['loss']:.4f}, "
                                   f"accuracy {last['accuracy']:.4f}, "
                                   f"{last['examples_per_second']} examples/s.")
            if history:
                keys = list(history[-1])
                self.epochs.update(_markdown_table([[h.get(k) for k in keys] for h in history], keys))
            if final:
                self.title.update("# Training")
                self.status.update("Done.")
                lines = [f"- **{k}**: {v}" for k, v in final.items() if k not in ("ensemble", "distribution")]
                if spread := final.get("distribution"):
                    lines.append(f"- **devices**: {', '.join(spread['devices'])} ({spread['strategy']}: "
                                 f"{spread['workers']} worker(s), {spread['replicas']} replica(s) in sync, "
                                 f"{spread['precision']}; batch {spread['per_replica_batch']} per replica, "
                                 f"{spread['global_batch']} in all)")
                if ensemble := final.get("ensemble"):
                    lines.append(f"\n## The n-gram half\nFitted in {ensemble['seconds']} s; weight "
                                 f"{ensemble['weight']} ({ensemble['chosen']}). On the validation split:\n")
                    names = ("top1", "top3", "macro_f1")
                    lines.append(_markdown_table([[part, *(scores[n] for n in names)]
                                                  for part, scores in ensemble["validation"].items()],
                                                  ["", *names]))
                self.final.update("\n".join(lines))
        except Exception as exc:  # a broken card must never cost a run
            print(f"the training card could not be updated: {exc}\n{traceback.format_exc()}", flush=True)


def _confusion(metrics: dict) -> VegaChart:
    emojis = [show(e) for e in metrics["emojis"]]
    values = [{"true": emojis[i], "predicted": emojis[j], "count": n}
              for i, row in enumerate(metrics["confusion"]) for j, n in enumerate(row)]
    return VegaChart({"$schema": "https://vega.github.io/schema/vega-lite/v5.json",
                      "title": "Confusion matrix",
                      "width": 360, "height": 360, "data": {"values": values},
                      "layer": [{"mark": "rect", "encoding": {
                                    "x": {"field": "predicted", "type": "nominal", "sort": emojis,
                                          "axis": EMOJI_AXIS},
                                    "y": {"field": "true", "type": "nominal", "sort": emojis,
                                          "axis": {"labelFontSize": 16}},
                                    "color": {"field": "count", "type": "quantitative"}}},
                                {"mark": "text", "encoding": {
                                    "x": {"field": "predicted", "type": "nominal", "sort": emojis},
                                    "y": {"field": "true", "type": "nominal", "sort": emojis},
                                    "text": {"field": "count", "type": "quantitative"}}}]})


@safe
def evaluation_card(card, metrics: dict, champion: dict | None, verdict: dict, int8_check: dict | None = None
                    ) -> None:
    card.append(Markdown("# Evaluation on the test split"))
    names = ("top1", "top3", "macro_f1")
    card.append(Table([[n, f"{metrics[n]:.4f}", "—" if champion is None
                        else f"{champion[n]:.4f}"] for n in names],
                      headers=["metric", "candidate", "champion"]))
    if parts := metrics.get("parts"):
        weight = parts["weight"]
        card.append(Markdown(f"## The combined model and its parts\nScores mix as (1 − w) · encoder + w · "
                             f"n-gram, "
                             f"w = {weight} (chosen on the validation split)."))
        card.append(Table([[label, share]
                           + [f"{parts[name][n]:.4f}" for n in names] for name, label, share in (
            ("encoder", "fine-tuned encoder", f"{1 - weight:.2f}"),
            ("ngram", "n-gram TF-IDF", f"{weight:.2f}"),
            ("combined", "combined (served)", "1"))], headers=["model", "weight", *names]))
    card.append(Markdown(f"## Quality gate: **{'passed' if verdict['passed'] else 'failed'}**\n"
                         + "\n".join(f"- {r}" for r in verdict["reasons"])))
    if int8_check:
        _int8_section(card, metrics, int8_check)
    card.append(_confusion(metrics))
    card.append(Markdown("## Per emoji"))
    card.append(Table([[show(r["emoji"]), f"{r['precision']:.3f}", f"{r['recall']:.3f}", f"{r['f1']:.3f}",
                        r["support"]]
                       for r in metrics["per_emoji"]],
                       headers=["emoji", "precision", "recall", "F1", "support"]))
    if metrics.get("deciding_words"):
        card.append(Markdown("## Why this emoji: the words that most often decide it\nOn the test texts the "
                             "model "
                             "gives an emoji first, the word that pushed it up most in the n-gram "
                             "half, and how often."))
        card.append(Table([[show(e), " · ".join(f"{w} ({n})" for w, n in words)]
                           for e, words in sorted(metrics["deciding_words"].items())],
                           headers=["emoji", "words"]))
    if metrics.get("confident_mistakes"):
        card.append(Markdown("## Most confident mistakes"))
        card.append(Table([[m["text"], show(m["true"]), show(m["predicted"]), m["probability"]]
                           for m in metrics["confident_mistakes"]],
                          headers=["text", "true", "predicted", "probability"]))


def _int8_section(card, metrics: dict, check: dict) -> None:
    """The int8 form beside the float32 SavedModel, and which one this version serves."""
    names = ("top1", "top3", "macro_f1")
    served = "int8 (with serve.runtime int8 or auto)" if check["passed"] else "its float32 SavedModel"
    card.append(Markdown(f"## The int8 form\nThis version serves **{served}**: {check['reason']}."))
    rows = [["float32 SavedModel", *(f"{metrics[n]:.4f}" for n in names)]]
    if "top3" in check:
        rows.append(["int8 LiteRT", *(f"{check[n]:.4f}" for n in names)])
    card.append(Table(rows, headers=["form", *names]))


@safe
def deployment_card(card, deployment: dict) -> None:
    card.append(Markdown("# Deployment"))
    card.append(Table([[k, str(v)] for k, v in deployment.items() if k != "smoke"], headers=["", ""]))
    if deployment.get("smoke"):
        card.append(Markdown("## Smoke predictions"))
        card.append(Table([[t, " ".join(f"{show(a['emoji'])} {a['probability']:.2f}" for a in ans)]
                           for t, ans in deployment["smoke"]], headers=["text", "top emojis"]))


@safe
def conversion_card(card, records: list[dict]) -> None:
    card.append(Markdown("# Conversion to TFRecords"))
    rows = [[r["shard"], r["split"], r["records"], r["tokens"],
             f"{r['truncated'] / max(1, r['records']):.1%}",
             r["seconds"], round(r["records"] / max(r["seconds"], 1e-3))] for r in records]
    card.append(Table(rows, headers=["shard", "split", "records", "tokens", "at max length (truncated)",
                                     "seconds",
                                     "records/s"]))
    per_shard = {}
    for r in records:
        per_shard[r["shard"]] = per_shard.get(r["shard"], 0.0) + r["seconds"]
    total, tokens = sum(r["records"] for r in records), sum(r["tokens"] for r in records)
    slowest = max(per_shard.values())
    card.append(Markdown(
        f"**Total:** {total} records, {tokens} tokens ({tokens / max(1, total):.1f} per record), "
        f"{sum(r['truncated'] for r in records) / max(1, total):.1%} at the maximum length. "
        f"{len(per_shard)} shards in parallel, slowest {slowest:.1f} s: "
        f"**{total / max(slowest, 1e-3):.0f} records/s**."))


@safe
def summary_card(card, metrics: dict, deployment: dict, history: list[dict]) -> None:
    card.append(Markdown(
        f"# Summary\nTest top-1 **{metrics['top1']:.1%}**, top-3 **{metrics['top3']:.1%}**, macro-F1 "
        f"**{metrics['macro_f1']:.3f}** on {metrics['examples']} texts.\n\n"
        + (f"Deployed version `{deployment['version']}` to endpoint `{deployment['endpoint']}` at "
           f"`{deployment['path']}`.\n\nAsk it: `{deployment['query']}`" if deployment["deployed"]
           else f"Not deployed: {deployment['reason']}")))
    if history:
        card.append(Markdown("## This flow's runs"))
        card.append(VegaChart({
            "$schema": "https://vega.github.io/schema/vega-lite/v5.json", "width": 480,
            "title": "Test top-1 by run",
            "data": {"values": [{**h, "deployed": "deployed" if h["deployed"]
                                 else "not deployed"} for h in history]},
            "mark": {"type": "point", "filled": True, "size": 80},
            "encoding": {"x": {"field": "created_at", "type": "temporal", "title": "run started"},
                         "y": {"field": "top1", "type": "quantitative"},
                         "color": {"field": "deployed", "type": "nominal"},
                         "tooltip": [{"field": "run"}, {"field": "top1"}, {"field": "verdict"}]}}))
        card.append(Table([[h["run"], h["created_at"], f"{h['top1']:.4f}", f"{h['top3']:.4f}", h["verdict"],
                            "yes" if h["deployed"] else "no"] for h in history],
                          headers=["run", "started", "top-1", "top-3", "gate", "deployed"]))


@safe
def drift_card(card, observed: dict, drift: dict, retrain: dict | None) -> None:
    """MonitorFlow's: the verdict, each feature's distributions side by side, and its PSI day by day."""
    action = ("nothing asked for" if not retrain else
              f"retraining asked for through {retrain['event']} (data `{retrain['data']}`)"
              if retrain["event"] else
              f"retraining needed: run `{retrain['run']}`")
    card.append(Markdown(f"# Drift: {drift['verdict']}\n{drift['texts']} texts captured in "
                         f"`{observed['capture']}` "
                         f"from {observed['since'][:16]} to {observed['until'][:16]}, against the data of "
                         f"`{observed['run']}` as the serving model scores it. **{action}**.\n\n"
                         f"Thresholds: PSI > {drift['thresholds']['psi']} or Jensen–Shannon distance > "
                         f"{drift['thresholds']['js']}, on at least {drift['min_texts']} texts."))
    card.append(Table([[f, v["psi"], v["js"], "yes" if v["drifted"]
                        else "no"] for f, v in drift["features"].items()],
                      headers=["feature", "PSI", "JS distance", "over a threshold"]))
    for feature, v in drift["features"].items():
        values = [{"bin": show(b) if feature == "emoji" else b, "sample": name, "share": share}
                  for name in ("reference", "live") for b, share in zip(v["bins"], v[name])]
        if feature == "emoji":
            values += [{"bin": show(e), "sample": "training labels",
                        "share": s} for e, s in observed["labels"].items()]
        card.append(_bar(values, "bin", "share", color="sample", title=f"{feature}: reference and live"))
    if drift["series"]:
        card.append(VegaChart({"$schema": "https://vega.github.io/schema/vega-lite/v5.json", "width": 480,
                               "title": "PSI per day", "data": {"values": drift["series"]},
                               "mark": {"type": "line", "point": True},
                               "encoding": {"x": {"field": "day", "type": "ordinal"},
                                            "y": {"field": "psi", "type": "quantitative"},
                                            "color": {"field": "feature", "type": "nominal"}}}))
