"""Wherever the assistant asks for an e-mail address, the visitor can decline with one tap.

Each form question that asks for an e-mail address (the referral's contact details, the waitlist,
a callback request) carries a "No thanks" button sending the ``stop`` intent; that intent is never
taken as the form's answer (the slot's mappings leave it out) and a rule stops that form on it
(tests/stories: the stops of each form).
"""

from pathlib import Path

import yaml

from clinic.rules import form_answers
from clinic.rules.answers import domain_responses

ROOT = Path(__file__).resolve().parent.parent


def email_questions():
    """(form, slot, response) for each form slot whose question asks for an e-mail address."""
    responses = domain_responses()
    found = []
    for form, slots in form_answers.forms().items():
        for slot in sorted(slots):
            response = responses.get(f"utter_ask_{slot}")
            if response and any("email address" in v.text.lower() for v in response.variations):
                found.append((form, slot, response))
    return found


def stop_rules():
    """The forms a rule stops when the visitor's intent is ``stop``."""
    stopped = set()
    for path in (ROOT / "data" / "rules").glob("*.yml"):
        for rule in (yaml.safe_load(path.read_text()) or {}).get("rules") or []:
            steps = rule.get("steps") or []
            loops = [c.get("active_loop") for c in rule.get("condition") or [] if "active_loop" in c]
            if steps and steps[0].get("intent") == "stop" and loops:
                stopped.update(loops)
    return stopped


def test_every_email_question_offers_no_thanks() -> None:
    found = email_questions()
    assert {(form, slot) for form, slot, _ in found} == {
        ("contact_form", "contact_email"), ("waitlist_form", "waitlist_email"), ("callback_form", "callback_contact")}
    for form, slot, response in found:
        for variation in response.variations:
            assert ("No thanks", "/stop") in variation.buttons, (slot, variation.buttons)


def test_no_thanks_stops_the_form_and_is_never_taken_as_the_answer() -> None:
    stopped = stop_rules()
    for form, slot, _ in email_questions():
        assert "stop" in form_answers.excluded_intents()[form], form
        assert form in stopped, form
