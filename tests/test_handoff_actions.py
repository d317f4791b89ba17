"""Handoff actions: consent, the live queue, the callback request and a crisis during a handoff.

Same style as tests/test_actions.py: a rasa_sdk Tracker, the action run with a
CollectingDispatcher, the exact events and response names asserted, and the
clinic DB looked at. The action server reads STAFFING_FILE: each test writes
one (staffed round the clock, or closed) into its own folder.
"""

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
import pytz
from rasa_sdk import Tracker
from rasa_sdk.events import ActiveLoop, SlotSet
from rasa_sdk.executor import CollectingDispatcher

import actions.handoff as handoff_actions
from actions.callback import ActionCallbackStop, ActionSubmitCallback, ValidateCallbackForm
from actions.crisis import ActionCrisisResponse
from actions.handoff import ActionHandoffDeclined, ActionHumanHandoff, ActionStartHandoff
from clinic.storage import crypto, db
from clinic.rules import handoff
from clinic.settings import get_settings
from tests.stack import write_staffing

SENDER = "ha0d" * 8
OTHER = "0the" * 8
FORGET = [SlotSet("callback_name", None), SlotSet("callback_contact", None), SlotSet("callback_time", None)]


@pytest.fixture
def staffed(clinic_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = clinic_env / "staffing.yml"
    write_staffing(path, True)
    monkeypatch.setenv("STAFFING_FILE", str(path))
    return path


@pytest.fixture
def closed(clinic_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = clinic_env / "staffing.yml"
    write_staffing(path, False)
    monkeypatch.setenv("STAFFING_FILE", str(path))
    return path


def make_tracker(
    slots: Optional[Dict[str, Any]] = None,
    intent: str = "human_handoff",
    text: str = "can i talk to a person",
    active_loop: Optional[str] = None,
    latest_action_name: str = "action_listen",
    response_selector: Optional[Dict[str, Any]] = None,
    sender_id: str = SENDER,
) -> Tracker:
    message: Dict[str, Any] = {"text": text, "intent": {"name": intent, "confidence": 1.0}, "entities": []}
    if response_selector is not None:
        message["response_selector"] = response_selector
    return Tracker(
        sender_id=sender_id,
        slots=dict(slots or {}),
        latest_message=message,
        events=[],
        paused=False,
        followup_action=None,
        active_loop={"name": active_loop} if active_loop else {},
        latest_action_name=latest_action_name,
    )


def run(action: Any, tracker: Tracker) -> tuple:
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, tracker, {}))
    return events, [m.get("response") for m in dispatcher.messages], dispatcher.messages


def validate(slot: str, value: Any, tracker: Tracker) -> tuple:
    dispatcher = CollectingDispatcher()
    result = getattr(ValidateCallbackForm(), f"validate_{slot}")(value, dispatcher, tracker, {})
    return result, [m.get("response") for m in dispatcher.messages]


def engine() -> Any:
    return db.get_engine(get_settings().clinic_db_url)


def rows(sender_id: str = SENDER) -> List[Dict[str, Any]]:
    return db.handoff_requests_for(engine(), sender_id)


def broken(*_a: Any, **_k: Any) -> None:
    raise RuntimeError("database is locked")


# --- action_human_handoff: consent first ---------------------------------------------


def test_in_staffed_hours_consent_is_asked_and_nothing_is_stored_yet(staffed):
    events, responses, _ = run(ActionHumanHandoff(), make_tracker())
    assert responses == ["utter_handoff_consent"]
    assert events == [SlotSet("form_set_aside", None), SlotSet("handoff_reason", "visitor_request")]
    assert rows() == []


