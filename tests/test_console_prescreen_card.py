"""The console's pre-screen card and transcript with the new questions: every answer labelled for
clinicians; for support, the follow-ups of thoughts of ending one's life and the progress totals
(which tell whether the follow-ups were asked) withheld."""

import json
from typing import Any, Dict, List, Tuple

from clinic.console.conversations import ANSWER_LABELS, answer_summary, build_transcript
from clinic.rules.eligibility import QUESTIONS

PASSIVE_ANSWERS = {
    "age": 30, "state": "TX", "concern": "depression", "treatments_tried": "both", "phq2_interest": 2,
    "phq2_mood": 3, "gad2_nervous": 1, "gad2_worry": 0, "suicidal_thoughts": "yes", "suicide_plan": "no",
    "suicide_attempt": "no", "pregnant_or_breastfeeding": "no", "psychosis_history": "no", "cardiovascular": "unsure",
    "medications": "yes", "medical_conditions": "no", "substance_use": "past", "support_person": "yes",
}


def test_every_question_has_a_label_on_the_card():
    assert set(ANSWER_LABELS) == set(QUESTIONS)


def test_the_card_reads_every_new_answer():
    summary, scores = answer_summary(PASSIVE_ANSWERS)
    shown = {a["name"]: a["value"] for a in summary}
    assert [a["name"] for a in summary] == list(QUESTIONS)
    assert (shown["suicidal_thoughts"], shown["suicide_plan"], shown["suicide_attempt"]) == ("Yes", "No", "No")
    assert shown["medications"] == "Yes" and shown["cardiovascular"] == "Not sure"
    assert shown["substance_use"] == "Yes, not now"
    assert answer_summary({"substance_use": "current"})[0][0]["value"] == "Yes, still now"
    assert shown["phq2_mood"] == "Nearly every day (3)"
    assert scores == {"PHQ-2 score": 5, "GAD-2 score": 1}


def rows(events: List[Dict[str, Any]]) -> List[Tuple[Any, ...]]:
    return [(i, "c" * 32, e["event"], e["timestamp"], "inform" if e["event"] == "user" else None, e.get("name"),
             json.dumps(e)) for i, e in enumerate(events, start=1)]


def bot(utter: str, text: str, ts: float) -> Dict[str, Any]:
    return {"event": "bot", "text": text, "timestamp": ts, "metadata": {"utter_action": utter}}


EVENTS = [
    {"event": "active_loop", "name": "prescreen_form", "timestamp": 1.0},
    bot("utter_ask_suicidal_thoughts", "Question 9 of 16\nNow some safety questions.", 2.0),
    {"event": "user", "text": "sometimes", "timestamp": 3.0, "parse_data": {"intent": {"name": "inform"}}},
    bot("utter_prescreen_thoughts_follow_up", "Thank you for telling me.", 4.0),
    bot("utter_ask_suicide_plan", "Question 10 of 18\nDo you have a plan?", 5.0),
    {"event": "slot", "name": "suicidal_thoughts", "value": "yes", "timestamp": 6.0},
    bot("utter_ask_pregnant_or_breastfeeding", "Question 12 of 18\nAre you pregnant?", 7.0),
]


def test_support_sees_the_questions_without_the_follow_ups_or_the_totals():
    said = [(m["utter"], m["text"], m["masked"]) for m in build_transcript(rows(EVENTS), False)["messages"]
            if m["speaker"] == "bot"]
    assert said == [
        ("utter_ask_suicidal_thoughts", "Now some safety questions.", False),
        ("utter_prescreen_thoughts_follow_up", "", True),
        ("utter_ask_suicide_plan", "", True),
        ("utter_ask_pregnant_or_breastfeeding", "Are you pregnant?", False),
    ]


def test_clinicians_see_everything():
    transcript = build_transcript(rows(EVENTS), True)
    said = [m["text"] for m in transcript["messages"] if m["speaker"] == "bot"]
    assert said == [e["text"] for e in EVENTS if e["event"] == "bot"]
    assert transcript["answers"] == {"suicidal_thoughts": "yes"}
