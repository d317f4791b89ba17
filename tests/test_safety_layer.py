"""The safety layer's decision (clinic/safety/layer.py) with stand-in classifier scores, and the
banks it is trained and measured on (clinic/safety/bank.py)."""

import dataclasses
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest
import yaml

from clinic.safety import bank
from clinic.safety.classifier import Scores, label_of
from clinic.safety.crisis_patterns import PATTERNS, STATEMENT, CrisisDetector, CrisisMatch
from clinic.safety.layer import RULE_CATEGORIES, SafetyLayer, Thresholds
from clinic.safety.verdict import CHECK_IN, TAKEOVER, SafetyVerdict, verdict_of

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
    v = judge(nlp, detector, "my sister says she feels suicidal", {"my sister says she feels suicidal": (0.95, 0, 0)})
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


def test_the_data_and_evaluation_files_read_as_yaml_safe_load_reads_them():
    files = sorted((ROOT / "data").rglob("*.yml")) + sorted((ROOT / "tests").rglob("*.yml"))
    assert len(files) > 100
    for path in files:
        assert bank.read_yaml(path) == (yaml.safe_load(path.read_text(encoding="utf-8")) or {}), path


EVALUATION_BANKS = ["validation_bank.yml", "test_bank.yml", "test_bank_v2.yml", "test_bank_v3.yml", "test_bank_v4.yml",
                    "test_bank_v5.yml", "test_bank_v6.yml", "test_bank_v7.yml", "test_bank_v8.yml", "test_bank_v9.yml",
                    "test_bank_v10.yml", "test_bank_v11.yml", "test_bank_v12.yml",
                    "test_bank_v13.yml", "test_bank_v14.yml", "test_bank_v15.yml", "test_bank_v16.yml"]


@pytest.mark.parametrize("name", EVALUATION_BANKS)
def test_the_evaluation_banks_share_no_message_with_the_training_banks(name):
    path = ROOT / "tests" / "safety" / name
    from clinic.nlu.evaluation import load_examples

    risk, negatives = training_banks()
    ordinary = [t for f in sorted((ROOT / "data").rglob("*.yml")) for t, _ in load_examples(f)]
    trained = [e.text for e in risk + negatives] + ordinary
    evaluated = [e.text for e in bank.load_bank(path)]
    assert bank.overlap(trained, evaluated) == []
    assert len(evaluated) == len(set(map(bank.normalised, evaluated)))


@pytest.mark.parametrize("name, longest", [("test_bank.yml", 1000), ("test_bank_v2.yml", 800), ("test_bank_v3.yml", 1000),
                                           ("test_bank_v4.yml", 1000), ("test_bank_v5.yml", 900),
                                           ("test_bank_v6.yml", 1000), ("test_bank_v7.yml", 1000),
                                           ("test_bank_v8.yml", 1000), ("test_bank_v9.yml", 1000),
                                           ("test_bank_v10.yml", 1000), ("test_bank_v11.yml", 1000),
                                           ("test_bank_v12.yml", 900), ("test_bank_v13.yml", 900),
                                           ("test_bank_v14.yml", 800), ("test_bank_v15.yml", 500),
                                           ("test_bank_v16.yml", 700)])
def test_each_test_bank_meets_the_issues_sizes(name, longest):
    examples = bank.load_bank(ROOT / "tests" / "safety" / name)
    assert sum(e.outcome in bank.RISK_INTENTS for e in examples) >= 300
    assert sum(e.outcome == bank.NONE for e in examples) >= 300
    assert any(len(e.text) >= longest for e in examples if e.outcome == "crisis")


def test_fine_labels():
    assert label_of(bank.Example("x", "crisis", "farewell")) == "crisis:farewell"
    assert label_of(bank.Example("x", "none", "death_idioms")) == "none:death_idioms"
    assert label_of(bank.Example("x", "none", "")) == "none"


def test_a_bank_with_an_unknown_outcome_is_refused(tmp_path):
    (tmp_path / "b.yml").write_text("safety_bank:\n- outcome: maybe\n  kind: x\n  examples: |\n    - hi\n")
    with pytest.raises(ValueError, match=r"b\.yml: outcome 'maybe' is not one of \('crisis', 'urgent_medical', 'none'\)"):
        bank.load_bank(tmp_path / "b.yml")
    (tmp_path / "r.yml").write_text('nlu:\n- intent: greet\n  examples: |\n    - hi\n')
    with pytest.raises(ValueError, match=r"r\.yml: intent 'greet' is not one of \('crisis', 'urgent_medical'\)"):
        bank.load_risk_examples(tmp_path / "r.yml")


