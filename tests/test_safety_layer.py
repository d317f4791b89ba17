"""The safety layer's decision (clinic/safety/layer.py) with stand-in classifier scores, and the
banks it is trained and measured on (clinic/safety/bank.py)."""

from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest

from clinic.safety import bank
from clinic.safety.classifier import Scores, label_of
from clinic.safety.crisis_patterns import CrisisDetector
from clinic.safety.layer import SafetyLayer, Thresholds
from clinic.safety.verdict import CHECK_IN, TAKEOVER, verdict_of

ROOT = Path(__file__).resolve().parent.parent
SAFETY_DATA = ROOT / "data" / "safety"
THRESHOLDS = Thresholds(takeover=0.6, takeover_sentence=0.9, check_in=0.15, check_in_sentence=0.3, urgent=0.5,
                        footer=0.05, distress=0.5, settled=0.05)


class StandIn:
    """Scores by text, as SafetyModel gives them."""

    def __init__(self, by_text: Dict[str, Tuple[float, float, float]], category: str = "passive_death_wish",
                 urgent_category: str = "chest_pain") -> None:
        self.by_text = by_text
        self.category = category
        self.urgent_category = urgent_category

    def score(self, text: str, embedding: object = None) -> Scores:
        crisis, urgent, distress = self.by_text.get(text, (0.0, 0.0, 0.0))
        return Scores(crisis, urgent, distress, self.category, self.urgent_category)

    def score_parts(self, parts: List[Tuple[str, object]]) -> Optional[Scores]:
        scores = [self.score(t) for t, _ in parts]
        return max(scores, key=lambda s: max(s.crisis, s.urgent_medical)) if scores else None


@pytest.fixture(scope="module")
def detector(nlp):
    return CrisisDetector(nlp.vocab)


def judge(nlp, detector, text: str, scores: Dict[str, Tuple[float, float, float]], parts: List[str] = (), **kw):
    layer = SafetyLayer(StandIn(scores, **kw), detector, THRESHOLDS)
    return layer.judge(text, nlp(text.lower()), None, [(p, None) for p in parts], intent="faq")


def test_a_first_person_statement_is_a_takeover_whatever_the_classifier_says(nlp, detector):
    v = judge(nlp, detector, "i want to kill myself", {"i want to kill myself": (0.01, 0, 0)})
    assert (v.outcome, v.response, v.source) == ("crisis", TAKEOVER, "pattern:kill_self")
    assert v.category == "active_ideation" and v.intent == "faq"


def test_a_mention_is_left_to_the_classifier_and_gets_the_footer(nlp, detector):
    text = "my brother died by suicide, would ketamine help my depression"
    v = judge(nlp, detector, text, {text: (0.02, 0, 0.7)})
    assert (v.outcome, v.footer, v.distress) == ("none", True, True)
    v = judge(nlp, detector, "i feel suicidal", {"i feel suicidal": (0.95, 0, 0)})
    assert (v.outcome, v.response, v.source) == ("crisis", TAKEOVER, "classifier")


@pytest.mark.parametrize("crisis, distress, settled", [(0.0, 0.0, True), (0.049, 0.049, True), (0.05, 0.0, False),
                                                       (0.0, 0.05, False), (0.1, 0.3, False)])
def test_only_a_message_with_no_sign_of_risk_or_struggle_is_settled(nlp, detector, crisis, distress, settled):
    text = "how much is the monthly plan"
    assert judge(nlp, detector, text, {text: (crisis, 0, distress)}).settled is settled


def test_a_risk_outcome_or_a_mention_is_never_settled(nlp, detector):
    assert judge(nlp, detector, "i want to kill myself", {}).settled is False
    text = "can you overdose on ketamine"
    assert judge(nlp, detector, text, {text: (0.0, 0, 0)}).footer is True
    assert judge(nlp, detector, text, {text: (0.0, 0, 0)}).settled is False
    text = "my chest hurts after the dose"
    assert judge(nlp, detector, text, {text: (0.0, 0.9, 0)}).settled is False
    assert judge(nlp, detector, "2", {}).settled is True


@pytest.mark.parametrize("crisis, response", [(0.61, TAKEOVER), (0.6, TAKEOVER), (0.59, CHECK_IN), (0.15, CHECK_IN), (0.149, None)])
def test_the_thresholds_decide_takeover_check_in_or_nothing(nlp, detector, crisis, response):
    text = "i'm just so tired of all of it"
    v = judge(nlp, detector, text, {text: (crisis, 0, 0)})
    assert v.response == response
    assert v.outcome == ("crisis" if response else "none")


def test_a_long_messages_riskiest_sentence_counts_against_its_own_thresholds(nlp, detector):
    parts = ["How much does it cost?", "I have the bottle next to me.", "Do you take insurance?"]
    whole = " ".join(parts)
    v = judge(nlp, detector, whole, {whole: (0.1, 0, 0), parts[1]: (0.95, 0, 0)}, parts)
    assert (v.response, v.source) == (TAKEOVER, "classifier:sentence")
    v = judge(nlp, detector, whole, {whole: (0.1, 0, 0), parts[1]: (0.7, 0, 0)}, parts)
    assert (v.response, v.source) == (CHECK_IN, "classifier:sentence")  # 0.7: a whole's takeover, a sentence's check-in
    v = judge(nlp, detector, whole, {whole: (0.1, 0, 0), parts[1]: (0.2, 0, 0)}, parts)
    assert v.outcome == "none" and v.scores["sentence_crisis"] == 0.2


