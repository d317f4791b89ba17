"""The safety layer's outcomes answered, safety mode, FAQ answers and "did you mean": the exact
responses and events of each action, with a Tracker and a CollectingDispatcher."""

import asyncio
from typing import Any, Dict, List, Optional

import pytest
from rasa_sdk import Tracker
from rasa_sdk.events import ActiveLoop, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import crisis, safety_mode
from actions.crisis import ActionCrisisResponse, ActionUrgentMedical
from actions.faq import ActionAnswerFaq, ActionDidYouMean, pick_payload
from actions.safety_mode import ActionSafetyFollowup
from clinic.storage import db
from clinic.rules import handoff
from clinic.safety.verdict import CHECK_IN, TAKEOVER, SafetyVerdict
from clinic.settings import get_settings

SENDER = "5afe" * 8


def parse(intent: str = "greet", safety: Optional[SafetyVerdict] = None, topic: Optional[str] = None,
          entities: Optional[List[Dict[str, Any]]] = None, did_you_mean: Optional[List[str]] = None,
          text: str = "hello", message_id: str = "m1") -> Dict[str, Any]:
    data: Dict[str, Any] = {"text": text, "message_id": message_id, "intent": {"name": intent, "confidence": 1.0},
                            "entities": entities or []}
    if safety is not None:
        data["safety"] = safety.as_dict()
    if topic:
        data["response_selector"] = {"faq": {"response": {"intent_response_key": f"faq/{topic}"}}}
    if did_you_mean is not None:
        data["did_you_mean"] = [{"topic": t, "confidence": 0.3} for t in did_you_mean]
    return data


def tracker(latest: Dict[str, Any], slots: Optional[Dict[str, Any]] = None, active_loop: Optional[str] = None,
            events: Optional[List[Dict[str, Any]]] = None) -> Tracker:
    return Tracker(
        sender_id=SENDER, slots=slots or {}, latest_message=latest, events=events or [], paused=False,
        followup_action=None, active_loop={"name": active_loop} if active_loop else {},
        latest_action_name="action_listen",
    )


def run(action: Any, t: Tracker) -> tuple:
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, t, {}))
    return events, [m.get("response") for m in dispatcher.messages], dispatcher.messages


def flags() -> List[str]:
    return [f["flag"] for f in db.flags_for(db.get_engine(get_settings().clinic_db_url), SENDER)]


def takeover(**kwargs: Any) -> SafetyVerdict:
    return SafetyVerdict(outcome="crisis", response=TAKEOVER, **kwargs)


@pytest.fixture
def staffed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(safety_mode, "staffed_now", lambda: True)


@pytest.fixture
def closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(safety_mode, "staffed_now", lambda: False)
    monkeypatch.setattr(safety_mode, "team_back", lambda: "tomorrow at 9:00 AM EST")


# --- the crisis reply ---------------------------------------------------------------------------

def test_a_takeover_gives_the_resources_first_asks_if_safe_flags_once_and_enters_safety_mode(clinic_env):
    t = tracker(parse("crisis", takeover(category="passive_death_wish")))
    events, responses, _ = run(ActionCrisisResponse(), t)
    assert responses == ["utter_crisis_resources", "utter_ask_safe_now"]
    assert events == [SlotSet("crisis_flagged", True), SlotSet("safety_mode", True), SlotSet("safety_question", "are_you_safe")]
    run(ActionCrisisResponse(), t)  # said again: the resources again, one urgent entry
    assert flags() == ["crisis"]


def test_happening_now_puts_911_first_and_danger_from_a_person_adds_the_hotline(clinic_env):
    _, responses, _ = run(ActionCrisisResponse(), tracker(parse("crisis", takeover(
        category="danger_from_another", now=True, danger_from_person=True))))
    assert responses == ["utter_crisis_resources_now", "utter_crisis_domestic_violence", "utter_ask_safe_now"]
    _, responses, _ = run(ActionCrisisResponse(), tracker(parse("crisis", takeover(category="overdose_taken", now=True))))
    assert responses == ["utter_crisis_resources_now", "utter_ask_safe_now"]


