"""Scores on a test split, the champion's beside them, and the quality gate (`gate`) applied to both."""
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

from emoji_reco.model.gate import gate
from emoji_reco.settings.sections import GateSettings

HEADLINE = ("top1", "top3", "macro_f1")


def align(probs: np.ndarray, from_emojis: list, to_emojis: list) -> np.ndarray:
    """Re-order a model's class columns to another label list (emojis it doesn't know score 0)."""
    out = np.zeros((len(probs), len(to_emojis)), dtype=probs.dtype)
    index = {e: i for i, e in enumerate(from_emojis)}
    for j, e in enumerate(to_emojis):
        if e in index:
            out[:, j] = probs[:, index[e]]
    return out


def score(probs: np.ndarray, labels: np.ndarray, emojis: list, texts: list | None = None,
          mistakes: int = 10) -> dict:
    """Top-1/top-3 accuracy, macro-F1, per-emoji precision/recall/F1, confusion matrix, most confident
    mistakes."""
    labels = np.asarray(labels)
    ranked = np.argsort(-probs, axis=1)
    predicted = ranked[:, 0]
    classes = list(range(len(emojis)))
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predicted, labels=classes, zero_division=0)
    result = {
        "examples": int(len(labels)),
        "top1": float(np.mean(predicted == labels)),
        "top3": float(np.mean((ranked[:, :3] == labels[:, None]).any(axis=1))),
        "macro_f1": float(f1_score(labels, predicted, labels=classes, average="macro", zero_division=0)),
        "per_emoji": [{"emoji": e, "precision": float(p), "recall": float(r), "f1": float(f),
                       "support": int(s)}
                      for e, p, r, f, s in zip(emojis, precision, recall, f1, support)],
        "confusion": confusion_matrix(labels, predicted, labels=classes).tolist(),
        "emojis": list(emojis),
    }
    if texts is not None:
        wrong = np.flatnonzero(predicted != labels)
        worst = wrong[np.argsort(-probs[wrong, predicted[wrong]])][:mistakes]
        result["confident_mistakes"] = [
            {"text": texts[i], "true": emojis[labels[i]], "predicted": emojis[predicted[i]],
             "probability": round(float(probs[i, predicted[i]]), 4)} for i in worst]
    return result


def score_champion(champion_dir: Path | None, test, emojis: list) -> dict | None:
    """The champion bundle's scores on the candidate's test texts and labels (None when there is no
    champion)."""
    from emoji_reco.model.bundle import Predictor

    if champion_dir is None:
        return None
    rival = Predictor(champion_dir)
    champion = score(align(rival.probabilities(test.text.tolist()), rival.emojis, emojis),
                     test.label.to_numpy(), emojis)
    champion["version"] = Path(champion_dir).name
    return champion


def assess(bundle_dir, test, emojis: list, champion_dir, gate_settings: GateSettings,
           max_int8_top3_drop: float = 0.5) -> dict:
    """Score the candidate bundle and the champion (if any) on the same test texts, and apply the gate; score
    the candidate's int8 form too, and keep the verdict on it in the bundle (`check_int8`)."""
    from emoji_reco.model.bundle import Predictor

    texts, labels = test.text.tolist(), test.label.to_numpy()
    candidate = Predictor(bundle_dir)
    parts = candidate.parts(texts)
    metrics = score(parts["combined"] if parts else candidate.probabilities(texts), labels, emojis, texts)
    if parts:
        scores = {name: score(probs, labels, emojis) for name, probs in parts.items()}
        metrics["parts"] = {"weight": candidate.metadata["ensemble"]["weight"],
                            **{name: {k: s[k] for k in HEADLINE} for name, s in scores.items()}}
        metrics["deciding_words"] = deciding_words(candidate, texts, parts["combined"])
    champion = score_champion(champion_dir, test, emojis)
    return {"metrics": metrics, "champion": champion, "verdict": gate(metrics, champion, gate_settings),
            "int8": check_int8(bundle_dir, texts, labels, emojis, metrics, max_int8_top3_drop)}