def test_outside_staffed_hours_a_callback_is_offered_with_when_they_will_get_in_touch(clinic_env, monkeypatch):
    # open only on the weekday three days from now (in the clinic's time zone), 9 to 5
    zone = pytz.timezone("America/New_York")
    day = dt.datetime.now(zone).date() + dt.timedelta(days=3)
    path = clinic_env / "staffing.yml"
    weekday = day.strftime("%A").lower()
    path.write_text(f"time_zone: America/New_York\nhours:\n  {weekday}: ['09:00-17:00']\nholidays: []\n")
    monkeypatch.setenv("STAFFING_FILE", str(path))

    events, responses, messages = run(ActionHumanHandoff(), make_tracker())
    assert responses == ["utter_handoff_callback_offer"]
    opening = zone.localize(dt.datetime.combine(day, dt.time(9, 0)))
    assert messages[0]["callback_when"] == (
        f"once the team is back (on {day.strftime('%A, %B')} {day.day} at 9:00 AM {opening.tzname()})"
    )
    assert events == [SlotSet("form_set_aside", None), SlotSet("handoff_reason", "visitor_request")]
    assert rows() == []


def test_never_staffed_the_callback_offer_names_no_time(closed):
    _, responses, messages = run(ActionHumanHandoff(), make_tracker())
    assert responses == ["utter_handoff_callback_offer"]
    assert messages[0]["callback_when"] == "once the team is back"


def test_a_staffing_file_that_cannot_be_read_counts_as_closed(clinic_env, monkeypatch):
    monkeypatch.setenv("STAFFING_FILE", str(clinic_env / "missing.yml"))
    _, responses, messages = run(ActionHumanHandoff(), make_tracker())
    assert responses == ["utter_handoff_callback_offer"]
    assert messages[0]["callback_when"] == "once the team is back"


@pytest.mark.parametrize("form", ["prescreen_form", "contact_form", "waitlist_form"])
def test_mid_form_the_form_is_set_aside_with_its_answers_and_consent_is_asked(staffed, form):
    tracker = make_tracker(slots={"age": 34, "requested_slot": "state"}, active_loop=form)
    events, responses, _ = run(ActionHumanHandoff(), tracker)
    assert responses == ["utter_handoff_consent"]
    assert events == [
        ActiveLoop(None),
        SlotSet("requested_slot", None),
        SlotSet("form_set_aside", form),
        SlotSet("handoff_reason", "visitor_request"),
    ]


def test_after_repeated_fallbacks_the_offer_says_sorry_first(staffed):
    events, responses, _ = run(ActionHumanHandoff(), make_tracker(intent="nlu_fallback", text="qwzx plorf"))
    assert responses == ["utter_handoff_after_fallbacks", "utter_handoff_consent"]
    assert events[-1] == SlotSet("handoff_reason", "fallback")


def test_after_a_clinician_review_referral_the_reason_is_clinician_review(staffed):
    tracker = make_tracker(
        slots={"prescreen_outcome": "clinician_review"}, intent="affirm", text="Yes",
        latest_action_name="action_submit_referral",
    )
    events, responses, _ = run(ActionHumanHandoff(), tracker)
    assert responses == ["utter_handoff_consent"]
    assert events[-1] == SlotSet("handoff_reason", "clinician_review")


def test_after_a_clinician_review_referral_out_of_hours_no_callback_is_offered_on_top(closed):
    tracker = make_tracker(
        slots={"prescreen_outcome": "clinician_review"}, intent="affirm", text="Yes",
        latest_action_name="action_submit_referral",
    )
    events, responses, _ = run(ActionHumanHandoff(), tracker)
    assert responses == []  # the referral's clinician will call them back
    assert events == [SlotSet("form_set_aside", None), SlotSet("handoff_reason", "clinician_review")]


def test_already_waiting_the_visitor_hears_their_place_instead(staffed):
    handoff.request_live(engine(), OTHER, "visitor_request", False)
    handoff.request_live(engine(), SENDER, "visitor_request", False)
    events, responses, messages = run(ActionHumanHandoff(), make_tracker())
    assert responses == ["utter_handoff_already_waiting"]
    assert messages[0]["queue_place"] == "number 2"
    assert events == [SlotSet("form_set_aside", None), SlotSet("handoff_reason", "visitor_request")]
    assert len(rows()) == 1