def test_a_takeover_stops_a_form(clinic_env):
    events, responses, _ = run(ActionCrisisResponse(), tracker(parse("crisis", takeover()), active_loop="prescreen_form"))
    assert responses[0] == "utter_crisis_resources"
    assert events[-2:] == [ActiveLoop(None), SlotSet("requested_slot", None)]


def test_a_takeover_still_speaks_when_the_database_fails(clinic_env, monkeypatch):
    def broken(*_a: Any, **_k: Any) -> None:
        raise RuntimeError("database is locked")

    monkeypatch.setattr(db, "flag_once", broken)
    monkeypatch.setattr(handoff, "active", broken)
    events, responses, _ = run(ActionCrisisResponse(), tracker(parse("crisis", takeover())))
    assert responses == ["utter_crisis_resources", "utter_ask_safe_now"]
    assert SlotSet("safety_mode", True) in events


def test_a_takeover_while_waiting_for_a_person_makes_the_request_urgent(clinic_env):
    engine = db.get_engine(get_settings().clinic_db_url)
    handoff.request_live(engine, SENDER, "visitor_request", False)
    events, responses, _ = run(ActionCrisisResponse(), tracker(parse("crisis", takeover())))
    assert responses == ["utter_crisis_resources", "utter_crisis_team_told_waiting"]
    assert handoff.active(engine, SENDER)["urgent"]
    assert SlotSet("safety_question", None) in events


def test_a_check_in_answers_the_question_then_asks_and_sets_a_form_aside(clinic_env):
    verdict = SafetyVerdict(outcome="crisis", response=CHECK_IN, intent="faq")
    events, responses, _ = run(ActionCrisisResponse(), tracker(parse("crisis", verdict, topic="duration_of_effects"),
                                                                active_loop="prescreen_form"))
    assert responses == ["utter_faq/duration_of_effects", "utter_safety_check_in"]
    assert events == [SlotSet("safety_mode", True), SlotSet("safety_question", "are_you_safe"), ActiveLoop(None),
                      SlotSet("requested_slot", None), SlotSet("form_set_aside", "prescreen_form")]
    assert flags() == []  # a check-in is no crisis flag


def test_an_unsure_message_in_safety_mode_gets_support_and_a_person_not_the_resources_again(clinic_env, staffed):
    verdict = SafetyVerdict(outcome="crisis", response=CHECK_IN, intent="deny")
    slots = {"safety_mode": True, "crisis_flagged": True}
    events, responses, _ = run(ActionCrisisResponse(), tracker(parse("crisis", verdict), slots=slots))
    assert responses == ["utter_safety_support"]
    assert events == [SlotSet("safety_question", "offer_person")]
    assert flags() == ["crisis"]


def test_a_sure_crisis_message_in_safety_mode_gets_the_resources_again(clinic_env):
    verdict = SafetyVerdict(outcome="crisis", response=TAKEOVER, intent="deny")
    _, responses, _ = run(ActionCrisisResponse(), tracker(parse("crisis", verdict), slots={"safety_mode": True}))
    assert responses[0] == "utter_crisis_resources"


# --- urgent medical --------------------------------------------------------------------------

def test_an_urgent_symptom_gets_911_and_is_flagged(clinic_env):
    t = tracker(parse("urgent_medical", SafetyVerdict(outcome="urgent_medical", category="chest_pain")),
                active_loop="contact_form")
    events, responses, _ = run(ActionUrgentMedical(), t)
    assert responses == ["utter_urgent_medical", "utter_urgent_medical_team"]
    assert events == [SlotSet("crisis_flagged", True), ActiveLoop(None), SlotSet("requested_slot", None)]
    assert flags() == ["urgent_medical"]


def test_something_swallowed_gets_poison_control_first(clinic_env):
    verdict = SafetyVerdict(outcome="urgent_medical", category="child_or_pet_ingestion", ingestion=True)
    _, responses, _ = run(ActionUrgentMedical(), tracker(parse("urgent_medical", verdict)))
    assert responses == ["utter_urgent_medical_ingestion", "utter_urgent_medical_team"]


# --- safety mode ---------------------------------------------------------------------------

AFTER_TAKEOVER = {"safety_mode": True, "crisis_flagged": True, "safety_question": "are_you_safe"}


