"""Pre-screen, contact, referral and waitlist actions: exact events and responses.

Same style as tests/test_actions.py: a rasa_sdk Tracker, the action run with a
CollectingDispatcher, and the exact events and response names asserted.
"""

import asyncio
from typing import Any, Dict, List, Optional

import pytest
from rasa_sdk import Tracker
from rasa_sdk.events import ActiveLoop, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import func, select

import actions.referral as referral_actions
from actions.prescreen_form import ValidatePrescreenForm
from actions.prescreen_outcome import ActionPrescreenOutcome, ActionPrescreenStop
from actions.referral import (
    ActionJoinWaitlist,
    ActionSubmitReferral,
    ValidateContactForm,
    ValidateWaitlistForm,
)
from clinic.storage import db, referrals
from clinic.settings import get_settings
from tests.stored_conversation import as_stored

SENDER = "5eed" * 8

QUESTIONS = [
    "age",
    "state",
    "concern",
    "treatments_tried",
    "phq2_interest",
    "phq2_mood",
    "gad2_nervous",
    "gad2_worry",
    "suicidal_thoughts",
    "suicide_plan",
    "suicide_attempt",
    "pregnant_or_breastfeeding",
    "psychosis_history",
    "cardiovascular",
    "medications",
    "medical_conditions",
    "substance_use",
    "support_person",
]
# Asked of a visitor who says no to thoughts of ending their life.
NO_FOLLOW_UPS = [q for q in QUESTIONS if q not in ("suicide_plan", "suicide_attempt")]

# What every reset forgets: the answers, the contact and waitlist details; misses back to 0.
RESET = (
    [SlotSet(q, None) for q in QUESTIONS]
    + [
        SlotSet("contact_name", None),
        SlotSet("contact_email", None),
        SlotSet("contact_phone", None),
        SlotSet("contact_time", None),
        SlotSet("contact_consent", None),
        SlotSet("waitlist_email", None),
        SlotSet("waitlist_consent", None),
    ]
    + [SlotSet("prescreen_misses", 0)]
)

# Validated answers of a visitor who is eligible (PHQ-2 = 4, a positive screen).
ELIGIBLE: Dict[str, Any] = {
    "age": 30,
    "state": "TX",
    "concern": "depression",
    "treatments_tried": "medication",
    "phq2_interest": 2,
    "phq2_mood": 2,
    "gad2_nervous": 1,
    "gad2_worry": 1,
    "suicidal_thoughts": "no",
    "pregnant_or_breastfeeding": "no",
    "psychosis_history": "no",
    "cardiovascular": "no",
    "medications": "no",
    "medical_conditions": "no",
    "substance_use": "no",
    "support_person": "yes",
}
# Thoughts of ending one's life with no plan, intention or attempt.
PASSIVE: Dict[str, Any] = {"suicidal_thoughts": "yes", "suicide_plan": "no", "suicide_attempt": "no"}

CONTACT: Dict[str, Any] = {
    "contact_name": "Jane Doe",
    "contact_email": "jane@example.com",
    "contact_phone": "+1 212-555-0199",
    "contact_time": "Mornings",
    "contact_consent": "yes",
}


def answers(**changes: Any) -> Dict[str, Any]:
    return dict(ELIGIBLE, **changes)


def make_tracker(
    slots: Optional[Dict[str, Any]] = None,
    text: str = "hello",
    intent: str = "inform",
    active_loop: Optional[str] = None,
    requested_slot: Optional[str] = None,
    entities: Optional[List[Dict[str, Any]]] = None,
    response_selector: Optional[Dict[str, Any]] = None,
    sender_id: str = SENDER,
) -> Tracker:
    slots = dict(slots or {})
    if requested_slot:
        slots["requested_slot"] = requested_slot
    message: Dict[str, Any] = {
        "text": text,
        "intent": {"name": intent, "confidence": 1.0},
        "entities": entities or [],
    }
    if response_selector is not None:
        message["response_selector"] = response_selector
    return Tracker(
        sender_id=sender_id,
        slots=slots,
        latest_message=message,
        events=[],
        paused=False,
        followup_action=None,
        active_loop={"name": active_loop} if active_loop else {},
        latest_action_name="action_listen",
    )


def run(action: Any, tracker: Tracker) -> tuple:
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, tracker, {}))
    return events, [m.get("response") for m in dispatcher.messages], dispatcher


def validate(form: Any, slot: str, value: Any, tracker: Tracker) -> tuple:
    """Call form.validate_<slot> directly: (returned slot values, response names)."""
    dispatcher = CollectingDispatcher()
    result = getattr(form, f"validate_{slot}")(value, dispatcher, tracker, {})
    return result, [m.get("response") for m in dispatcher.messages]


def asked(slot: str, text: str, slots: Optional[Dict[str, Any]] = None, **kwargs: Any) -> Tracker:
    """A tracker whose form is asking ``slot``; the from_text mapping has put ``text`` in it."""
    form = kwargs.pop("form", "prescreen_form")
    return make_tracker(
        slots=dict(slots or {}, **{slot: text}), text=text, active_loop=form, requested_slot=slot, **kwargs
    )


def required(tracker: Tracker) -> List[str]:
    return asyncio.run(ValidatePrescreenForm().required_slots(list(QUESTIONS), CollectingDispatcher(), tracker, {}))


def engine() -> Any:
    return db.get_engine(get_settings().clinic_db_url)


# --- 1. ValidatePrescreenForm ---------------------------------------------------------