def test_the_fingerprint_follows_the_contents(tmp_path):
    f = tmp_path / "hard_negatives.yml"
    f.write_text("safety_negatives: []\n")
    before = bank.fingerprint([f])
    f.write_text("safety_negatives: [{kind: a, examples: '- x'}]\n")
    assert bank.fingerprint([f]) != before


# --- the layer's contract, edge by edge --------------------------------------------------------

class Recording(StandIn):
    """A StandIn that keeps what each call was given."""

    def __init__(self, *args, **kw) -> None:
        super().__init__(*args, **kw)
        self.embeddings: List[object] = []

    def score(self, text: str, embedding: object = None) -> Scores:
        self.embeddings.append(embedding)
        return super().score(text, embedding)


class OneMatch:
    """A detector that finds one rule's statement in any doc."""

    def __init__(self, rule: str) -> None:
        self.rule = rule

    def find(self, doc) -> CrisisMatch:
        return CrisisMatch(rule=self.rule, kind=STATEMENT, text=str(doc))

    def mentions(self, doc) -> bool:
        return True


def test_the_default_thresholds_are_those_of_config_yml():
    config = yaml.safe_load((ROOT / "config.yml").read_text())
    entry = next(c for c in config["pipeline"] if c["name"].endswith(".SafetyLayerComponent"))
    names = [f.name for f in dataclasses.fields(Thresholds)]
    assert {n: getattr(Thresholds(), n) for n in names} == {n: entry[f"{n}_threshold"] for n in names}


def test_thresholds_cannot_be_changed_once_made():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Thresholds().takeover = 0.1


def test_each_rule_stands_for_its_category():
    assert RULE_CATEGORIES == {
        "kill_self": "active_ideation", "want_to_die": "passive_death_wish", "suicidal_now": "active_ideation",
        "self_harm": "self_harm",
        "overdose": "overdose_taken", "lethal_amount": "lethal_amount_question", "danger_now": "danger_from_another",
        "suicide_mention": "active_ideation", "overdose_mention": "overdose_taken",
    }
    assert set(RULE_CATEGORIES) == set(PATTERNS)


@pytest.mark.parametrize("rule", sorted(RULE_CATEGORIES))
def test_a_patterns_statement_takes_over_with_its_rules_category_and_source(rule):
    layer = SafetyLayer(StandIn({}), OneMatch(rule), THRESHOLDS)
    v = layer.judge("what does it cost", doc="what does it cost")
    assert (v.outcome, v.response, v.category, v.source) == ("crisis", "takeover", RULE_CATEGORIES[rule], f"pattern:{rule}")
    assert v.as_dict()["response"] == "takeover"


def test_danger_now_is_now_and_from_a_person_even_where_the_classifier_names_another_category(nlp, detector):
    text = "my boyfriend is choking me"
    v = judge(nlp, detector, text, {text: (0.5, 0, 0)}, category="self_harm")
    assert (v.category, v.source) == ("self_harm", "pattern:danger_now")
    assert v.now is True and v.danger_from_person is True


def test_judge_with_the_text_alone_reads_no_doc_no_embedding_no_parts_and_no_intent(detector):
    model = Recording({"what does it cost": (0.0, 0.0, 0.0)})
    v = SafetyLayer(model, detector, THRESHOLDS).judge("what does it cost")
    assert (v.outcome, v.intent, v.source, v.footer, v.settled) == ("none", None, None, False, True)
    assert set(v.scores) == {"crisis", "urgent_medical", "distress"}
    assert model.embeddings == [None]


def test_a_layer_without_a_detector_judges_a_doc_by_the_classifier_alone(nlp):
    layer = SafetyLayer(StandIn({"kms": (0.0, 0.0, 0.0)}), None, THRESHOLDS)
    v = layer.judge("kms", nlp("kms"))
    assert (v.outcome, v.footer, v.settled) == ("none", False, True)


def test_no_model_and_no_doc_is_a_settled_none():
    v = SafetyLayer(None, None, THRESHOLDS).judge("i want to kill myself")
    assert (v.outcome, v.footer, v.settled, v.scores) == ("none", False, True, {})


def test_a_message_of_fewer_than_three_letters_is_not_scored_even_in_parts(nlp, detector):
    v = judge(nlp, detector, "ok", {"ok": (0.99, 0.99, 0.99)}, ["ok"])
    assert (v.outcome, v.scores) == ("none", {})


def test_a_message_of_three_letters_is_scored(nlp, detector):
    v = judge(nlp, detector, "meh", {"meh": (0.99, 0, 0)})
    assert (v.response, v.source) == (TAKEOVER, "classifier")