def test_safe_after_a_takeover_offers_a_person(clinic_env, staffed):
    events, responses, _ = run(ActionSafetyFollowup(), tracker(parse("affirm"), AFTER_TAKEOVER))
    assert responses == ["utter_safety_glad"]
    assert events == [SlotSet("next_step", None), SlotSet("safety_question", "offer_person")]


def test_out_of_hours_the_offer_says_when_the_team_is_back(clinic_env, closed):
    _, _, messages = run(ActionSafetyFollowup(), tracker(parse("affirm"), AFTER_TAKEOVER))
    assert messages[0]["response"] == "utter_safety_glad_team_away"
    assert messages[0]["team_back"] == "tomorrow at 9:00 AM EST"


def test_not_safe_gets_911_first_a_flag_and_a_person(clinic_env, staffed):
    events, responses, _ = run(ActionSafetyFollowup(), tracker(parse("deny"), AFTER_TAKEOVER))
    assert responses == ["utter_safety_not_safe", "utter_safety_offer_person"]
    assert SlotSet("safety_question", "offer_person") in events
    assert flags() == ["crisis"]


def test_yes_to_a_person_starts_the_handoff_by_a_rule(clinic_env):
    slots = {**AFTER_TAKEOVER, "safety_question": "offer_person"}
    events, responses, _ = run(ActionSafetyFollowup(), tracker(parse("affirm"), slots))
    assert responses == []
    assert events == [SlotSet("next_step", None), SlotSet("safety_question", None), SlotSet("next_step", "handoff_start")]


def test_no_to_a_person_keeps_988_close_and_the_mode(clinic_env):
    slots = {**AFTER_TAKEOVER, "safety_question": "offer_person"}
    events, responses, _ = run(ActionSafetyFollowup(), tracker(parse("deny"), slots))
    assert responses == ["utter_crisis_declined"]
    assert SlotSet("safety_mode", False) not in events


@pytest.mark.parametrize("intent", ["deny", "nlu_fallback", "out_of_scope", "greet"])
def test_nothing_helps_gets_support_never_an_faq(clinic_env, staffed, intent):
    slots = {**AFTER_TAKEOVER, "safety_question": None}
    latest = parse(intent, SafetyVerdict(settled=False), text="no i just feel like nothing helps")
    events, responses, _ = run(ActionSafetyFollowup(), tracker(latest, slots))
    assert responses == ["utter_safety_support"]
    assert SlotSet("safety_question", "offer_person") in events


def test_a_distressed_question_in_safety_mode_gets_support_not_its_answer(clinic_env, staffed):
    latest = parse("faq", SafetyVerdict(settled=False), topic="benefits", text="nothing works, does ketamine even help")
    _, responses, _ = run(ActionSafetyFollowup(), tracker(latest, {**AFTER_TAKEOVER, "safety_question": None}))
    assert responses == ["utter_safety_support"]


def test_a_clear_question_moves_on_out_of_safety_mode(clinic_env):
    latest = parse("faq", SafetyVerdict(), topic="pricing")
    events, responses, _ = run(ActionSafetyFollowup(), tracker(latest, {**AFTER_TAKEOVER, "safety_question": None}))
    assert responses == ["utter_faq/pricing", "utter_safety_moving_on"]
    assert SlotSet("safety_mode", False) in events


def test_thanks_with_a_sign_of_struggle_does_not_move_on(clinic_env, staffed):
    latest = parse("thank", SafetyVerdict(settled=False), text="thanks. not that anything helps")
    events, responses, _ = run(ActionSafetyFollowup(), tracker(latest, AFTER_TAKEOVER))
    assert responses == ["utter_safety_support"]
    assert SlotSet("safety_mode", False) not in events


def test_thanks_moves_on(clinic_env):
    events, responses, _ = run(ActionSafetyFollowup(), tracker(parse("thank", SafetyVerdict()), AFTER_TAKEOVER))
    assert responses == ["utter_you_are_welcome", "utter_safety_moving_on"]
    assert SlotSet("safety_mode", False) in events


def test_safe_after_a_check_in_brings_the_form_back(clinic_env):
    slots = {"safety_mode": True, "safety_question": "are_you_safe", "form_set_aside": "prescreen_form"}
    events, responses, _ = run(ActionSafetyFollowup(), tracker(parse("safe_now"), slots))
    assert responses == ["utter_safety_thanks"]
    assert events[-2:] == [SlotSet("form_set_aside", None), ActiveLoop("prescreen_form")]
    assert SlotSet("safety_mode", False) in events