GOOD_ANSWERS = [
    ("age", "twenty five", 25),
    ("age", "I'm 34", 34),
    ("state", "TX", "TX"),
    ("state", "Texs", "TX"),
    ("state", "I live in California", "CA"),
    ("concern", "Depression", "depression"),
    ("concern", "mostly anxiety", "anxiety"),
    ("treatments_tried", "both", "both"),
    ("treatments_tried", "Neither yet", "none"),
    ("phq2_interest", "Several days", 1),
    ("phq2_mood", "Not at all", 0),
    ("gad2_nervous", "More than half the days", 2),
    ("gad2_worry", "Nearly every day", 3),
    ("phq2_interest", "3 days", 1),
    ("phq2_mood", "8 days", 2),
    ("gad2_nervous", "2", 2),  # the buttons show each option's number
    ("gad2_worry", "every day", 3),
    ("suicidal_thoughts", "nope", "no"),  # a yes: its follow-up and flag are tested below
    ("suicide_plan", "no plan", "no"),
    ("suicide_plan", "Yes", "yes"),
    ("suicide_attempt", "never tried", "no"),
    ("suicide_attempt", "Not sure", "unsure"),
    ("pregnant_or_breastfeeding", "not sure", "unsure"),
    ("psychosis_history", "No", "no"),
    ("cardiovascular", "Not sure", "unsure"),
    ("medications", "I take Xanax", "yes"),
    ("medications", "None of these", "no"),
    ("medical_conditions", "glaucoma", "yes"),
    ("medical_conditions", "None of these", "no"),
    ("substance_use", "Yes, but not now", "past"),
    ("substance_use", "Yes, still now", "current"),
    ("substance_use", "nope", "no"),
    ("support_person", "yes, my partner", "yes"),
]


@pytest.mark.parametrize("slot,text,value", GOOD_ANSWERS)
def test_a_good_answer_fills_the_slot_and_resets_the_misses(slot, text, value):
    result, responses = validate(ValidatePrescreenForm(), slot, text, asked(slot, text, {"prescreen_misses": 1}))
    assert result == {slot: value, "prescreen_misses": 0}
    assert responses == []


def test_a_state_from_a_gpe_entity_is_used():
    text = "down south, in the lone star state"
    tracker = asked("state", text, entities=[{"entity": "GPE", "value": "Texas"}])
    result, responses = validate(ValidatePrescreenForm(), "state", text, tracker)
    assert result == {"state": "TX", "prescreen_misses": 0}
    assert responses == []


BAD_ANSWERS = [
    ("age", "utter_wrong_age"),
    ("state", "utter_wrong_state"),
    ("concern", "utter_wrong_concern"),
    ("treatments_tried", "utter_wrong_treatments_tried"),
    ("phq2_interest", "utter_wrong_frequency"),
    ("phq2_mood", "utter_wrong_frequency"),
    ("gad2_nervous", "utter_wrong_frequency"),
    ("gad2_worry", "utter_wrong_frequency"),
    ("suicidal_thoughts", "utter_wrong_suicide_answer"),
    ("suicide_plan", "utter_wrong_suicide_answer"),
    ("suicide_attempt", "utter_wrong_suicide_answer"),
    ("pregnant_or_breastfeeding", "utter_wrong_yes_no"),
    ("psychosis_history", "utter_wrong_yes_no"),
    ("cardiovascular", "utter_wrong_yes_no"),
    ("medications", "utter_wrong_yes_no"),
    ("medical_conditions", "utter_wrong_yes_no"),
    ("substance_use", "utter_wrong_substance_use"),
    ("support_person", "utter_wrong_yes_no"),
]


@pytest.mark.parametrize("slot,wrong", BAD_ANSWERS)
def test_a_bad_answer_is_asked_again_and_counts_a_miss(slot, wrong):
    result, responses = validate(ValidatePrescreenForm(), slot, "banana", asked(slot, "banana"))
    assert result == {slot: None, "prescreen_misses": 1}
    assert responses == [wrong]


@pytest.mark.parametrize("slot,wrong", BAD_ANSWERS)
def test_the_second_miss_still_re_asks(slot, wrong):
    result, responses = validate(ValidatePrescreenForm(), slot, "banana", asked(slot, "banana", {"prescreen_misses": 1}))
    assert result == {slot: None, "prescreen_misses": 2}
    assert responses == [wrong]


@pytest.mark.parametrize("slot", [s for s, _ in BAD_ANSWERS])
def test_the_third_miss_in_a_row_offers_a_person(slot):
    result, responses = validate(ValidatePrescreenForm(), slot, "banana", asked(slot, "banana", {"prescreen_misses": 2}))
    assert result == {slot: None, "prescreen_misses": 0}
    assert responses == ["utter_prescreen_offer_person"]


FAQ_SELECTOR = {"faq": {"response": {"utter_action": "utter_faq/pricing", "confidence": 0.97}}}


@pytest.mark.parametrize("slot", ["age", "state", "phq2_mood", "medications"])
def test_an_faq_asked_instead_of_an_answer_is_answered_without_counting_a_miss(slot):
    text = "how much does it cost?"
    tracker = asked(slot, text, {"prescreen_misses": 1}, intent="faq", response_selector=FAQ_SELECTOR)
    result, responses = validate(ValidatePrescreenForm(), slot, text, tracker)
    assert result == {slot: None}  # prescreen_misses untouched
    assert responses == ["utter_faq/pricing"]


def test_an_faq_without_a_selected_response_is_a_plain_miss():
    text = "how much does it cost?"
    tracker = asked("age", text, intent="faq", response_selector={})
    result, responses = validate(ValidatePrescreenForm(), "age", text, tracker)
    assert result == {"age": None, "prescreen_misses": 1}
    assert responses == ["utter_wrong_age"]