def test_already_with_a_person_the_visitor_is_told_who(staffed):
    row = handoff.request_live(engine(), SENDER, "visitor_request", False)
    handoff.change(engine(), row["id"], "claim", handoff.WAITING, staff_id=7, staff_name="Ana")
    _, responses, messages = run(ActionHumanHandoff(), make_tracker())
    assert responses == ["utter_handoff_already_live"]
    assert messages[0]["agent"] == "Ana"


def test_a_queue_that_cannot_be_read_still_asks_consent(staffed, monkeypatch):
    monkeypatch.setattr(handoff, "active", broken)
    _, responses, _ = run(ActionHumanHandoff(), make_tracker())
    assert responses == ["utter_handoff_consent"]


# --- action_start_handoff: after a yes --------------------------------------------------


def test_in_staffed_hours_a_yes_puts_the_visitor_in_the_live_queue(staffed):
    events, responses, messages = run(ActionStartHandoff(), make_tracker({"handoff_reason": "visitor_request"}, "affirm", "yes"))
    assert responses == ["utter_handoff_queued"]
    assert messages[0]["queue_place"] == "next"
    assert events == [SlotSet("handoff_mode", "live")]
    assert [(r["kind"], r["status"], r["reason"], r["urgent"]) for r in rows()] == [("live", "waiting", "visitor_request", False)]


def test_the_place_in_line_counts_those_waiting_before(staffed):
    handoff.request_live(engine(), OTHER, "visitor_request", False)
    _, _, messages = run(ActionStartHandoff(), make_tracker({}, "affirm", "yes"))
    assert messages[0]["queue_place"] == "number 2"


@pytest.mark.parametrize(
    "slots,reason,urgent",
    [
        ({}, "visitor_request", False),
        ({"handoff_reason": "fallback"}, "fallback", False),
        ({"handoff_reason": "clinician_review"}, "clinician_review", False),
        ({"handoff_reason": "visitor_request", "crisis_flagged": True}, "crisis", True),
    ],
)
def test_the_request_carries_its_reason_and_a_crisis_makes_it_urgent(staffed, slots, reason, urgent):
    run(ActionStartHandoff(), make_tracker(slots, "affirm", "yes"))
    assert [(r["reason"], r["urgent"]) for r in rows()] == [(reason, urgent)]


def test_a_second_yes_finds_the_first_request(staffed):
    run(ActionStartHandoff(), make_tracker({}, "affirm", "yes"))
    events, responses, messages = run(ActionStartHandoff(), make_tracker({}, "affirm", "yes"))
    assert responses == ["utter_handoff_queued"] and messages[0]["queue_place"] == "next"
    assert events == [SlotSet("handoff_mode", "live")]
    assert len(rows()) == 1


def test_a_yes_after_closing_time_starts_a_callback_request(closed):
    events, responses, _ = run(ActionStartHandoff(), make_tracker({}, "affirm", "yes"))
    assert responses == ["utter_callback_start"]
    assert events == [SlotSet("handoff_mode", "callback")]
    assert rows() == []


def test_a_queue_that_cannot_be_written_says_so_honestly(staffed, monkeypatch):
    monkeypatch.setattr(handoff, "request_live", broken)
    events, responses, _ = run(ActionStartHandoff(), make_tracker({}, "affirm", "yes"))
    assert responses == ["utter_handoff_not_recorded"]
    assert events == [SlotSet("handoff_mode", None)]


# --- action_handoff_declined --------------------------------------------------------------


def test_no_to_a_person_gets_a_kind_word():
    events, responses, _ = run(ActionHandoffDeclined(), make_tracker({"form_set_aside": None}, "deny", "no"))
    assert responses == ["utter_handoff_declined"]
    assert events == []


@pytest.mark.parametrize("form", ["prescreen_form", "contact_form", "waitlist_form"])
def test_no_to_a_person_brings_the_form_set_aside_back(form):
    events, responses, _ = run(ActionHandoffDeclined(), make_tracker({"form_set_aside": form}, "deny", "no"))
    assert responses == ["utter_handoff_declined"]
    assert events == [SlotSet("form_set_aside", None), ActiveLoop(form)]