def test_a_check_in_from_the_whole_message_names_the_classifier(nlp, detector):
    text = "i'm just so tired of all of it"
    v = judge(nlp, detector, text, {text: (0.3, 0, 0)})
    assert (v.response, v.source, v.check_in) == ("check_in", "classifier", True)
    assert (v.now, v.danger_from_person) == (False, False)


def test_the_sentence_scores_are_kept_rounded_to_four_places(nlp, detector):
    parts = ["How much does it cost?", "Is it covered?"]
    whole = " ".join(parts)
    v = judge(nlp, detector, whole, {whole: (0.0, 0.0, 0.0), parts[0]: (0.0123456, 0.0234567, 0)}, parts)
    assert v.scores == {"crisis": 0.0, "urgent_medical": 0.0, "distress": 0.0,
                        "sentence_crisis": 0.0123, "sentence_urgent_medical": 0.0235}


@pytest.mark.parametrize("urgent, outcome", [(0.5, "urgent_medical"), (0.49, "none")])
def test_an_urgent_probability_at_exactly_the_threshold_is_urgent(nlp, detector, urgent, outcome):
    text = "my chest hurts after my troche"
    assert judge(nlp, detector, text, {text: (0.0, urgent, 0)}).outcome == outcome


def test_an_urgent_symptom_names_what_found_it_the_whole_or_a_sentence(nlp, detector):
    parts = ["How much does it cost?", "My chest hurts."]
    whole = " ".join(parts)
    v = judge(nlp, detector, whole, {whole: (0, 0.9, 0), parts[1]: (0, 0.6, 0)}, parts)
    assert (v.outcome, v.source) == ("urgent_medical", "classifier")
    v = judge(nlp, detector, whole, {whole: (0, 0.1, 0), parts[1]: (0, 0.9, 0)}, parts)
    assert (v.outcome, v.source) == ("urgent_medical", "classifier:sentence")


def test_an_extra_dose_taken_by_accident_is_an_ingestion(nlp, detector):
    text = "i took my dose twice by mistake"
    v = judge(nlp, detector, text, {text: (0, 0.9, 0)}, urgent_category="accidental_extra_dose")
    assert (v.outcome, v.ingestion) == ("urgent_medical", True)


def test_someone_else_at_risk_now_is_happening_now(nlp, detector):
    text = "it is what it is"
    v = judge(nlp, detector, text, {text: (0.9, 0, 0)}, category="someone_else_at_risk_now")
    assert (v.now, v.danger_from_person) == (True, False)


@pytest.mark.parametrize("distress, marked", [(0.5, True), (0.49, False)])
def test_distress_at_exactly_the_threshold_is_marked(nlp, detector, distress, marked):
    text = "how much is the monthly plan"
    assert judge(nlp, detector, text, {text: (0, 0, distress)}).distress is marked


def test_no_footer_when_nothing_is_mentioned_and_the_crisis_probability_is_low(nlp, detector):
    text = "how much is the monthly plan"
    v = judge(nlp, detector, text, {text: (0.049, 0, 0)})
    assert (v.footer, v.distress) == (False, False)


# --- the verdict as the parse carries it ----------------------------------------------------

def test_an_empty_verdict_is_a_settled_none_with_nothing_set():
    assert SafetyVerdict().as_dict() == {
        "outcome": "none", "response": None, "category": None, "now": False, "danger_from_person": False,
        "ingestion": False, "footer": False, "distress": False, "settled": True, "intent": None, "source": None,
        "scores": {},
    }


@pytest.mark.parametrize("outcome, response, check_in", [
    ("crisis", "check_in", True), ("crisis", "takeover", False), ("none", "check_in", False)])
def test_check_in_is_a_crisis_answered_by_a_check_in(outcome, response, check_in):
    assert verdict_of({"safety": {"outcome": outcome, "response": response}}).check_in is check_in


@pytest.mark.parametrize("parse", [None, {}, "crisis", ["safety"], {"safety": None}, {"safety": "nonsense"},
                                   {"safety": ["crisis"]}])
def test_a_parse_without_a_verdict_gives_an_empty_one(parse):
    assert verdict_of(parse) == SafetyVerdict()


@pytest.mark.parametrize("field, bad", [
    ("outcome", "panic"), ("outcome", 1), ("response", 3), ("category", ["farewell"]), ("now", "yes"),
    ("now", 1), ("footer", None), ("settled", "false"), ("intent", {"name": "faq"}), ("scores", [0.9]),
    ("scores", {"crisis": "high"}), ("scores", {"crisis": True}), ("scores", {1: 0.5})])
