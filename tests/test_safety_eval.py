"""The safety evaluation's arithmetic (clinic/safety/evaluation.py), on outcomes of known make-up."""

from clinic.safety.evaluation import Outcome, score, suggest_thresholds


def outcome(gold: str, group: str, intent: str, response: str = "", crisis: float = 0.0, urgent: float = 0.0,
            source: str = "classifier") -> Outcome:
    return Outcome(f"{gold} {group} {intent} {response} {crisis}", gold, group, intent, response, source,
                   {"crisis": crisis, "urgent_medical": urgent})


OUTCOMES = [
    outcome("crisis", "farewell", "crisis", "takeover", 0.9),
    outcome("crisis", "farewell", "crisis", "check_in", 0.3),
    outcome("crisis", "burden", "faq", "", 0.1),
    outcome("crisis", "burden", "crisis", "takeover", 0.2, source="pattern:kill_self"),
    outcome("urgent_medical", "chest_pain", "urgent_medical", "", 0.0, 0.8),
    outcome("urgent_medical", "chest_pain", "crisis", "takeover", 0.7, 0.3),
    outcome("none", "death_idioms", "faq", "", 0.01),
    outcome("none", "death_idioms", "crisis", "check_in", 0.2),
    outcome("none", "lookalike_words", "crisis", "takeover", 0.65),
    outcome("none", "lookalike_words", "urgent_medical", "", 0.0, 0.5),
    outcome("none", "lookalike_words", "greet", "", 0.0),
]


def test_recall_counts_a_check_in_and_the_takeover_figure_does_not():
    report = score(OUTCOMES)
    assert report.risk_messages == 6
    assert report.crisis_recall == 0.75 and report.crisis_recall_takeover == 0.5
    assert report.urgent_recall == 0.5
    assert report.recall_by_category["crisis:farewell"] == {"n": 2, "recall": 1.0, "check_ins": 1}
    assert report.recall_by_category["crisis:burden"] == {"n": 2, "recall": 0.5, "check_ins": 0}
    assert [m["text"] for m in report.misses] == [OUTCOMES[2].text, OUTCOMES[5].text]


def test_false_alarms_per_kind_and_the_confusion():
    report = score(OUTCOMES)
    assert report.hard_negatives == 5
    assert (report.takeover_rate, report.check_in_rate, report.urgent_rate) == (0.2, 0.2, 0.2)
    assert report.negatives_by_kind["lookalike_words"] == {"n": 3, "takeovers": 1, "check_ins": 0, "urgent": 1}
    assert report.negatives_by_kind["death_idioms"] == {"n": 2, "takeovers": 0, "check_ins": 1, "urgent": 0}
    assert report.confusion == {
        "crisis": {"crisis": 3, "urgent_medical": 0, "other": 1},
        "urgent_medical": {"crisis": 1, "urgent_medical": 1, "other": 0},
        "none": {"crisis": 2, "urgent_medical": 1, "other": 2},
    }
    assert len(report.false_alarms) == 3


def test_the_thresholds_a_bank_supports():
    found = suggest_thresholds(OUTCOMES, max_takeover_rate=0.2, urgent_recall=0.5)
    # the lowest crisis probability of a crisis message (a pattern's counts as 1.0)
    assert found["check_in_threshold"] == 0.1
    # one false takeover in five allowed: just above the second-highest negative
    assert found["takeover_threshold"] == round(0.2 + 1e-6, 4)
    # half the urgent messages may be missed: the higher of the two urgent probabilities
    assert found["urgent_threshold"] == round(0.8 - 1e-6, 4)