@pytest.mark.parametrize("intent, step", [("human_handoff", "handoff_offer"), ("start_prescreen", "prescreen_intro")])
def test_a_person_or_the_pre_screen_leaves_the_mode_for_their_rules(clinic_env, intent, step):
    events, responses, _ = run(ActionSafetyFollowup(), tracker(parse(intent), AFTER_TAKEOVER))
    assert responses == []
    assert events[-1] == SlotSet("next_step", step)
    assert SlotSet("safety_mode", False) in events


# --- FAQ answers and "did you mean" ---------------------------------------------------------

def test_an_faq_is_answered_by_its_topic(clinic_env):
    _, responses, _ = run(ActionAnswerFaq(), tracker(parse("faq", SafetyVerdict(), topic="insurance")))
    assert responses == ["utter_faq/insurance"]


def test_an_informational_overdose_question_gets_the_988_footer(clinic_env):
    _, responses, _ = run(ActionAnswerFaq(), tracker(parse("faq", SafetyVerdict(footer=True), topic="safety")))
    assert responses == ["utter_faq/safety", "utter_safety_footer"]


def test_an_unknown_topic_is_not_answered_as_anything(clinic_env):
    latest = parse("faq", entities=[{"entity": "topic", "value": "horoscopes"}])
    _, responses, _ = run(ActionAnswerFaq(), tracker(latest))
    assert responses == ["utter_fallback"]


def test_unsure_gets_the_likely_topics_as_buttons_and_something_else(clinic_env):
    latest = parse("nlu_fallback", did_you_mean=["speed_of_results", "duration_of_effects", "not_a_topic"])
    events, responses, messages = run(ActionDidYouMean(), tracker(latest))
    assert responses == ["utter_did_you_mean"]
    assert [b["payload"] for b in messages[0]["buttons"]] == [
        pick_payload("speed_of_results"), pick_payload("duration_of_effects"), "/deny"]
    assert [b["title"] for b in messages[0]["buttons"]][-1] == "Something else"
    assert events == [SlotSet("next_step", None)]


def user(intent: str, message_id: str) -> Dict[str, Any]:
    return {"event": "user", "parse_data": {"intent": {"name": intent}, "message_id": message_id}}


def test_nothing_likely_gets_the_plain_fallback_then_again_then_a_person(clinic_env):
    latest = parse("nlu_fallback", did_you_mean=[])
    _, responses, _ = run(ActionDidYouMean(), tracker(latest, events=[user("nlu_fallback", "1")]))
    assert responses == ["utter_fallback"]
    _, responses, _ = run(ActionDidYouMean(), tracker(latest, events=[user("nlu_fallback", "1"), user("nlu_fallback", "2")]))
    assert responses == ["utter_fallback_again"]
    three = [user("faq", "0"), user("nlu_fallback", "1"), user("nlu_fallback", "2"), user("nlu_fallback", "3")]
    events, responses, _ = run(ActionDidYouMean(), tracker(latest, events=three))
    assert responses == [] and events == [SlotSet("next_step", "handoff_offer")]


def test_a_pick_is_answered_and_recorded_with_the_message_it_answers(clinic_env):
    offer = {"event": "bot", "data": {"buttons": [{"title": "How soon", "payload": pick_payload("speed_of_results")},
                                                  {"title": "How long", "payload": pick_payload("duration_of_effects")},
                                                  {"title": "Something else", "payload": "/deny"}]}}
    history = [user("nlu_fallback", "question-1"), offer, user("faq", "pick-1")]
    latest = parse("faq", entities=[{"entity": "topic", "value": "duration_of_effects"}], message_id="pick-1")
    _, responses, _ = run(ActionAnswerFaq(), tracker(latest, events=history))
    assert responses == ["utter_faq/duration_of_effects"]
    picks = db.topic_picks_for(db.get_engine(get_settings().clinic_db_url), SENDER)
    assert [(p["message_id"], p["offered"], p["picked"]) for p in picks] == [
        ("question-1", "speed_of_results duration_of_effects", "duration_of_effects")]
