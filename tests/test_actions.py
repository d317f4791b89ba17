"""Custom actions: exact events and responses, with a Tracker and a CollectingDispatcher."""

import asyncio
from typing import Any, Dict, List, Optional

import pytest
from rasa_sdk import Tracker
from rasa_sdk.events import ActionExecuted, ActiveLoop, SessionStarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.crisis import ActionCrisisResponse
from actions.handoff import ActionHumanHandoff
from actions.session import ActionSessionStart
from clinic import db
from clinic.settings import get_settings


def make_tracker(
    slots: Optional[Dict[str, Any]] = None,
    active_loop: Optional[str] = None,
    sender_id: str = "c0ffee" * 5 + "00",
) -> Tracker:
    return Tracker(
        sender_id=sender_id,
        slots=slots or {},
        latest_message={"text": "hello", "intent": {"name": "greet", "confidence": 1.0}},
        events=[],
        paused=False,
        followup_action=None,
        active_loop={"name": active_loop} if active_loop else {},
        latest_action_name="action_listen",
    )


def run(action: Any, tracker: Tracker) -> tuple:
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, tracker, {}))
    return events, [m.get("response") for m in dispatcher.messages]


def test_session_start_sets_the_clinic_facts_from_settings(clinic_env):
    events, responses = run(ActionSessionStart(), make_tracker())
    clinic = get_settings().clinic
    assert events[0] == SessionStarted()
    assert events[-1] == ActionExecuted("action_listen")
    slots = {e["name"]: e["value"] for e in events if e["event"] == "slot"}
    assert slots["clinic_name"] == clinic.name
    assert slots["clinic_phone"] == clinic.phone
    assert slots["clinic_email"] == clinic.email
    assert slots["min_age"] == "18"
    assert slots["clinic_states"] == "California, Colorado, Florida, New York, Texas and Washington"
    assert responses == []


def test_crisis_response_gives_resources_offers_a_person_and_flags_urgent(clinic_env):
    tracker = make_tracker()
    events, responses = run(ActionCrisisResponse(), tracker)
    assert responses == ["utter_crisis_resources", "utter_crisis_offer_person"]
    assert events == [SlotSet("crisis_flagged", True)]
    flags = db.flags_for(db.get_engine(get_settings().clinic_db_url), tracker.sender_id)
    assert [f["flag"] for f in flags] == ["crisis"]


def test_crisis_response_stops_an_active_form(clinic_env):
    events, responses = run(ActionCrisisResponse(), make_tracker(active_loop="prescreen_form"))
    assert responses[0] == "utter_crisis_resources"
    assert events == [SlotSet("crisis_flagged", True), ActiveLoop(None), SlotSet("requested_slot", None)]


def test_crisis_response_still_speaks_when_the_database_fails(clinic_env, monkeypatch):
    def broken(*_a, **_k):
        raise RuntimeError("database is locked")

    monkeypatch.setattr(db, "flag_conversation", broken)
    events, responses = run(ActionCrisisResponse(), make_tracker())
    assert responses == ["utter_crisis_resources", "utter_crisis_offer_person"]
    assert events == [SlotSet("crisis_flagged", True)]


def test_handoff_records_a_request_for_staff(clinic_env):
    tracker = make_tracker()
    events, responses = run(ActionHumanHandoff(), tracker)
    assert events == []
    assert responses == ["utter_handoff_recorded"]
    rows = db.handoff_requests_for(db.get_engine(get_settings().clinic_db_url), tracker.sender_id)
    assert [(r["reason"], r["urgent"], r["status"]) for r in rows] == [("visitor_request", False, "new")]


def test_handoff_after_a_crisis_is_urgent(clinic_env):
    tracker = make_tracker(slots={"crisis_flagged": True})
    run(ActionHumanHandoff(), tracker)
    rows = db.handoff_requests_for(db.get_engine(get_settings().clinic_db_url), tracker.sender_id)
    assert [(r["reason"], r["urgent"]) for r in rows] == [("crisis", True)]


def test_handoff_says_so_honestly_when_it_cannot_be_recorded(clinic_env, monkeypatch):
    def broken(*_a, **_k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(db, "record_handoff_request", broken)
    events, responses = run(ActionHumanHandoff(), make_tracker())
    assert events == []
    assert responses == ["utter_handoff_not_recorded"]


def test_every_response_an_action_utters_exists_in_the_domain():
    import yaml
    from pathlib import Path

    responses: List[str] = []
    for f in Path("domain").glob("*.yml"):
        responses += list((yaml.safe_load(f.read_text()) or {}).get("responses", {}))
    for name in ["utter_crisis_resources", "utter_crisis_offer_person", "utter_handoff_recorded", "utter_handoff_not_recorded"]:
        assert name in responses
