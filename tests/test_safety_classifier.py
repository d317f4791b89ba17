"""The safety classifier read by outcome (clinic/safety/classifier.py) on a small model trained here:
an outcome's probability is the sum of its categories', distress that of the distress kinds, the
riskiest sentence of a long message is the one that counts; and the calibration of the linear
model both classifiers are (clinic/nlu/linear_model.py)."""

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

from clinic.nlu import linear_model
from clinic.nlu.linear_model import DEFAULTS, LinearModel, fit, fit_temperature, out_of_fold_scores
from clinic.safety.bank import Example
from clinic.safety.classifier import SafetyModel, label_of

EXAMPLES = [Example(t, "crisis", "passive_death_wish") for t in (
    "i wish i could sleep and never wake up", "i want to disappear forever", "i wish i was dead",
    "i hope i don't wake up tomorrow", "everyone would be fine if i was gone")] + [
    Example(t, "crisis", "stockpiling") for t in (
        "i have been saving my troches", "hoarding my doses for later", "i keep a stash of pills",
        "saving up my lozenges", "collecting my pills in a drawer")] + [
    Example(t, "urgent_medical", "chest_pain") for t in (
        "my chest hurts after my dose", "chest pain since my troche", "tight chest and racing heart",
        "my heart is pounding and my chest aches", "pain in my chest right now")] + [
    Example(t, "none", "grief_and_loss") for t in (
        "my mother died last year and i miss her", "grieving my dad", "we lost our dog and i am sad",
        "my brother passed away in march", "grief is heavy this winter")] + [
    Example(t, "none", "faq/pricing") for t in (
        "how much does it cost", "what is the price", "monthly fee?", "cost per month", "is it expensive")]


@pytest.fixture(scope="module")
def model() -> SafetyModel:
    rng = np.random.default_rng(0)
    embeddings = rng.normal(size=(len(EXAMPLES), 384)).astype(np.float32)
    config = {**DEFAULTS, "class_weight": "balanced", "sentence_embedding_weight": 0.0, "calibration_folds": 2}
    texts, labels = [e.text for e in EXAMPLES], [label_of(e) for e in EXAMPLES]
    pipeline = fit(config, texts, labels, None)
    classes = pipeline.named_steps["svc"].classes_
    temperature = fit_temperature(out_of_fold_scores(config, texts, labels, None, classes), np.searchsorted(classes, labels))
    assert embeddings.shape[0] == len(texts)
    return SafetyModel(LinearModel.from_pipeline(pipeline, 0, 0.0, temperature))


def test_an_outcomes_probability_is_the_sum_of_its_categories(model):
    p = model.probabilities("i have been saving my troches, i wish i was dead", None)
    scores = model.score("i have been saving my troches, i wish i was dead", None)
    names = model.linear.class_names
    crisis = sum(p[i] for i, n in enumerate(names) if n.startswith("crisis:"))
    assert math.isclose(scores.crisis, crisis, rel_tol=1e-9)
    assert math.isclose(sum(p), 1.0, rel_tol=1e-9)
    assert scores.crisis > 0.5 and scores.crisis_category in {"stockpiling", "passive_death_wish"}


def test_categories_and_distress_are_read_apart(model):
    chest = model.score("pain in my chest after the troche", None)
    assert chest.urgent_medical > chest.crisis and chest.urgent_category == "chest_pain"
    grief = model.score("my dad died and i am grieving", None)
    assert grief.distress > 0.5 and grief.crisis < 0.5
    price = model.score("what does it cost per month", None)
    assert price.distress < 0.5 and price.crisis < 0.5 and price.urgent_medical < 0.5


def test_the_riskiest_sentence_is_the_one_that_counts(model):
    parts = [("how much does it cost", None), ("i have been saving my troches", None), ("monthly fee?", None)]
    best = model.score_parts(parts)
    assert best == model.score("i have been saving my troches", None)
    assert model.score_parts([]) is None
    urgent = model.score_parts([("monthly fee?", None), ("my chest hurts after my dose", None)])
    assert urgent.urgent_medical > 0.5


def test_the_temperature_is_the_likeliest():
    rng = np.random.default_rng(1)
    gold = rng.integers(0, 3, size=400)
    scores = rng.normal(size=(400, 3))
    scores[np.arange(400), gold] += 2.0
    t = fit_temperature(scores, gold)

    def nll(temp: float) -> float:
        z = scores / temp
        z = z - z.max(axis=1, keepdims=True)
        return float(-(z[np.arange(400), gold] - np.log(np.exp(z).sum(axis=1))).mean())

    assert nll(t) <= min(nll(t * 0.9), nll(t * 1.1))
    assert 0.005 <= t <= 10.0