def test_a_field_of_the_wrong_type_takes_its_default_and_the_rest_is_kept(field, bad):
    good = {"outcome": "crisis", "response": "takeover", "category": "farewell", "now": True,
            "footer": True, "settled": False, "intent": "faq_cost", "scores": {"crisis": 0.9}}
    v = verdict_of({"safety": {**good, field: bad}})
    expected = {**good, field: getattr(SafetyVerdict(), field)}
    assert {k: getattr(v, k) for k in good} == expected


def test_integer_scores_are_kept():
    assert verdict_of({"safety": {"scores": {"crisis": 1, "none": 0}}}).scores == {"crisis": 1, "none": 0}


def test_unknown_keys_in_a_verdict_are_left_out():
    v = verdict_of({"safety": {"outcome": "crisis", "response": "takeover", "colour": "red"}})
    assert (v.outcome, v.response) == ("crisis", "takeover") and "colour" not in v.as_dict()


# --- the banks' files, read exactly ----------------------------------------------------------

def test_a_risk_file_gives_each_example_its_outcome_and_category(tmp_path):
    (tmp_path / "r.yml").write_text(
        "nlu:\n- intent: crisis\n  metadata:\n    category: farewell\n  examples: |\n    - bye forever  \n    -  goodbye all\n"
        "    not an example\n- intent: urgent_medical\n  examples: |\n    - my chest hurts\n")
    assert bank.load_risk_examples(tmp_path / "r.yml") == [
        bank.Example("bye forever", "crisis", "farewell"), bank.Example("goodbye all", "crisis", "farewell"),
        bank.Example("my chest hurts", "urgent_medical", "")]


def test_an_evaluation_bank_groups_by_category_or_kind(tmp_path):
    (tmp_path / "b.yml").write_text(
        "safety_bank:\n- outcome: crisis\n  category: farewell\n  examples: |\n    - bye forever\n"
        "- outcome: none\n  kind: death_idioms\n  examples: |\n    - dying to try it\n"
        "- outcome: urgent_medical\n  examples: |\n    - my chest hurts\n")
    assert bank.load_bank(tmp_path / "b.yml") == [
        bank.Example("bye forever", "crisis", "farewell"), bank.Example("dying to try it", "none", "death_idioms"),
        bank.Example("my chest hurts", "urgent_medical", "")]


def test_the_training_negatives_are_every_hard_negatives_file_of_the_folder(tmp_path):
    (tmp_path / "hard_negatives.yml").write_text("safety_negatives:\n- kind: a\n  examples: |\n    - one\n")
    (tmp_path / "hard_negatives_more.yml").write_text("safety_negatives:\n- kind: b\n  examples: |\n    - two\n")
    (tmp_path / "crisis.yml").write_text("safety_negatives:\n- kind: c\n  examples: |\n    - three\n")
    (tmp_path / "empty_hard_negatives.yml").write_text("")
    assert bank.load_training_negatives(tmp_path) == [bank.Example("one", "none", "a"), bank.Example("two", "none", "b")]
    assert bank.load_negatives(tmp_path / "empty_hard_negatives.yml") == []


def test_the_fingerprint_follows_the_names_not_the_order(tmp_path):
    a, b = tmp_path / "a.yml", tmp_path / "b.yml"
    a.write_text("x")
    b.write_text("y")
    assert bank.fingerprint([a, b]) == bank.fingerprint([b, a])
    assert len(bank.fingerprint([a])) == 64
    renamed = tmp_path / "c.yml"
    renamed.write_text("x")
    assert bank.fingerprint([renamed]) != bank.fingerprint([a])


def test_the_overlap_compares_letters_and_digits_in_lower_case():
    assert bank.normalised("  I'm  FINE, thanks!! 2day ") == "i m fine thanks 2day"
    assert bank.overlap(["I'm fine, thanks"], ["im fine thanks", "i'm FINE thanks!", "fine"]) == ["i'm FINE thanks!"]


def test_the_outcomes_and_the_kinds_of_distress():
    assert bank.OUTCOMES == ("crisis", "urgent_medical", "none") and bank.RISK_INTENTS == ("crisis", "urgent_medical")
    assert bank.DISTRESS_KINDS == {"treatment_frustration", "low_mood_without_risk", "grief_and_loss"}


def test_an_example_is_a_value_equal_examples_are_one():
    assert len({bank.Example("hi", "none", "a"), bank.Example("hi", "none", "a")}) == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        bank.Example("hi", "none", "a").text = "bye"