@pytest.mark.parametrize(
    "intent,response", [("medical_advice", "utter_medical_advice"), ("bot_challenge", "utter_iamabot")]
)
@pytest.mark.parametrize("slot", ["age", "pregnant_or_breastfeeding"])
def test_other_questions_asked_mid_form_are_answered(slot, intent, response):
    text = "is it safe for me?"
    tracker = asked(slot, text, {"prescreen_misses": 2}, intent=intent)
    result, responses = validate(ValidatePrescreenForm(), slot, text, tracker)
    assert result == {slot: None}
    assert responses == [response]


@pytest.mark.parametrize("slot", ["suicidal_thoughts", "suicide_plan", "suicide_attempt"])
@pytest.mark.parametrize(
    "text,intent,selector",
    [
        ("how much does it cost?", "faq", FAQ_SELECTOR),
        ("what do you mean by that", "faq", {"faq": {"response": {"utter_action": "utter_faq/treatment_plan"}}}),
        ("is it safe for me?", "medical_advice", None),
        ("are you a bot", "bot_challenge", None),
    ],
)
def test_a_suicide_question_never_gets_another_answer_in_its_place(slot, text, intent, selector):
    tracker = asked(slot, text, {"prescreen_misses": 0}, intent=intent, response_selector=selector)
    result, responses = validate(ValidatePrescreenForm(), slot, text, tracker)
    assert result == {slot: None, "prescreen_misses": 1}
    assert responses == ["utter_wrong_suicide_answer"]


@pytest.mark.parametrize(
    "text", ["no plan but yes", "on and off", "i don't have a plan", "not really, just thoughts", "sometimes"]
)
def test_answers_the_model_takes_for_an_faq_are_answers_to_the_thoughts_question(clinic_env, text):
    tracker = asked("suicidal_thoughts", text, intent="faq",
                    response_selector={"faq": {"response": {"utter_action": "utter_faq/treatment_plan"}}})
    result, responses = validate(ValidatePrescreenForm(), "suicidal_thoughts", text, tracker)
    assert result == {"suicidal_thoughts": "yes", "prescreen_misses": 0}
    assert responses == ["utter_prescreen_thoughts_follow_up"]


@pytest.mark.parametrize("text, value", [("yes", "yes"), ("Not sure", "unsure"), ("passing thoughts", "yes")])
def test_thoughts_of_ending_ones_life_are_followed_up_and_flagged_for_staff(clinic_env, text, value):
    tracker = asked("suicidal_thoughts", text)
    result, responses = validate(ValidatePrescreenForm(), "suicidal_thoughts", text, tracker)
    assert result == {"suicidal_thoughts": value, "prescreen_misses": 0}
    assert responses == ["utter_prescreen_thoughts_follow_up"]
    assert [f["flag"] for f in db.flags_for(engine(), tracker.sender_id)] == ["crisis"]
    assert required(make_tracker(dict(answers(suicidal_thoughts=value), age=30)))[:2] == ["suicide_plan", "suicide_attempt"]


def test_a_clear_no_to_thoughts_is_neither_followed_up_nor_flagged(clinic_env):
    tracker = asked("suicidal_thoughts", "no")
    result, responses = validate(ValidatePrescreenForm(), "suicidal_thoughts", "no", tracker)
    assert result == {"suicidal_thoughts": "no", "prescreen_misses": 0}
    assert responses == []
    assert db.flags_for(engine(), tracker.sender_id) == []


def test_a_yes_to_thoughts_validated_again_as_the_form_restarts_says_nothing_again(clinic_env):
    # the form starting again validates the answers it holds: requested_slot is not this question
    tracker = make_tracker({"suicidal_thoughts": "yes"}, text="am i eligible", active_loop="prescreen_form")
    result, responses = validate(ValidatePrescreenForm(), "suicidal_thoughts", "yes", tracker)
    assert result == {"suicidal_thoughts": "yes", "prescreen_misses": 0}
    assert responses == []
    assert db.flags_for(engine(), tracker.sender_id) == []


def test_no_plan_and_no_attempt_gives_the_resources_and_the_pre_screen_goes_on(clinic_env):
    slots = dict(answers(suicidal_thoughts="yes", suicide_plan="no"), age=30)
    for field in ("pregnant_or_breastfeeding", "psychosis_history", "cardiovascular", "medications",
                  "medical_conditions", "substance_use", "support_person"):
        slots[field] = None
    result, responses = validate(ValidatePrescreenForm(), "suicide_attempt", "never tried",
                                 asked("suicide_attempt", "never tried", slots))
    assert result == {"suicide_attempt": "no", "prescreen_misses": 0}
    assert responses == ["utter_prescreen_passive_thoughts"]
    assert required(make_tracker(dict(slots, suicide_attempt="no")))[0] == "pregnant_or_breastfeeding"


@pytest.mark.parametrize("slot, text", [("suicide_plan", "yes"), ("suicide_plan", "not sure"),
                                        ("suicide_attempt", "yes"), ("suicide_attempt", "i guess")])
def test_a_plan_or_an_attempt_ends_the_questions(slot, text):
    slots = dict(answers(suicidal_thoughts="yes", suicide_plan="no"), age=30)
    slots.pop(slot, None)
    result, responses = validate(ValidatePrescreenForm(), slot, text, asked(slot, text, slots))
    assert result[slot] in ("yes", "unsure")
    assert responses == []
    assert required(make_tracker(dict(slots, **{slot: result[slot]}))) == []


# --- the progress line -----------------------------------------------------------------


def form_turn(slot: str, text: str, slots: Optional[Dict[str, Any]] = None) -> Tracker:
    """A tracker as Rasa sends it to the form's validation: the answer's text is the last slot event."""
    tracker = asked(slot, text, slots)
    tracker.events = [{"event": "user", "text": text}, {"event": "slot", "name": slot, "value": text}]
    return tracker


def run_form(tracker: Tracker) -> tuple:
    dispatcher = CollectingDispatcher()
    domain = {"forms": {"prescreen_form": {"required_slots": QUESTIONS}}}
    events = asyncio.run(ValidatePrescreenForm().run(dispatcher, tracker, domain))
    return events, [m.get("response") for m in dispatcher.messages]