# --- the callback form ----------------------------------------------------------------------


def asked(slot: str, text: str, intent: str = "inform", **kwargs: Any) -> Tracker:
    return make_tracker({slot: text, "requested_slot": slot}, intent, text, active_loop="callback_form", **kwargs)


@pytest.mark.parametrize(
    "slot,text,value",
    [
        ("callback_name", "  Jane   Doe ", "Jane Doe"),
        ("callback_contact", "jane@example.com", "jane@example.com"),
        ("callback_contact", "my email is Jane.Doe@Example.com", "jane.doe@example.com"),
        ("callback_contact", "(212) 555-0199", "+1 212-555-0199"),
        ("callback_contact", "call me on 212.555.0199 please", "+1 212-555-0199"),
        ("callback_time", "Evenings", "Evenings"),
        ("callback_time", "weekdays after 5pm", "weekdays after 5pm"),
    ],
)
def test_a_good_callback_answer_fills_the_slot(slot, text, value):
    assert validate(slot, text, asked(slot, text)) == ({slot: value}, [])


@pytest.mark.parametrize(
    "slot,text",
    [
        ("callback_name", "!!!"),
        ("callback_name", "jane@example.com"),
        ("callback_contact", "jane at example"),
        ("callback_contact", "jane@example"),
        ("callback_contact", "555-0199"),
        ("callback_contact", "(212) 555-0199 or (646) 555-0100"),
        ("callback_time", ""),
    ],
)
def test_a_bad_callback_answer_is_asked_again(slot, text):
    assert validate(slot, text, asked(slot, text)) == ({slot: None}, [f"utter_wrong_{slot}"])


def test_a_question_instead_of_a_name_is_answered_and_the_name_asked_again():
    text = "how much does it cost"
    selector = {"faq": {"response": {"intent_response_key": "faq/pricing", "utter_action": "utter_faq/pricing"}}}
    tracker = asked("callback_name", text, intent="faq", response_selector=selector)
    assert validate("callback_name", text, tracker) == ({"callback_name": None}, ["utter_faq/pricing"])


def test_personal_advice_asked_instead_of_a_contact_is_declined_and_the_contact_asked_again():
    text = "should i stop my meds"
    tracker = asked("callback_contact", text, intent="medical_advice")
    assert validate("callback_contact", text, tracker) == ({"callback_contact": None}, ["utter_medical_advice"])


CALLBACK = {"callback_name": "Jane Doe", "callback_contact": "jane@example.com", "callback_time": "Evenings"}


def test_a_callback_request_is_stored_encrypted_and_the_visitor_told_what_happens_next(closed):
    slots = dict(CALLBACK, handoff_reason="visitor_request")
    events, responses, messages = run(ActionSubmitCallback(), make_tracker(slots, "inform", "Evenings"))
    assert responses == ["utter_callback_recorded"]
    assert events == FORGET
    message = messages[0]
    assert (message["callback_name"], message["contact_way"], message["callback_time"]) == (
        "Jane Doe", "email you at jane@example.com", "Evenings",
    )
    assert message["callback_when"] == "once the team is back"
    [row] = rows()
    assert (row["kind"], row["status"], row["reason"], row["urgent"]) == ("callback", "new", "visitor_request", False)
    assert "Jane" not in row["contact_encrypted"] and "example.com" not in row["contact_encrypted"]
    assert crypto.decrypt_json(get_settings().encryption_key, row["contact_encrypted"]) == {
        "name": "Jane Doe", "email": "jane@example.com", "phone": None, "preferred_time": "Evenings",
    }


def test_a_callback_by_phone_after_a_crisis_is_urgent(closed):
    slots = dict(CALLBACK, callback_contact="+1 212-555-0199", crisis_flagged=True, handoff_reason="visitor_request")
    _, _, messages = run(ActionSubmitCallback(), make_tracker(slots, "inform", "Evenings"))
    assert messages[0]["contact_way"] == "call you at +1 212-555-0199"
    [row] = rows()
    assert (row["reason"], row["urgent"]) == ("crisis", True)
    contact = crypto.decrypt_json(get_settings().encryption_key, row["contact_encrypted"])
    assert (contact["email"], contact["phone"]) == (None, "+1 212-555-0199")


