"""The crisis safety net recognises crisis language, indirect phrasings and typos
included, and leaves negations, resolved past and general questions alone."""

from pathlib import Path

import pytest
import yaml

from clinic.safety.crisis_patterns import CrisisDetector

PHRASES = yaml.safe_load((Path(__file__).parent / "nlu" / "crisis_phrases.yml").read_text())


@pytest.fixture(scope="module")
def detector(nlp):
    return CrisisDetector(nlp.vocab)


@pytest.mark.parametrize("text", PHRASES["positives"])
def test_crisis_language_is_caught(detector, nlp, text):
    assert detector.find(nlp(text)) is not None, text


@pytest.mark.parametrize("text", PHRASES["negatives"])
def test_non_crisis_language_is_left_alone(detector, nlp, text):
    assert detector.find(nlp(text)) is None, text


@pytest.mark.parametrize(
    "text, rule",
    [
        ("i dont want to live anymore", "want_to_die"),       # the negation is the crisis
        ("i don't want to continue living like this", "want_to_die"),
        ("not gonna lie, i want to die", "want_to_die"),      # an idiom does not negate
        ("i'm not okay, i want to die", "want_to_die"),       # a clause break ends the negation
        ("gonna kill myself tonight", "kill_self"),
        ("i swallowed a whole bottle of sleeping pills", "overdose"),
        ("my boyfriend is hitting me right now", "danger_now"),
        ("can ketamine help my suicidal thoughts?", "suicide_mention"),  # about the visitor
    ],
)
def test_rule_that_fires(detector, nlp, text, rule):
    match = detector.find(nlp(text))
    assert match is not None and match.rule == rule


@pytest.mark.parametrize(
    "text",
    [
        "i would never kill myself",
        "i'm not suicidal, just curious about the troches",
        "does ketamine help with suicidal thoughts?",
        "this paperwork is killing me",
        "can i take tylenol with my troche",
        "i don't want to be handed a prescription and forgotten",
        "i dont wanna continue the screening",
    ],
)
def test_negations_idioms_and_general_questions(detector, nlp, text):
    assert detector.find(nlp(text)) is None