def test_the_first_question_shows_its_number():
    events, _ = run_form(make_tracker(active_loop="prescreen_form"))
    assert events[-1] == SlotSet("prescreen_progress", "Question 1 of 16")


def test_each_answer_moves_the_progress_line_on():
    events, responses = run_form(form_turn("state", "Texas", {"age": 30}))
    assert SlotSet("state", "TX") in events
    assert events[-1] == SlotSet("prescreen_progress", "Question 3 of 16")
    assert responses == []


def test_a_yes_to_thoughts_adds_its_two_follow_ups_to_the_count(clinic_env):
    slots = {q: v for q, v in ELIGIBLE.items() if q in QUESTIONS[:8]}
    events, responses = run_form(form_turn("suicidal_thoughts", "sometimes", slots))
    assert events[-1] == SlotSet("prescreen_progress", "Question 10 of 18")
    assert SlotSet("requested_slot", "suicide_plan") in events
    assert responses == ["utter_prescreen_thoughts_follow_up"]


def test_an_answer_not_understood_keeps_the_number():
    events, responses = run_form(form_turn("age", "banana", {"prescreen_progress": "Question 1 of 16"}))
    assert events == [SlotSet("age", None), SlotSet("prescreen_misses", 1), SlotSet("requested_slot", "age")]
    assert responses == ["utter_wrong_age"]


@pytest.mark.parametrize("intent", ["crisis", "stop", "human_handoff", "urgent_medical"])
def test_a_message_that_fills_no_slot_sets_none_so_that_its_rule_takes_over(intent):
    # the slot mappings leave these out: Rasa rejects the form only if its validation sets no slot
    tracker = asked("age", "i want to die", {"age": None, "prescreen_progress": "Question 1 of 16"}, intent=intent)
    tracker.events = [{"event": "user", "text": "i want to die"}]
    events, responses = run_form(tracker)
    assert [e for e in events if e.get("name") != "requested_slot"] == []
    assert responses == []


def test_no_progress_line_when_nothing_is_left_to_ask():
    events, _ = run_form(form_turn("age", "16"))
    assert SlotSet("age", 16) in events
    assert not [e for e in events if e.get("name") == "prescreen_progress"]


def test_answers_kept_from_before_are_validated_again_as_they_are():
    # a crisis ended the form; the visitor starts it again: the numbers kept are no typed text
    slots = dict(ELIGIBLE, phq2_mood=2, gad2_worry=0)
    for slot in ("age", "phq2_mood", "gad2_worry", "substance_use", "state"):
        result, responses = validate(ValidatePrescreenForm(), slot, slots[slot], make_tracker(slots))
        assert result == {slot: slots[slot], "prescreen_misses": 0}
        assert responses == []


def test_a_correction_of_an_earlier_answer_sets_it_and_asks_the_current_question_again():
    text = "actually i'm 25"
    tracker = asked("state", text, {"age": 40, "prescreen_misses": 1})
    result, responses = validate(ValidatePrescreenForm(), "state", text, tracker)
    assert result == {"age": 25, "state": None, "prescreen_misses": 0}
    assert responses == ["utter_prescreen_corrected"]


def test_a_correction_naming_the_slot_being_asked_just_fills_it():
    text = "wait i'm in CA not NY"
    result, responses = validate(ValidatePrescreenForm(), "state", text, asked("state", text))
    assert result == {"state": "CA", "prescreen_misses": 0}
    assert responses == []


def test_a_correction_of_a_question_not_answered_yet_is_not_a_correction():
    text = "actually i'm 25"
    result, responses = validate(ValidatePrescreenForm(), "state", text, asked("state", text))
    assert result == {"state": None, "prescreen_misses": 1}
    assert responses == ["utter_wrong_state"]


# --- 2. required_slots() ------------------------------------------------------------


def test_every_question_but_the_follow_ups_is_required_at_the_start():
    assert required(make_tracker(active_loop="prescreen_form")) == NO_FOLLOW_UPS


def test_answered_questions_are_not_asked_again():
    assert required(make_tracker({"age": 30, "state": "TX"})) == NO_FOLLOW_UPS[2:]


@pytest.mark.parametrize(
    "slots",
    [
        {"age": 16},
        {"age": 30, "state": "OH"},
        {"age": 30, "state": "TX", "suicidal_thoughts": "yes", "suicide_plan": "yes"},
        {"age": 30, "state": "TX", "pregnant_or_breastfeeding": "yes"},
        ELIGIBLE,
    ],
    ids=["under_age", "state_not_served", "suicide_plan", "exclude_reason", "all_answered"],
)
def test_nothing_more_is_asked_once_it_no_longer_matters(slots):
    assert required(make_tracker(dict(slots))) == []


def test_a_review_reason_does_not_stop_the_questions():
    assert required(make_tracker({"age": 30, "state": "TX", "medications": "yes"})) == [
        q for q in NO_FOLLOW_UPS if q not in ("age", "state", "medications")
    ]


def test_passive_thoughts_keep_the_questions_coming_after_an_exclusion():
    slots = {"age": 30, "state": "TX", **PASSIVE, "pregnant_or_breastfeeding": "yes"}
    assert required(make_tracker(slots)) == [q for q in QUESTIONS if q not in slots]


@pytest.mark.parametrize(
    "slot,raw", [("age", "twenty five"), ("age", "16"), ("phq2_mood", "Several days"), ("concern", "Depression")]
)
def test_raw_text_waiting_for_validation_is_not_an_answer(slot, raw):
    assert slot in required(make_tracker({slot: raw}))


