"""What the pre-screen says: the published PHQ-2/GAD-2 wording, a progress line and buttons on every
question, the 988 line in the thoughts question, the hotlines, and privacy wording that is short and
says what the system does (the retention period from the settings, never a second copy)."""

import re
from pathlib import Path
from typing import Any, Dict

import pytest
import yaml

from actions.prescreen_form import progress_line
from clinic.rules import eligibility
from clinic import settings
from clinic.console.conversations import PROGRESS_LINE
from clinic.settings import public_facts

ROOT = Path(__file__).resolve().parent.parent


def responses() -> Dict[str, Any]:
    found: Dict[str, Any] = {}
    for f in (ROOT / "domain").glob("*.yml"):
        found.update((yaml.safe_load(f.read_text()) or {}).get("responses", {}))
    return found


def text(name: str) -> str:
    return responses()[name][0]["text"]


def buttons(name: str) -> list:
    return [(b["title"], b["payload"]) for b in responses()[name][0].get("buttons", [])]


def filled(name: str, **values: str) -> str:
    facts = public_facts(settings.get_settings())
    return text(name).format(**{**facts, **values})


def words(s: str) -> int:
    return len(re.findall(r"[\w'’.@-]+", s))


@pytest.mark.parametrize("question", eligibility.QUESTIONS)
def test_every_question_starts_with_its_progress_line(question):
    assert text(f"utter_ask_{question}").startswith("{prescreen_progress}\n")


@pytest.mark.parametrize("number, total", [(1, 16), (4, 16), (17, 18)])
def test_the_progress_line_reads_question_n_of_m_and_the_console_finds_it(number, total):
    line = progress_line(number, total)
    assert line == f"Question {number} of {total}"
    assert PROGRESS_LINE.sub("", line + "\nHow old are you?") == "How old are you?"
    assert PROGRESS_LINE.sub("", "How old are you?\n" + line + "\n") == "How old are you?\n" + line + "\n"


@pytest.mark.parametrize(
    "question, stem, item",
    [
        ("phq2_interest", eligibility.PHQ2_STEM, eligibility.PHQ2_INTEREST),
        ("phq2_mood", eligibility.PHQ2_STEM, eligibility.PHQ2_MOOD),
        ("gad2_nervous", eligibility.GAD2_STEM, eligibility.GAD2_NERVOUS),
        ("gad2_worry", eligibility.GAD2_STEM, eligibility.GAD2_WORRY),
    ],
)
def test_phq2_and_gad2_are_asked_in_their_published_words_with_numbered_options(question, stem, item):
    assert text(f"utter_ask_{question}") == "{prescreen_progress}\n" + stem + "\n**" + item + "**"
    assert buttons(f"utter_ask_{question}") == [
        (f"{score} · {option}", option) for option, score in eligibility.FREQUENCY_OPTIONS
    ]


def test_the_state_asked_is_where_the_visitor_will_be_not_where_they_live():
    asked = text("utter_ask_state")
    assert "will you be in for your video visits and at-home sessions" in asked
    assert "live" not in asked


def test_the_thoughts_question_carries_988_and_says_what_happens_with_the_answer():
    asked = text("utter_ask_suicidal_thoughts")
    assert "(tel:988)" in asked and "(sms:988)" in asked
    assert "won't stop you getting care" in asked
    assert buttons("utter_ask_suicidal_thoughts") == [("Yes", "Yes"), ("No", "No"), ("Not sure", "Not sure")]
    for follow_up in ("utter_ask_suicide_plan", "utter_ask_suicide_attempt"):
        assert "help you reach someone straight away" in text(follow_up)
    assert "988" in text("utter_prescreen_passive_thoughts") and "741741" in text("utter_prescreen_passive_thoughts")
    assert "marked urgent" in text("utter_prescreen_passive_thoughts")
    assert "urgent" in text("utter_prescreen_safety_first")


def test_the_checklists_name_every_medicine_and_condition_the_review_asks_for():
    medicines = text("utter_ask_medications").lower()
    for name in ("benzodiazepine", "lamotrigine", "maoi", "stimulant", "opioid", "sedative"):
        assert name in medicines, name
    conditions = text("utter_ask_medical_conditions").lower()
    for name in ("brain injury", "pressure in the head", "glaucoma", "severe liver disease", "seizures",
                 "bladder or urinary", "reaction to ketamine"):
        assert name in conditions, name
    assert buttons("utter_ask_medications") == buttons("utter_ask_medical_conditions") == [
        ("Yes, one or more", "Yes"), ("None of these", "None of these"), ("Not sure", "Not sure"),
    ]


def test_the_alcohol_and_drugs_question_asks_past_year_and_dissociatives_outside_medical_care():
    asked = text("utter_ask_substance_use")
    assert "In the past year" in asked and "ketamine or another dissociative" in asked and "outside medical care" in asked
    assert [payload for _, payload in buttons("utter_ask_substance_use")] == [
        "Yes, still now", "Yes, but not now", "No", "Not sure",
    ]


def test_the_support_person_is_sober():
    assert "trusted, sober adult" in text("utter_ask_support_person")


def test_not_eligible_offers_a_person_and_a_clinicians_review():
    said = text("utter_prescreen_not_eligible")
    assert "If you think this doesn't apply to you, a clinician can review it" in said
    assert "988" in said
    assert buttons("utter_prescreen_not_eligible") == [("Talk to a person", "/human_handoff")]


def test_the_hotlines_and_the_988_line_where_the_review_asks_for_them():
    assert "National Maternal Mental Health Hotline" in text("utter_prescreen_perinatal_support")
    assert "1-833-852-6262" in text("utter_prescreen_perinatal_support")
    assert "1-800-662-4357" in text("utter_prescreen_substance_support")
    assert "call or text 988" in text("utter_prescreen_out_of_area")
    assert "988" in text("utter_prescreen_urgent_review")


# --- privacy, said as the system does it ---------------------------------------------------


@pytest.mark.parametrize("name", ["utter_prescreen_intro", "utter_prescreen_stopped"])
def test_the_privacy_wording_is_short_and_quotes_the_retention_setting(name):
    said = filled(name)
    assert 40 <= words(said) <= 60, (words(said), said)
    assert "{retention_period}" in text(name)
    assert not re.search(r"\d", text(name)), "the retention period comes from RETENTION_DAYS, never a copy"
    assert "encrypted" in said
    assert "Clinicians can read" in said or "clinicians can read" in said
    assert "support staff see the chat without" in said


def test_the_intro_says_safety_messages_are_flagged_and_contact_details_need_consent():
    said = filled("utter_prescreen_intro")
    assert "Messages about safety are flagged for staff" in said
    assert "Contact details are shared only if you agree" in said
    assert "isn't a diagnosis" in said and 'Say "stop" any time' in said


def test_the_retention_period_comes_from_the_settings(monkeypatch):
    settings.get_settings.cache_clear()
    try:
        assert public_facts(settings.get_settings())["retention_period"] == "365 days"
        monkeypatch.setenv("RETENTION_DAYS", "90")
        settings.get_settings.cache_clear()
        assert public_facts(settings.get_settings())["retention_period"] == "90 days"
        assert "stored encrypted for 90 days" in filled("utter_prescreen_intro", retention_period="90 days")
    finally:
        monkeypatch.delenv("RETENTION_DAYS", raising=False)
        settings.get_settings.cache_clear()
