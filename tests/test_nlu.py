"""What the trained model understands: the parse contract, the safety layer's outcomes in the
parse, and the held-out sets (top-1, top-3, calibration)."""

from pathlib import Path

import pytest
import yaml

from clinic.nlu.evaluation import evaluate, format_report, load_examples

ROOT = Path(__file__).resolve().parent.parent
HELDOUT = ROOT / "tests" / "nlu" / "heldout.yml"
FAQ_PAGES = ROOT / "tests" / "nlu" / "heldout_faq_pages.yml"
TOPICS_FILE = ROOT.parent / "shared" / "faq_topics.yml"
# issue 17: on both held-out sets (docs/UNDERSTANDING.md, "Held-out figures")
TOPIC_ACCURACY_TARGET = 0.92
TOP3_TARGET = 0.98
ECE_TARGET = 0.05


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


def faq_page_style(text: str) -> bool:
    """A full question as FAQ pages write it: a capital first, five words or more, a question
    mark or a full stop at the end."""
    return text[:1].isupper() and len(text.split()) >= 5 and text.rstrip()[-1:] in "?."


def test_every_topic_has_100_examples_a_third_in_faq_page_style():
    for f in (ROOT / "data" / "faq").glob("*.yml"):
        block = yaml.safe_load(f.read_text())["nlu"][0]
        examples = [line.strip()[2:] for line in block["examples"].splitlines() if line.strip().startswith("- ")]
        assert len(examples) >= 100, f"{f.name}: {len(examples)} examples"
        assert sum(map(faq_page_style, examples)) * 3 >= len(examples), f.name


def test_no_evaluation_set_shares_a_message_with_the_training_data():
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "scripts/heldout_overlap.py"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout
    assert "0 evaluation messages also in the training data" in done.stderr


def test_the_heldout_sets_are_large_enough():
    first = load_examples(HELDOUT)
    counts = {}
    for _, label in first:
        counts[label] = counts.get(label, 0) + 1
    assert min(counts.values()) >= 6
    second = load_examples(FAQ_PAGES)
    topics = {}
    for _, label in second:
        topics[label] = topics.get(label, 0) + 1
    assert len(second) >= 300 and len(topics) == 35 and min(topics.values()) >= 8


@pytest.fixture(scope="module")
def heldout_reports(agent, loop):
    reports = {}
    for path in (HELDOUT, FAQ_PAGES):
        reports[path.name] = loop.run_until_complete(evaluate(agent, load_examples(path)))
        print(format_report(reports[path.name], path.name))
    return reports


@pytest.mark.parametrize("name", ["heldout.yml", "heldout_faq_pages.yml"])
def test_heldout_topic_accuracy_top3_and_calibration_meet_the_targets(heldout_reports, name):
    report = heldout_reports[name]
    assert report.topic_accuracy >= TOPIC_ACCURACY_TARGET
    assert report.topic_top3_accuracy >= TOP3_TARGET
    assert report.ece <= ECE_TARGET


def test_every_heldout_crisis_message_is_recognised(heldout_reports):
    assert heldout_reports["heldout.yml"].per_label["crisis"].recall == 1.0


def test_faq_parse_reports_the_topic(parse):
    result = parse("does my insurance cover any of this")
    assert result["intent"]["name"] == "faq"
    assert result["response_selector"]["faq"]["response"]["intent_response_key"] == "faq/insurance"
    assert result["safety"]["outcome"] == "none"


@pytest.mark.parametrize(
    "text",
    [
        "everyone would honestly be better off if i wasnt around",
        "i have been saving my pills for a while now",
        "what is the price? also i don't want to wake up tomorrow",
        "me quiero morir",
        "how many troches would it take to not wake up",
    ],
)
def test_crisis_wins_even_inside_other_questions(parse, text):
    result = parse(text)
    assert result["intent"]["name"] == "crisis"
    assert result["intent"]["confidence"] == 1.0
    assert result["safety"]["outcome"] == "crisis" and result["safety"]["category"]


@pytest.mark.parametrize(
    "text",
    [
        "my toddler just swallowed one of my troches",
        "my chest has been really tight since my session an hour ago and my left arm feels weird",
        "my husband took his dose and now i can't wake him up",
    ],
)
def test_urgent_symptoms_are_urgent_medical(parse, text):
    result = parse(text)
    assert result["intent"]["name"] == "urgent_medical"
    assert result["safety"]["outcome"] == "urgent_medical"


@pytest.mark.parametrize(
    "text",
    ["this traffic is killing me", "that's odd, the page won't load", "i want to dye my hair before my session",
     "i'm dying to know the price", "i'm a nurse and some of my patients are suicidal, do you take referrals"],
)
def test_idioms_and_lookalikes_get_no_crisis_reply(parse, text):
    assert parse(text)["intent"]["name"] not in {"crisis", "urgent_medical"}


def test_an_informational_overdose_question_is_answered_with_the_footer(parse):
    result = parse("can you overdose on ketamine?")
    assert result["intent"]["name"] == "faq"
    assert result["safety"]["outcome"] == "none" and result["safety"]["footer"] is True


@pytest.mark.parametrize(
    "text, topic",
    [
        ("DO YOU TAKE INSURANCE", "insurance"),
        ("insurance?", "insurance"),
        ("pricing", "pricing"),
        ("waht are teh side efects", "side_effects"),
        ("hwo mcuh dose it cots per mnoth", "pricing"),
        ("HOW LONG DOES A SESSION LAST", "session_experience"),
    ],
)
def test_capitals_a_lone_topic_word_and_typos_get_the_answer_or_offer_it(parse, text, topic):
    result = parse(text)
    answered = result["intent"]["name"] == "faq" and (
        result["response_selector"]["faq"]["response"]["intent_response_key"] == f"faq/{topic}")
    offered = result["intent"]["name"] == "nlu_fallback" and topic in [c["topic"] for c in result["did_you_mean"]]
    assert answered or offered, result["intent"]


def test_a_question_in_spanish_gets_the_spanish_speakers_reply(parse):
    assert parse("¿aceptan seguro médico?")["intent"]["name"] == "non_english"


def test_an_unsure_question_offers_the_likely_topics(parse):
    result = parse("how long")
    assert result["intent"]["name"] == "nlu_fallback"
    offered = [c["topic"] for c in result["did_you_mean"]]
    assert 1 <= len(offered) <= 3 and all(c["confidence"] >= 0.15 for c in result["did_you_mean"])


@pytest.mark.parametrize("text", ["asdkjh qwpoe zzxv", "purple monkey dishwasher laminate", "qwzx plorf vrrk"])
def test_gibberish_falls_back_instead_of_guessing(parse, text):
    result = parse(text)
    assert result["intent"]["name"] in {"nlu_fallback", "out_of_scope"}
    assert result["safety"]["outcome"] == "none"
    assert result["intent"]["name"] == "out_of_scope" or result["did_you_mean"] == []  # nothing is likely


@pytest.mark.parametrize(
    "text, intent",
    [
        ("hey", "greet"),
        ("are you a real person", "bot_challenge"),
        ("let me speak with a human", "human_handoff"),
        ("should i double my dose tonight", "medical_advice"),
        ("am i eligible", "start_prescreen"),
        ("¿cuánto cuesta el tratamiento?", "non_english"),
        ("i'm safe now", "safe_now"),
    ],
)
def test_other_intents_of_the_contract(parse, text, intent):
    assert parse(text)["intent"]["name"] == intent