def test_raw_age_text_under_the_minimum_does_not_end_the_form_before_validation():
    # "16" as typed is a str: only once validated (16) does it end the pre-screen.
    assert required(make_tracker({"age": "16"})) == NO_FOLLOW_UPS


# --- 3. ActionPrescreenOutcome -----------------------------------------------------------


def test_eligible(clinic_env):
    events, responses, _ = run(ActionPrescreenOutcome(), make_tracker(answers()))
    assert events == [SlotSet("prescreen_outcome", "eligible")]
    assert responses == ["utter_prescreen_eligible"]


@pytest.mark.parametrize(
    "changes,reasons",
    [
        ({"substance_use": "past"}, "alcohol or drug problems in the past"),
        ({"support_person": "unsure"}, "having a sober adult nearby during at-home sessions"),
        ({"treatments_tried": "none"}, "not having tried other treatments yet"),
        ({"phq2_interest": 0, "phq2_mood": 1, "gad2_nervous": 1, "gad2_worry": 1}, "your answers about mood and worry"),
        ({"cardiovascular": "unsure"}, "health questions you weren't sure about"),
        ({"cardiovascular": "yes"}, "blood pressure, heart or blood vessel conditions"),
        ({"medications": "yes"}, "medicines that can change how ketamine affects you"),
        ({"medical_conditions": "yes"}, "health conditions that need a clinician's look"),
        (
            {"medications": "yes", "support_person": "no", "treatments_tried": "none"},
            "medicines that can change how ketamine affects you, having a sober adult nearby during at-home sessions"
            " and not having tried other treatments yet",
        ),
    ],
)
def test_clinician_review_names_the_reasons_in_plain_words(clinic_env, changes, reasons):
    events, responses, dispatcher = run(ActionPrescreenOutcome(), make_tracker(answers(**changes)))
    assert events == [SlotSet("prescreen_outcome", "clinician_review")]
    assert responses == ["utter_prescreen_clinician_review"]
    assert dispatcher.messages[0]["reasons"] == reasons


@pytest.mark.parametrize("thoughts", ["yes", "unsure"])
def test_passive_thoughts_end_in_an_urgent_clinician_review(clinic_env, thoughts):
    tracker = make_tracker(answers(**dict(PASSIVE, suicidal_thoughts=thoughts)))
    events, responses, dispatcher = run(ActionPrescreenOutcome(), tracker)
    assert events == [SlotSet("prescreen_outcome", "clinician_review")]
    assert responses == ["utter_prescreen_clinician_review", "utter_prescreen_urgent_review"]
    assert dispatcher.messages[0]["reasons"] == "what you shared about thoughts of ending your life"


def test_passive_thoughts_and_an_exclusion_are_still_a_referral_with_the_hotline(clinic_env):
    tracker = make_tracker(answers(**PASSIVE, pregnant_or_breastfeeding="yes"))
    events, responses, dispatcher = run(ActionPrescreenOutcome(), tracker)
    assert events == [SlotSet("prescreen_outcome", "clinician_review")]
    assert responses == [
        "utter_prescreen_clinician_review", "utter_prescreen_urgent_review", "utter_prescreen_perinatal_support",
    ]
    assert dispatcher.messages[0]["reasons"] == (
        "what you shared about thoughts of ending your life and pregnancy or breastfeeding"
    )


@pytest.mark.parametrize(
    "slots,reasons,support",
    [
        ({"age": 16, "state": "TX"}, "the treatment is only for adults of 18 and over", []),
        (answers(age=16), "the treatment is only for adults of 18 and over", []),
        (answers(pregnant_or_breastfeeding="yes"), "pregnancy or breastfeeding", ["utter_prescreen_perinatal_support"]),
        (answers(psychosis_history="yes"), "a history of psychosis, schizophrenia or mania", []),
        (answers(substance_use="current"), "current alcohol or drug problems", ["utter_prescreen_substance_support"]),
        (
            answers(psychosis_history="yes", medications="yes"),
            "a history of psychosis, schizophrenia or mania and medicines that can change how ketamine affects you",
            [],
        ),
    ],
    ids=["age_16_early", "age_16", "pregnant", "psychosis", "substance_current", "psychosis_and_medicines"],
)
def test_not_eligible_explains_kindly_offers_a_person_and_forgets_the_answers(clinic_env, slots, reasons, support):
    events, responses, dispatcher = run(ActionPrescreenOutcome(), make_tracker(dict(slots)))
    assert events == [SlotSet("prescreen_outcome", "not_eligible")] + RESET
    assert responses == ["utter_prescreen_not_eligible"] + support
    assert dispatcher.messages[0]["reasons"] == reasons


def test_out_of_area_names_the_state_and_keeps_it_for_the_waitlist(clinic_env):
    events, responses, dispatcher = run(ActionPrescreenOutcome(), make_tracker({"age": 30, "state": "OH"}))
    assert events == [SlotSet("prescreen_outcome", "out_of_area")]
    assert responses == ["utter_prescreen_out_of_area"]
    assert dispatcher.messages[0]["state_name"] == "Ohio"


@pytest.mark.parametrize("follow_ups", [{"suicide_plan": "yes"}, {"suicide_plan": "unsure"},
                                        {"suicide_plan": "no", "suicide_attempt": "yes"}])
def test_a_plan_or_an_attempt_gives_the_crisis_response_flags_urgent_and_keeps_the_answers(clinic_env, follow_ups):
    tracker = make_tracker(answers(suicidal_thoughts="yes", **follow_ups))
    events, responses, _ = run(ActionPrescreenOutcome(), tracker)
    assert responses == ["utter_prescreen_safety_first", "utter_crisis_resources", "utter_ask_safe_now"]
    # no reset: the pre-screen started again ends here again, with no at-home referral
    assert events == [SlotSet("prescreen_outcome", "crisis"), SlotSet("crisis_flagged", True),
                      SlotSet("safety_mode", True), SlotSet("safety_question", "are_you_safe")]
    assert [f["flag"] for f in db.flags_for(engine(), tracker.sender_id)] == ["crisis"]


