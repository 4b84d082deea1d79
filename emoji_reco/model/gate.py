"""The quality gate: whether a candidate's score may replace the champion's (`gate` settings: the metric, its
minimum, the largest regression allowed against the champion)."""
from emoji_reco.settings.sections import GateSettings


def gate(candidate: dict, champion: dict | None, settings: GateSettings) -> dict:
    """Pass when the candidate meets the minimum and is not worse than the champion by more than the
    margin."""
    metric, minimum, margin = settings.metric, settings.min_score, settings.max_regression
    value = candidate[metric]
    reasons = []
    if value < minimum:
        reasons.append(f"{metric} {value:.4f} is below the minimum {minimum:.4f}")
    if champion is not None and value < champion[metric] - margin:
        reasons.append(f"{metric} {value:.4f} is worse than the champion's {champion[metric]:.4f} "
                       f"by more than {margin:.4f}")
    passed = not reasons
    if passed:
        against = f", champion {champion[metric]:.4f}" if champion is not None else ", no champion yet"
        reasons.append(f"{metric} {value:.4f} ≥ minimum {minimum:.4f}{against}")
    return {"passed": passed, "metric": metric, "candidate": value,
            "champion": None if champion is None else champion[metric], "reasons": reasons}