def test_a_callback_that_cannot_be_stored_says_so_and_forgets_the_details(closed, monkeypatch):
    monkeypatch.setattr(handoff, "request_callback", broken)
    events, responses, _ = run(ActionSubmitCallback(), make_tracker(dict(CALLBACK), "inform", "Evenings"))
    assert responses == ["utter_handoff_not_recorded"]
    assert events == FORGET


def test_stop_ends_the_callback_request_and_forgets_its_answers():
    tracker = make_tracker({"callback_name": "Sam", "requested_slot": "callback_contact"}, "stop", "stop", active_loop="callback_form")
    events, responses, _ = run(ActionCallbackStop(), tracker)
    assert responses == ["utter_callback_stopped"]
    assert events == [ActiveLoop(None), SlotSet("requested_slot", None)] + FORGET


# --- a crisis while waiting for a person, or with one ---------------------------------------


def test_a_crisis_while_waiting_moves_the_visitor_to_the_front_of_the_line(staffed):
    handoff.request_live(engine(), OTHER, "visitor_request", False)
    handoff.request_live(engine(), SENDER, "visitor_request", False)
    events, responses, _ = run(ActionCrisisResponse(), make_tracker(intent="crisis", text="i want to die"))
    assert responses == ["utter_crisis_resources", "utter_crisis_team_told_waiting"]
    assert events == [SlotSet("crisis_flagged", True), SlotSet("safety_mode", True), SlotSet("safety_question", None)]
    assert [r["conversation_id"] for r in handoff.queue(engine())] == [SENDER, OTHER]
    [row] = rows()
    assert (row["status"], row["reason"], row["urgent"]) == ("waiting", "crisis", True)


def test_a_crisis_in_a_live_chat_tells_the_visitor_the_person_knows(staffed):
    row = handoff.request_live(engine(), SENDER, "visitor_request", False)
    handoff.change(engine(), row["id"], "claim", handoff.WAITING, staff_id=7, staff_name="Ana")
    events, responses, messages = run(ActionCrisisResponse(), make_tracker(intent="crisis", text="i want to die"))
    assert responses == ["utter_crisis_resources", "utter_crisis_team_told_live"]
    assert messages[1]["agent"] == "Ana"
    assert events == [SlotSet("crisis_flagged", True), SlotSet("safety_mode", True), SlotSet("safety_question", None)]
    [row] = rows()
    assert (row["status"], row["reason"], row["urgent"]) == ("live", "crisis", True)
    assert [f["flag"] for f in db.flags_for(engine(), SENDER)] == ["crisis"]


def test_a_crisis_with_no_request_asks_if_the_visitor_is_safe(staffed):
    handoff.request_live(engine(), OTHER, "visitor_request", False)
    _, responses, _ = run(ActionCrisisResponse(), make_tracker(intent="crisis", text="i want to die"))
    assert responses == ["utter_crisis_resources", "utter_ask_safe_now"]  # a person is offered after the answer
    assert [r["urgent"] for r in handoff.queue(engine())] == [False]  # another visitor's request is untouched


def test_a_crisis_still_gets_the_resources_when_the_queue_cannot_be_read(staffed, monkeypatch):
    handoff.request_live(engine(), SENDER, "visitor_request", False)
    monkeypatch.setattr(handoff, "raise_priority", broken)
    events, responses, _ = run(ActionCrisisResponse(), make_tracker(intent="crisis", text="i want to die"))
    assert responses == ["utter_crisis_resources", "utter_ask_safe_now"]
    assert events == [SlotSet("crisis_flagged", True), SlotSet("safety_mode", True), SlotSet("safety_question", "are_you_safe")]


def test_the_handoff_module_reads_the_staffing_file_named_by_the_environment(staffed):
    assert handoff_actions.staffed_now() is True
    write_staffing(staffed, False)
    assert handoff_actions.staffed_now() is False