def test_crisis_outranks_every_other_outcome(clinic_env):
    tracker = make_tracker({"age": 16, "state": "OH", "suicide_plan": "yes", "pregnant_or_breastfeeding": "yes"})
    events, responses, _ = run(ActionPrescreenOutcome(), tracker)
    assert events[0] == SlotSet("prescreen_outcome", "crisis")
    assert responses == ["utter_prescreen_safety_first", "utter_crisis_resources", "utter_ask_safe_now"]


# --- 4. ActionPrescreenStop --------------------------------------------------------------


def test_stop_ends_the_form_and_forgets_the_answers():
    tracker = make_tracker(answers(), active_loop="prescreen_form", requested_slot="phq2_mood")
    events, responses, _ = run(ActionPrescreenStop(), tracker)
    assert responses == ["utter_prescreen_stopped"]
    assert events == [ActiveLoop(None), SlotSet("requested_slot", None), SlotSet("prescreen_outcome", None)] + RESET


# --- 5. ValidateContactForm and ValidateWaitlistForm ---------------------------------------


@pytest.mark.parametrize(
    "slot,text,value",
    [
        ("contact_name", "Jane Doe", "Jane Doe"),
        ("contact_name", "  Jane   Doe ", "Jane Doe"),
        ("contact_name", "x" * 100, "x" * 100),
        ("contact_email", "Jane.Doe@Example.COM", "jane.doe@example.com"),
        ("contact_email", "my email is jane@example.com", "jane@example.com"),
        ("contact_phone", "(212) 555-0199", "+1 212-555-0199"),
        ("contact_phone", "+1 212.555.0199", "+1 212-555-0199"),
        ("contact_phone", "skip", "skipped"),
        ("contact_phone", "Skip", "skipped"),
        ("contact_phone", "no thanks.", "skipped"),
        ("contact_time", "Mornings", "Mornings"),
        ("contact_consent", "yes", "yes"),
        ("contact_consent", "Yes", "yes"),
        ("contact_consent", "no", "no"),
    ],
)
def test_contact_details_understood(slot, text, value):
    tracker = asked(slot, text, {"prescreen_misses": 1}, form="contact_form")
    result, responses = validate(ValidateContactForm(), slot, text, tracker)
    assert result == {slot: value, "prescreen_misses": 0}
    assert responses == []


@pytest.mark.parametrize(
    "slot,text,wrong",
    [
        ("contact_name", "", "utter_wrong_contact_name"),
        ("contact_name", "   ", "utter_wrong_contact_name"),
        ("contact_name", "x" * 101, "utter_wrong_contact_name"),
        ("contact_name", "12345", "utter_wrong_contact_name"),
        ("contact_name", "jane@example.com", "utter_wrong_contact_name"),
        ("contact_email", "jane@example", "utter_wrong_contact_email"),
        ("contact_email", "jane doe", "utter_wrong_contact_email"),
        ("contact_phone", "12345", "utter_wrong_contact_phone"),
        ("contact_phone", "(012) 555-0199", "utter_wrong_contact_phone"),
        ("contact_time", "", "utter_wrong_contact_time"),
        ("contact_consent", "banana", "utter_wrong_consent"),
        ("contact_consent", "not sure", "utter_wrong_consent"),
    ],
)
def test_contact_details_not_understood_are_asked_again(slot, text, wrong):
    result, responses = validate(ValidateContactForm(), slot, text, asked(slot, text, form="contact_form"))
    assert result == {slot: None, "prescreen_misses": 1}
    assert responses == [wrong]


def test_a_contact_detail_missed_three_times_offers_a_person():
    tracker = asked("contact_email", "jane@example", {"prescreen_misses": 2}, form="contact_form")
    result, responses = validate(ValidateContactForm(), "contact_email", "jane@example", tracker)
    assert result == {"contact_email": None, "prescreen_misses": 0}
    assert responses == ["utter_prescreen_offer_person"]


def test_an_email_corrected_while_the_phone_is_asked():
    text = "sorry, my email is jane.doe@example.com"
    tracker = asked("contact_phone", text, {"contact_email": "jane@example.com"}, form="contact_form")
    result, responses = validate(ValidateContactForm(), "contact_phone", text, tracker)
    assert result == {"contact_email": "jane.doe@example.com", "contact_phone": None, "prescreen_misses": 0}
    assert responses == ["utter_prescreen_corrected"]


@pytest.mark.parametrize(
    "slot,text,value",
    [
        ("waitlist_email", "Jane@Example.com", "jane@example.com"),
        ("waitlist_consent", "yes", "yes"),
        ("waitlist_consent", "nope", "no"),
    ],
)
def test_waitlist_details_understood(slot, text, value):
    result, responses = validate(ValidateWaitlistForm(), slot, text, asked(slot, text, form="waitlist_form"))
    assert result == {slot: value, "prescreen_misses": 0}
    assert responses == []


@pytest.mark.parametrize(
    "slot,text,wrong",
    [
        ("waitlist_email", "jane@example", "utter_wrong_waitlist_email"),
        ("waitlist_consent", "banana", "utter_wrong_consent"),
        ("waitlist_consent", "maybe", "utter_wrong_consent"),
    ],
)
def test_waitlist_details_not_understood_are_asked_again(slot, text, wrong):
    result, responses = validate(ValidateWaitlistForm(), slot, text, asked(slot, text, form="waitlist_form"))
    assert result == {slot: None, "prescreen_misses": 1}
    assert responses == [wrong]


# --- 6. ActionSubmitReferral ---------------------------------------------------------------


