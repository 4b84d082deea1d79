"""The quality gate, on numbers small enough to check by hand, at its boundaries."""
from emoji_reco.model.gate import gate
from emoji_reco.settings.sections import GateSettings

GATE = GateSettings(metric="top1", min_score=0.3, max_regression=0.01)


def test_the_gate_passes_a_candidate_above_the_minimum_without_a_champion():
    verdict = gate({"top1": 0.4}, None, GATE)
    assert verdict["passed"] and "no champion yet" in verdict["reasons"][0]


def test_the_gate_refuses_a_candidate_worse_than_the_champion_beyond_the_margin():
    worse = gate({"top1": 0.40}, {"top1": 0.42}, GATE)
    assert (not worse["passed"] and "worse than the champion's "
                                    "0.4200 by more than 0.0100" in worse["reasons"][0])
    within = gate({"top1": 0.415}, {"top1": 0.42}, GATE)
    assert within["passed"] and within["champion"] == 0.42


def test_the_gate_gives_every_reason_a_candidate_fails():
    verdict = gate({"top1": 0.1}, {"top1": 0.5}, GATE)
    assert (not verdict["passed"] and len(verdict["reasons"]) == 2
            and "below the minimum" in verdict["reasons"][0])


def test_the_gate_passes_at_the_boundaries_and_reports_in_full():
    assert gate({"top1": 0.3}, None, GATE) == {"passed": True, "metric": "top1", "candidate": 0.3,
                                               "champion": None,
                                                "reasons": ["top1 0.3000 ≥ minimum 0.3000, no champion yet"]}
    assert gate({"top1": 0.5}, {"top1": 0.5}, GATE)["reasons"] == ["top1 0.5000 ≥ minimum "
                                                                   "0.3000, champion 0.5000"]
    assert gate({"top1": 0.25}, {"top1": 0.25}, GATE) == {
        "passed": False, "metric": "top1", "candidate": 0.25, "champion": 0.25,
        "reasons": ["top1 0.2500 is below the minimum 0.3000"]}
    at_margin = GateSettings(metric="top3", min_score=0.0, max_regression=0.25)
    # exactly the margin worse (exact in binary)
    assert gate({"top3": 0.5}, {"top3": 0.75}, at_margin)["passed"]
    assert not gate({"top3": 0.5}, {"top3": 0.875}, at_margin)["passed"]
