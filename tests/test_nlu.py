"""What the trained model understands: the parse contract and the held-out set."""

from pathlib import Path

import pytest
import yaml

from clinic.nlu_eval import evaluate, format_report, load_examples

ROOT = Path(__file__).resolve().parent.parent
HELDOUT = ROOT / "tests" / "nlu" / "heldout.yml"
TOPICS_FILE = ROOT.parent / "shared" / "faq_topics.yml"
TOPIC_ACCURACY_TARGET = 0.92


def faq_keys_in_data():
    keys = set()
    for f in (ROOT / "data" / "faq").glob("*.yml"):
        doc = yaml.safe_load(f.read_text())
        for block in doc["nlu"]:
            keys.add(block["intent"].split("/", 1)[1])
        topic = block["intent"].split("/", 1)[1]
        # the answer and its "Tell me more" (docs/CONTENT.md), nothing else
        assert set(doc.get("responses", {})) == {f"utter_faq/{topic}", f"utter_faq_more_{topic}"}, f.name
    return keys


def test_every_topic_of_the_contract_has_examples_and_a_response():
    if not TOPICS_FILE.exists():
        pytest.skip("../shared/faq_topics.yml is not beside this checkout")
    topics = set(yaml.safe_load(TOPICS_FILE.read_text())["topics"])
    assert faq_keys_in_data() == topics


def test_training_data_has_at_least_25_examples_per_topic():
    for f in (ROOT / "data" / "faq").glob("*.yml"):
        block = yaml.safe_load(f.read_text())["nlu"][0]
        n = sum(1 for line in block["examples"].splitlines() if line.strip().startswith("- "))
        assert n >= 25, f"{f.name}: {n} examples"


def test_the_heldout_set_is_unseen_and_large_enough():
    examples = load_examples(HELDOUT)
    seen = set()
    for f in (ROOT / "data").rglob("*.yml"):
        seen |= {t.lower() for t, _ in load_examples(f)} if "nlu" in (yaml.safe_load(f.read_text()) or {}) else set()
    assert not [t for t, _ in examples if t.lower() in seen]
    counts = {}
    for _, label in examples:
        counts[label] = counts.get(label, 0) + 1
    assert min(counts.values()) >= 6


def test_heldout_topic_accuracy_meets_the_target(agent, loop):
    report = loop.run_until_complete(evaluate(agent, load_examples(HELDOUT)))
    print(format_report(report))
    assert report.topic_accuracy >= TOPIC_ACCURACY_TARGET
    crisis = report.per_label["crisis"]
    assert crisis.recall == 1.0, "every held-out crisis message must be recognised"


def test_faq_parse_reports_the_topic(parse):
    result = parse("does my insurance cover any of this")
    assert result["intent"]["name"] == "faq"
    assert result["response_selector"]["faq"]["response"]["intent_response_key"] == "faq/insurance"


@pytest.mark.parametrize(
    "text",
    [
        "everyone would honestly be better off if i wasnt around",
        "i have been saving my pills for a while now",
        "what is the price? also i don't want to wake up tomorrow",
    ],
)
def test_crisis_wins_even_inside_other_questions(parse, text):
    result = parse(text)
    assert result["intent"]["name"] == "crisis"
    assert result["intent"]["confidence"] == 1.0


@pytest.mark.parametrize("text", ["asdkjh qwpoe zzxv", "purple monkey dishwasher laminate"])
def test_gibberish_falls_back_instead_of_guessing(parse, text):
    assert parse(text)["intent"]["name"] in {"nlu_fallback", "out_of_scope"}


@pytest.mark.parametrize(
    "text, intent",
    [
        ("hey", "greet"),
        ("are you a real person", "bot_challenge"),
        ("let me speak with a human", "human_handoff"),
        ("should i double my dose tonight", "medical_advice"),
        ("am i eligible", "start_prescreen"),
    ],
)
def test_other_intents_of_the_contract(parse, text, intent):
    assert parse(text)["intent"]["name"] == intent