def test_a_stored_model_scores_as_the_trained_one(tmp_path: Path):
    texts = [e.text for e in EXAMPLES]
    labels = [label_of(e) for e in EXAMPLES]
    embeddings = np.random.default_rng(2).normal(size=(len(texts), 384)).astype(np.float32)
    config = {**DEFAULTS, "sentence_embedding_weight": 0.5}
    pipeline = fit(config, texts, labels, embeddings)
    model = LinearModel.from_pipeline(pipeline, 384, 0.5, 0.7)
    model.save(tmp_path)
    stored = LinearModel.load(config, tmp_path)
    expected = linear_model.decision_scores(pipeline, texts, embeddings, 0.5)
    assert np.allclose(stored.decision_function(texts, embeddings), expected, rtol=0, atol=1e-9)
    assert all(np.array_equal(stored.scores(t, e), model.scores(t, e)) for t, e in zip(texts, embeddings))
    assert stored.temperature == 0.7 and stored.weight == 0.5


class FixedLinear:
    """A linear model whose probabilities are set per text (SafetyModel reads class_names,
    scores and confidences)."""

    def __init__(self, class_names, by_text) -> None:
        self.class_names = class_names
        self.by_text = by_text

    def scores(self, text, embedding):
        return np.array(self.by_text[text], dtype=float)

    def confidences(self, scores):
        return scores


NAMES = ["crisis:passive_death_wish", "crisis:stockpiling", "urgent_medical:chest_pain",
         "none:grief_and_loss", "none:low_mood_without_risk", "none:treatment_frustration", "none:faq/pricing"]


def test_each_outcome_is_the_sum_of_its_labels_and_its_category_the_likeliest_of_them():
    model = SafetyModel(FixedLinear(NAMES, {"m": [0.1, 0.2, 0.05, 0.15, 0.1, 0.25, 0.15]}))
    s = model.score("m", None)
    assert math.isclose(s.crisis, 0.3) and math.isclose(s.urgent_medical, 0.05) and math.isclose(s.distress, 0.5)
    assert (s.crisis_category, s.urgent_category) == ("stockpiling", "chest_pain")


def test_a_label_without_a_category_or_an_outcome_without_labels_names_no_category():
    model = SafetyModel(FixedLinear(["crisis", "none"], {"m": [0.7, 0.3]}))
    s = model.score("m", None)
    assert (s.crisis, s.urgent_medical, s.distress) == (0.7, 0.0, 0.0)
    assert (s.crisis_category, s.urgent_category) == (None, None)


def test_the_scores_as_the_parse_carries_them_are_rounded_to_four_places():
    model = SafetyModel(FixedLinear(NAMES, {"m": [0.1234567, 0, 0.0123456, 0.2345678, 0, 0, 0.6296299]}))
    assert model.score("m", None).as_dict() == {"crisis": 0.1235, "urgent_medical": 0.0123, "distress": 0.2346}


def test_the_riskiest_sentence_is_the_first_of_equals_and_an_urgent_one_counts_too():
    model = SafetyModel(FixedLinear(NAMES, {
        "a": [0.4, 0, 0, 0, 0, 0, 0.6], "b": [0, 0, 0.4, 0, 0, 0, 0.6], "c": [0, 0, 0.5, 0, 0, 0, 0.5]}))
    assert model.score_parts([("a", None), ("b", None)]) == model.score("a", None)
    assert model.score_parts([("b", None), ("a", None)]) == model.score("b", None)
    assert model.score_parts([("a", None), ("c", None)]) == model.score("c", None)


def test_a_label_is_split_at_its_first_colon_only():
    names = ["crisis:plan:dated", "none:other:grief_and_loss", "none:grief_and_loss"]
    s = SafetyModel(FixedLinear(names, {"m": [0.2, 0.5, 0.3]})).score("m", None)
    assert s.crisis_category == "plan:dated" and math.isclose(s.distress, 0.3)


def test_scores_are_a_value_that_cannot_be_changed():
    s = SafetyModel(FixedLinear(NAMES, {"m": [1, 0, 0, 0, 0, 0, 0]})).score("m", None)
    assert len({s, s}) == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.crisis = 0.0