@pytest.fixture
def notices(monkeypatch) -> List[str]:
    """References the action hands to the notifier; no SMTP is attempted."""
    sent: List[str] = []

    def record(_engine: Any, _settings: Any, reference: str) -> bool:
        sent.append(reference)
        return True

    monkeypatch.setattr(referral_actions.notifier, "notify_referral", record)
    return sent


def run_and_let_the_notice_go(action: Any, tracker: Tracker) -> tuple:
    """Run the action inside a loop that stays up long enough for the executor call (the referral
    action on a conversation stored as Rasa would have stored it: it reads that one)."""
    dispatcher = CollectingDispatcher()
    if isinstance(action, ActionSubmitReferral):
        tracker = as_stored(tracker)

    async def go() -> List[Dict[str, Any]]:
        events = await action.run(dispatcher, tracker, {})
        for _ in range(100):
            if not referral_actions._pending_notices:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.05)
        return events

    events = asyncio.run(go())
    return events, [m.get("response") for m in dispatcher.messages], dispatcher


def referral_count() -> int:
    with engine().connect() as conn:
        return conn.execute(select(func.count()).select_from(db.referrals)).scalar()


def test_a_referral_with_consent_is_stored_encrypted_and_notified(clinic_env, notices):
    tracker = make_tracker(dict(answers(), **CONTACT))
    events, responses, dispatcher = run_and_let_the_notice_go(ActionSubmitReferral(), tracker)

    row = referrals.referral_for_conversation(engine(), tracker.sender_id)
    assert row is not None
    reference = row["reference"]
    assert referrals.REFERENCE_RE.match(reference)
    assert "Jane" not in row["contact_encrypted"] and "jane@" not in row["contact_encrypted"]
    plain = referrals.decrypt_referral(row, get_settings().encryption_key)
    assert plain["contact"] == {
        "name": "Jane Doe",
        "email": "jane@example.com",
        "phone": "+1 212-555-0199",
        "preferred_time": "Mornings",
    }
    assert plain["answers"] == dict(ELIGIBLE, suicide_plan=None, suicide_attempt=None)  # not asked
    assert plain["reasons"] == []
    assert (plain["outcome"], plain["urgent"], plain["status"]) == ("eligible", False, "new")

    assert responses == ["utter_referral_done"]
    assert dispatcher.messages[0]["referral_reference"] == reference
    assert dispatcher.messages[0]["contact_name"] == "Jane Doe"
    assert events == [SlotSet("referral_reference", reference)] + RESET
    assert notices == [reference]


def test_a_referral_submitted_twice_is_stored_once_under_one_reference(clinic_env, notices):
    tracker = make_tracker(dict(answers(), **CONTACT))
    first, _, d1 = run_and_let_the_notice_go(ActionSubmitReferral(), tracker)
    second, _, d2 = run_and_let_the_notice_go(ActionSubmitReferral(), tracker)
    reference = referrals.referral_for_conversation(engine(), tracker.sender_id)["reference"]
    assert d1.messages[0]["referral_reference"] == d2.messages[0]["referral_reference"] == reference
    assert first == second == [SlotSet("referral_reference", reference)] + RESET
    assert referral_count() == 1


def test_a_clinician_review_referral_keeps_its_reasons_and_a_skipped_phone_is_none(clinic_env, notices):
    slots = dict(answers(substance_use="past", medical_conditions="unsure"), **CONTACT)
    slots["contact_phone"] = "skipped"
    tracker = make_tracker(slots)
    events, responses, _ = run_and_let_the_notice_go(ActionSubmitReferral(), tracker)
    row = referrals.referral_for_conversation(engine(), tracker.sender_id)
    plain = referrals.decrypt_referral(row, get_settings().encryption_key)
    assert plain["contact"]["phone"] is None
    assert (plain["outcome"], plain["urgent"]) == ("clinician_review", False)
    assert plain["reasons"] == ["substance_use_past", "unsure_answer"]
    assert responses == ["utter_referral_done"]
    assert events[0] == SlotSet("referral_reference", row["reference"])


@pytest.mark.parametrize("thoughts", ["yes", "unsure"])
def test_a_referral_after_passive_thoughts_is_urgent_with_every_answer(clinic_env, notices, thoughts):
    tracker = make_tracker(dict(answers(**dict(PASSIVE, suicidal_thoughts=thoughts)), **CONTACT))
    run_and_let_the_notice_go(ActionSubmitReferral(), tracker)
    row = referrals.referral_for_conversation(engine(), tracker.sender_id)
    plain = referrals.decrypt_referral(row, get_settings().encryption_key)
    assert (plain["outcome"], plain["urgent"], plain["reasons"]) == ("clinician_review", True, ["suicidal_thoughts"])
    assert plain["answers"]["suicide_plan"] == "no" and plain["answers"]["suicide_attempt"] == "no"


def test_a_referral_after_a_crisis_flag_is_urgent(clinic_env, notices):
    tracker = make_tracker(dict(answers(), crisis_flagged=True, **CONTACT))
    run_and_let_the_notice_go(ActionSubmitReferral(), tracker)
    assert referrals.referral_for_conversation(engine(), tracker.sender_id)["urgent"] is True


@pytest.mark.parametrize("consent", ["no", None])
def test_no_referral_without_consent(clinic_env, notices, consent):
    tracker = make_tracker(dict(answers(), **dict(CONTACT, contact_consent=consent)))
    events, responses, _ = run_and_let_the_notice_go(ActionSubmitReferral(), tracker)
    assert responses == ["utter_referral_no_consent"]
    assert events == RESET
    assert referrals.referral_for_conversation(engine(), tracker.sender_id) is None
    assert notices == []