def check_int8(bundle_dir, texts: list, labels, emojis: list, metrics: dict, max_drop: float) -> dict | None:
    """The int8 form's scores against the SavedModel's (`metrics`) and whether it may serve: when it loses at
    most `max_drop` points of top-3. Kept in the bundle's metadata (`int8.record_check`), where servers read
    it; None for a bundle without an int8 form."""
    from emoji_reco.errors import ModelError
    from emoji_reco.model import int8
    from emoji_reco.model.bundle import Predictor, read_metadata

    if int8.INT8_FORM not in int8.forms(read_metadata(bundle_dir)):
        return None
    int8.record_check(bundle_dir, None)  # an earlier verdict must not keep the int8 form from being scored
    try:
        quantized = score(Predictor(bundle_dir, runtime="int8").probabilities(texts), labels, emojis)
    except ModelError as exc:
        check = {"passed": False, "reason": f"it could not be scored: {exc}"}
    else:
        drop = round(100 * (metrics["top3"] - quantized["top3"]), 2)
        check = {**{k: quantized[k] for k in HEADLINE}, "top3_drop_points": drop, "passed": drop <= max_drop,
                 "reason": f"top-3 {100 * quantized['top3']:.2f}% against the SavedModel's "
                           f"{100 * metrics['top3']:.2f}%: {drop:.2f} points lost, "
                           f"{'within' if drop <= max_drop else 'more than'} serve.max_int8_top3_drop "
                           f"{max_drop:.2f}"}
    int8.record_check(bundle_dir, check)
    return check


def summary(assessed: dict) -> str:
    """`assess`'s result in a line or two for the log."""
    m, verdict, check = assessed["metrics"], assessed["verdict"], assessed["int8"]
    lines = [f"top1 {m['top1']:.4f} top3 {m['top3']:.4f} macro-F1 {m['macro_f1']:.4f}; "
             f"gate {'passed' if verdict['passed'] else 'failed'}: {'; '.join(verdict['reasons'])}"]
    if check:
        lines.append(f"int8 form {'may serve' if check['passed'] else 'refused, the SavedModel serves'}: "
                     f"{check['reason']}")
    return "\n".join(lines)


def deciding_words(predictor, texts: list[str], probabilities: np.ndarray, top: int = 5) -> dict:
    """Per emoji, the words that most often decide it on these texts: for each text the model gives that emoji
    first, the word that pushed it up most in the n-gram half (model/explain.py), counted."""
    from collections import Counter

    explainer, counts = predictor.explainer, {}
    if explainer is None:
        return {}
    for text, row in zip(texts, probabilities):
        emoji = predictor.emojis[int(np.argmax(row))]
        words = explainer.explain(text, [emoji], top=1)["emojis"][0]["words"]
        if words and words[0]["weight"] > 0:
            counts.setdefault(emoji, Counter())[words[0]["word"].lower()] += 1
    return {e: c.most_common(top) for e, c in counts.items()}


def refusal(verdict: dict) -> str:
    """Why a deploy did not switch, when the recheck against the champion serving then refused it."""
    return "the champion changed before deploy, and against it: " + "; ".join(verdict["reasons"])


@dataclass
class Recheck:
    """The gate again at deploy time, against the champion the endpoint serves then, if that is not the one
    the candidate was evaluated against (another run deployed meanwhile). Called under the endpoint's lock."""

    test: object
    emojis: list
    candidate: dict
    gate_settings: GateSettings
    evaluated_against: str | None

    def __call__(self, champion_dir: Path | None) -> dict | None:
        if (champion_dir.name if champion_dir else None) == self.evaluated_against:
            return None  # the verdict stands
        return gate(self.candidate, score_champion(champion_dir, self.test, self.emojis), self.gate_settings)
