"""MonitorFlow's work: the features of the champion's data and of the captured traffic of a window, the drift
between them (overall and day by day), and the retrain request when it crossed a threshold."""
import random
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

from emoji_reco.errors import EmojiRecoError
from emoji_reco.monitoring import drift, retrain
from emoji_reco.settings import Settings
from emoji_reco.settings.sections import MonitorSettings


def _reference(predictor, reference_rows: int) -> tuple[dict, dict, str]:
    """Features of (a sample of) the champion's run's held-out data (validation and test: texts it never
    trained on, so that its confidence there is what new texts like its data get) as the champion scores it,
    the share of each training label, and that run."""
    from metaflow import Run
    from metaflow.exception import MetaflowNotFound

    from emoji_reco.serving.payloads import top_k

    run = predictor.metadata.get("run")
    try:
        splits, emojis = Run(run).data.splits, Run(run).data.emojis
    except (MetaflowNotFound, AttributeError, KeyError, TypeError) as exc:
        raise EmojiRecoError(f"The serving model's run {run} (its metadata.json) can't be "
                             f"read here, so there is "
                             f"nothing to compare traffic with: {exc}") from exc
    texts = [t for name in ("validation", "test") for t in splits[name].text]
    labels = Counter(emojis[label] for label in splits["train"].label)
    texts = random.Random(0).sample(texts, min(len(texts), reference_rows))
    predictions = top_k(predictor.logits(texts).tolist(), predictor.emojis, 1)
    shares = {e: round(labels[e] / max(1, sum(labels.values())), 4) for e in emojis}
    return drift.features(texts, predictions, predictor.tokenizer), shares, run


def observe(settings: Settings, target, tmp: str, now: datetime | None = None) -> dict:
    """What MonitorFlow compares: the reference, and the captured traffic of the last `monitor.window_days`
    days from `serve.capture.uri`, per day."""
    from emoji_reco.model.bundle import Predictor
    from emoji_reco.serving import capture

    uri = settings.serve.capture.uri
    if not uri:
        raise EmojiRecoError("No captured traffic to watch: set serve.capture.uri in the config "
                             "(or pass --capture), "
                             "where the endpoint's captured traffic is.")
    champion = target.champion(tmp)
    if champion is None:
        raise EmojiRecoError("No model serves yet, so there is no training data to compare traffic with.")
    predictor = Predictor(champion)
    reference, labels, run = _reference(predictor, settings.monitor.reference_rows)
    until = now or datetime.now(UTC)
    since = until - timedelta(days=settings.monitor.window_days)
    days = defaultdict(lambda: ([], []))
    for when, texts, predictions in capture.read(uri, since, until):
        day = days[when.strftime("%Y-%m-%d")]
        day[0].extend(texts)
        day[1].extend(predictions)
    live = {day: drift.features(texts, predictions,
                                predictor.tokenizer) for day, (texts, predictions) in days.items()}
    return {"reference": reference, "labels": labels, "run": run, "data": predictor.metadata.get("data")
            or "",
            "capture": uri, "since": since.isoformat(),
            "until": until.isoformat(), "days": dict(sorted(live.items()))}


def judge(observed: dict, monitor: MonitorSettings) -> dict:
    """Drift of the whole window and of each day, and whether to retrain (a threshold crossed on enough
    traffic)."""
    thresholds = {"psi": monitor.psi_threshold, "js": monitor.js_threshold}
    window = {f: [v for day in observed["days"].values() for v in day[f]] for f in drift.FEATURES}
    records = len(window["emoji"])
    result = {"texts": records, "thresholds": thresholds, "min_texts": monitor.min_texts,
              "features": drift.compare(observed["reference"], window, thresholds) if records else {},
              "series": [{"day": day, "feature": f,
                          "psi": v["psi"]} for day, values in observed["days"].items()
                         for f, v in drift.compare(observed["reference"], values, thresholds).items()]}
    drifted = [f for f, v in result["features"].items() if v["drifted"]]
    result["drifted"] = drifted if records >= monitor.min_texts else []
    result["verdict"] = (f"too little traffic to judge ({records} texts, at least {monitor.min_texts})"
                         if records < monitor.min_texts else
                         f"drifted: {', '.join(drifted)}" if drifted else "no drift")
    return result


def act(settings: Settings, verdict: dict, observed: dict) -> dict | None:
    """Ask for a retraining run when the traffic drifted (on `monitor.retrain_data`, else the champion's
    data)."""
    if not verdict["drifted"]:
        return None
    data = settings.monitor.retrain_data or observed["data"]
    return retrain.request(settings, data, f"drift in {', '.join(verdict['drifted'])}")