def test_a_referral_that_cannot_be_stored_is_said_honestly_and_nothing_is_forgotten(clinic_env, notices, monkeypatch):
    def broken(*_a: Any, **_k: Any) -> str:
        raise RuntimeError("database is locked")

    monkeypatch.setattr(referrals, "create_referral", broken)
    tracker = make_tracker(dict(answers(), **CONTACT))
    events, responses, _ = run_and_let_the_notice_go(ActionSubmitReferral(), tracker)
    assert responses == ["utter_referral_not_stored"]
    assert events == []
    assert notices == []


# --- 7. ActionJoinWaitlist -----------------------------------------------------------------


def test_joining_the_waitlist_with_consent_stores_the_state(clinic_env):
    tracker = make_tracker(
        {"age": 30, "state": "OH", "waitlist_email": "jane@example.com", "waitlist_consent": "yes"}
    )
    events, responses, _ = run(ActionJoinWaitlist(), tracker)
    assert responses == ["utter_waitlist_joined"]
    assert events == RESET
    row = referrals.waitlist_entry_for(engine(), tracker.sender_id)
    assert row is not None and row["state"] == "OH"
    assert "jane@" not in row["contact_encrypted"]
    plain = referrals.decrypt_waitlist_entry(row, get_settings().encryption_key)
    assert plain["contact"] == {"email": "jane@example.com"}


@pytest.mark.parametrize("consent", ["no", None])
def test_nothing_stored_on_the_waitlist_without_consent(clinic_env, consent):
    tracker = make_tracker({"state": "OH", "waitlist_email": "jane@example.com", "waitlist_consent": consent})
    events, responses, _ = run(ActionJoinWaitlist(), tracker)
    assert responses == ["utter_waitlist_no_consent"]
    assert events == RESET
    assert referrals.waitlist_entry_for(engine(), tracker.sender_id) is None


def test_a_waitlist_entry_that_cannot_be_stored_is_said_honestly(clinic_env, monkeypatch):
    def broken(*_a: Any, **_k: Any) -> int:
        raise RuntimeError("disk full")

    monkeypatch.setattr(referrals, "join_waitlist", broken)
    tracker = make_tracker({"state": "OH", "waitlist_email": "jane@example.com", "waitlist_consent": "yes"})
    events, responses, _ = run(ActionJoinWaitlist(), tracker)
    assert responses == ["utter_referral_not_stored"]
    assert events == []


# --- Every response named above exists in the domain ---------------------------------------


def test_every_response_these_actions_utter_exists_in_the_domain():
    from pathlib import Path

    import yaml

    names: List[str] = []
    for f in Path("domain").glob("*.yml"):
        names += list((yaml.safe_load(f.read_text()) or {}).get("responses", {}))
    used = {w for _, w in BAD_ANSWERS} | {
        "utter_prescreen_offer_person",
        "utter_prescreen_corrected",
        "utter_medical_advice",
        "utter_iamabot",
        "utter_prescreen_eligible",
        "utter_prescreen_clinician_review",
        "utter_prescreen_urgent_review",
        "utter_prescreen_thoughts_follow_up",
        "utter_prescreen_passive_thoughts",
        "utter_prescreen_safety_first",
        "utter_prescreen_perinatal_support",
        "utter_prescreen_substance_support",
        "utter_prescreen_not_eligible",
        "utter_prescreen_out_of_area",
        "utter_prescreen_stopped",
        "utter_wrong_contact_name",
        "utter_wrong_contact_email",
        "utter_wrong_contact_phone",
        "utter_wrong_contact_time",
        "utter_wrong_consent",
        "utter_wrong_waitlist_email",
        "utter_referral_done",
        "utter_referral_not_stored",
        "utter_referral_no_consent",
        "utter_waitlist_joined",
        "utter_waitlist_no_consent",
    }
    assert sorted(used - set(names)) == []


# --- Answers that must not be taken for corrections, raw text that must be validated ------


def test_a_number_in_another_answer_is_not_an_age_correction():
    text = "Actually I've done therapy for 3 years"
    tracker = asked("treatments_tried", text, answers(treatments_tried=None))
    result, responses = validate(ValidatePrescreenForm(), "treatments_tried", text, tracker)
    assert result == {"treatments_tried": "therapy", "prescreen_misses": 0}
    assert responses == []


def test_a_contact_time_with_a_number_does_not_change_the_age():
    text = "any time after 6, not before"
    tracker = asked("contact_time", text, dict(answers(), contact_name="Jane"), form="contact_form")
    result, responses = validate(ValidateContactForm(), "contact_time", text, tracker)
    assert result == {"contact_time": "any time after 6, not before", "prescreen_misses": 0}
    assert responses == []


def test_a_name_that_is_a_state_does_not_change_the_state():
    text = "Sorry, my name is Georgia"
    tracker = asked("contact_name", text, answers(), form="contact_form")
    result, responses = validate(ValidateContactForm(), "contact_name", text, tracker)
    assert result.get("state", "TX") == "TX"
    assert "utter_prescreen_corrected" not in responses


@pytest.mark.parametrize("raw", ["ok", "hi"])
def test_raw_lowercase_state_text_is_still_validated(raw):
    assert "state" in required(make_tracker({"age": 30, "state": raw}))


def test_out_of_area_names_a_lowercase_state_code_in_full(clinic_env):
    assert required(make_tracker({"age": 30, "state": "nj"}))[0] == "state"  # validated first
    result, _ = validate(ValidatePrescreenForm(), "state", "nj", asked("state", "nj", {"age": 30}))
    assert result["state"] == "NJ"
    _, responses, dispatcher = run(ActionPrescreenOutcome(), make_tracker({"age": 30, "state": "NJ"}))
    assert responses == ["utter_prescreen_out_of_area"]
    assert dispatcher.messages[0]["state_name"] == "New Jersey"