def test_an_urgent_symptom_unless_the_risk_is_a_crisis(nlp, detector):
    text = "my chest hurts after my troche"
    v = judge(nlp, detector, text, {text: (0.2, 0.8, 0)})
    assert (v.outcome, v.category, v.ingestion) == ("urgent_medical", "chest_pain", False)
    v = judge(nlp, detector, text, {text: (0.7, 0.8, 0)})
    assert v.outcome == "crisis"
    v = judge(nlp, detector, "my toddler ate a lozenge", {"my toddler ate a lozenge": (0, 0.9, 0)},
              urgent_category="child_or_pet_ingestion")
    assert v.ingestion


@pytest.mark.parametrize("category, now, person", [
    ("overdose_taken", True, False), ("means_at_hand", True, False), ("danger_from_another", True, True),
    ("passive_death_wish", False, False), ("lethal_amount_question", False, False)])
def test_happening_now_and_danger_from_a_person(nlp, detector, category, now, person):
    text = "it is what it is"
    v = judge(nlp, detector, text, {text: (0.9, 0, 0)}, category=category)
    assert (v.now, v.danger_from_person) == (now, person)


def test_a_pattern_for_danger_from_a_person(nlp, detector):
    v = judge(nlp, detector, "my boyfriend is choking me", {})
    assert v.response == TAKEOVER and v.now and v.danger_from_person


@pytest.mark.parametrize("text", ["2", "😀😀😀", "...", "a!", "25"])
def test_the_classifier_does_not_judge_a_message_without_words(nlp, detector, text):
    v = judge(nlp, detector, text, {text: (0.99, 0.99, 0.99)})
    assert (v.outcome, v.scores) == ("none", {})
    v = judge(nlp, detector, "kms", {"kms": (0.0, 0, 0)})
    assert v.response == TAKEOVER  # three letters, and the pattern's


def test_no_model_means_the_patterns_alone(nlp, detector):
    layer = SafetyLayer(None, detector, THRESHOLDS)
    assert layer.judge("kms", nlp("kms")).response == TAKEOVER
    assert layer.judge("what does it cost", nlp("what does it cost")).outcome == "none"


def test_the_verdict_travels_through_the_parse(nlp, detector):
    text = "i have been saving my troches"
    v = judge(nlp, detector, text, {text: (0.99, 0, 0)}, category="stockpiling")
    again = verdict_of({"safety": v.as_dict()})
    assert again == v and again.check_in is False
    assert verdict_of({}).outcome == "none" and verdict_of({"safety": "nonsense"}).outcome == "none"


# --- the banks ------------------------------------------------------------------------------

def training_banks() -> Tuple[List[bank.Example], List[bank.Example]]:
    risk = [e for f in sorted(SAFETY_DATA.glob("*.yml")) if f.name.startswith(("crisis", "urgent"))
            for e in bank.load_risk_examples(f)]
    return risk, bank.load_training_negatives(SAFETY_DATA)


def test_the_training_banks_are_large_and_named():
    risk, negatives = training_banks()
    crisis = [e for e in risk if e.outcome == "crisis"]
    categories = {e.group for e in crisis}
    assert len(crisis) >= 600 and len(categories) >= 15 and "" not in categories
    assert len({e.group for e in risk if e.outcome == "urgent_medical"}) >= 11
    assert len(negatives) >= 600 and len({e.group for e in negatives}) >= 10


@pytest.mark.parametrize("name", ["validation_bank.yml", "test_bank.yml"])
def test_the_evaluation_banks_share_no_message_with_the_training_banks(name):
    path = ROOT / "tests" / "safety" / name
    if not path.exists():
        pytest.skip(f"{name} is not written yet")
    from clinic.nlu_eval import load_examples

    risk, negatives = training_banks()
    ordinary = [t for f in sorted((ROOT / "data").rglob("*.yml")) for t, _ in load_examples(f)]
    trained = [e.text for e in risk + negatives] + ordinary
    evaluated = [e.text for e in bank.load_bank(path)]
    assert bank.overlap(trained, evaluated) == []
    assert len(evaluated) == len(set(map(bank.normalised, evaluated)))


def test_the_test_bank_meets_the_issues_sizes():
    path = ROOT / "tests" / "safety" / "test_bank.yml"
    if not path.exists():
        pytest.skip("test_bank.yml is not written yet")
    examples = bank.load_bank(path)
    assert sum(e.outcome in bank.RISK_INTENTS for e in examples) >= 300
    assert sum(e.outcome == bank.NONE for e in examples) >= 300
    assert any(len(e.text) >= 1000 for e in examples if e.outcome == "crisis")


def test_fine_labels():
    assert label_of(bank.Example("x", "crisis", "farewell")) == "crisis:farewell"
    assert label_of(bank.Example("x", "none", "death_idioms")) == "none:death_idioms"
    assert label_of(bank.Example("x", "none", "")) == "none"


def test_a_bank_with_an_unknown_outcome_is_refused(tmp_path):
    (tmp_path / "b.yml").write_text("safety_bank:\n- outcome: maybe\n  kind: x\n  examples: |\n    - hi\n")
    with pytest.raises(ValueError):
        bank.load_bank(tmp_path / "b.yml")
    (tmp_path / "r.yml").write_text('nlu:\n- intent: greet\n  examples: |\n    - hi\n')
    with pytest.raises(ValueError):
        bank.load_risk_examples(tmp_path / "r.yml")


def test_the_fingerprint_follows_the_contents(tmp_path):
    f = tmp_path / "hard_negatives.yml"
    f.write_text("safety_negatives: []\n")
    before = bank.fingerprint([f])
    f.write_text("safety_negatives: [{kind: a, examples: '- x'}]\n")
    assert bank.fingerprint([f]) != before
