"""What the pre-screen's form actions share: slots, rules, interruptions, resets, the safety flag."""

import logging
from typing import Any, Callable, Dict, List, Optional, Text

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from clinic.storage import db
from clinic.rules.answer_parsing import detect_correction
from clinic.rules.eligibility import QUESTIONS, Rules, is_valid_answer
from clinic.settings import get_settings
from actions.cached_settings import eligibility_rules
from actions.faq_more import more_response

logger = logging.getLogger(__name__)

CONTACT_SLOTS = ("contact_name", "contact_email", "contact_phone", "contact_time", "contact_consent")
WAITLIST_SLOTS = ("waitlist_email", "waitlist_consent")
MISSES = "prescreen_misses"
MAX_MISSES = 3
# Which slot a correction names (clinic.rules.answer_parsing.detect_correction).
CORRECTABLE = {"age": "age", "state": "state", "email": "contact_email", "phone": "contact_phone"}
FORM_SLOTS = {"prescreen_form": QUESTIONS, "contact_form": CONTACT_SLOTS, "waitlist_form": WAITLIST_SLOTS}
# Intents whose question is answered mid-form before the question is asked again.
ANSWERED_MID_FORM = {"medical_advice": "utter_medical_advice", "bot_challenge": "utter_iamabot"}


def rules() -> Rules:
    return eligibility_rules()


def answers_of(tracker: Tracker) -> Dict[Text, Any]:
    """The validated answers so far. A slot can still hold the raw text of an
    answer being validated (required_slots() runs first): that is no answer yet."""
    answers = {}
    for question in QUESTIONS:
        value = tracker.get_slot(question)
        answers[question] = value if is_valid_answer(question, value) else None
    return answers


def reset_events() -> List[EventType]:
    """Forget the pre-screen's answers and contact details (the transcript stays)."""
    slots = list(QUESTIONS) + list(CONTACT_SLOTS) + list(WAITLIST_SLOTS)
    return [SlotSet(s, None) for s in slots] + [SlotSet(MISSES, 0)]


def answer_interruption(dispatcher: CollectingDispatcher, tracker: Tracker) -> bool:
    """Answer a question asked instead of an answer (an FAQ, personal advice...).

    True when something was answered: the form then asks its question again.
    """
    message = tracker.latest_message or {}
    intent = (message.get("intent") or {}).get("name")
    if intent == "faq":
        selected = (message.get("response_selector") or {}).get("faq", {}).get("response", {})
        utter_action = selected.get("utter_action")
        if utter_action:
            dispatcher.utter_message(response=utter_action)
            return True
    if intent == "faq_more":  # the "Tell me more" button of an FAQ answer given mid-form
        dispatcher.utter_message(response=more_response(tracker))
        return True
    if intent in ANSWERED_MID_FORM:
        dispatcher.utter_message(response=ANSWERED_MID_FORM[intent])
        return True
    return False


def not_understood(
    dispatcher: CollectingDispatcher, tracker: Tracker, slot: Text, wrong_response: Text, interruptions: bool = True
) -> Dict[Text, Any]:
    """The slot stays empty; the visitor hears why, or an offer of a person after three misses.

    With ``interruptions`` False no other answer (an FAQ...) is ever given in the question's place."""
    if interruptions and answer_interruption(dispatcher, tracker):
        return {slot: None}
    misses = int(tracker.get_slot(MISSES) or 0) + 1
    if misses >= MAX_MISSES:
        dispatcher.utter_message(response="utter_prescreen_offer_person")
        return {slot: None, MISSES: 0}
    dispatcher.utter_message(response=wrong_response)
    return {slot: None, MISSES: misses}


def understood(slot: Text, value: Any) -> Dict[Text, Any]:
    return {slot: value, MISSES: 0}


def correction(
    dispatcher: CollectingDispatcher, tracker: Tracker, slot: Text, found: Optional[tuple]
) -> Optional[Dict[Text, Any]]:
    """An earlier answer of the same form corrected ("actually I'm 25"): set it,
    and ask the current question again."""
    if not found:
        return None
    kind, value = found
    target = CORRECTABLE.get(kind)
    if target == slot:
        return understood(slot, value)
    same_form = FORM_SLOTS.get(tracker.active_loop_name or "", ())
    if target not in same_form or tracker.get_slot(target) is None:
        return None
    dispatcher.utter_message(response="utter_prescreen_corrected")
    return {target: value, slot: None, MISSES: 0}


def is_being_answered(tracker: Tracker, slot: Text) -> bool:
    """The visitor answers this question now (not an earlier answer validated again as a form restarts)."""
    return tracker.get_slot("requested_slot") == slot


def flag_for_staff(tracker: Tracker) -> None:
    """The conversation is flagged for staff's urgent review (thoughts of ending one's life)."""
    try:
        db.flag_conversation(db.get_engine(get_settings().clinic_db_url), tracker.sender_id, "crisis")
    except Exception:  # the visitor still gets the resources; the referral is still urgent
        logger.exception("could not store the urgent flag of a conversation")


def validate_answer(
    slot: Text,
    value: Any,
    dispatcher: CollectingDispatcher,
    tracker: Tracker,
    parser: Callable[[Text], Optional[Any]],
    wrong_response: Text,
    interruptions: bool = True,
) -> Dict[Text, Any]:
    """A form answer: the parsed value, a correction of an earlier answer, or a clear re-ask.

    A value already in the question's domain (an answer parsed before and validated again
    as the form starts again after a crisis, or a typed "no") is kept as it is."""
    if slot in QUESTIONS and is_valid_answer(slot, value):
        return understood(slot, value)
    text = str(value or "")
    parsed = parser(text)
    if parsed is not None:
        return understood(slot, parsed)
    # Not an answer to this question: perhaps a correction of an earlier one.
    corrected = correction(dispatcher, tracker, slot, detect_correction(text))
    if corrected is not None:
        return corrected
    return not_understood(dispatcher, tracker, slot, wrong_response, interruptions)
