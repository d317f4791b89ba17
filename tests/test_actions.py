"""Custom actions: exact events and responses, with a Tracker and a CollectingDispatcher.
(The handoff actions: tests/test_handoff_actions.py.)"""

import asyncio
from typing import Any, Dict, List, Optional

import pytest
from rasa_sdk import Tracker
from rasa_sdk.events import ActionExecuted, ActiveLoop, SessionStarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.crisis import ActionCrisisResponse
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


def test_every_response_an_action_utters_exists_in_the_domain():
    import re
    from pathlib import Path

    import yaml

    responses: List[str] = []
    for f in Path("domain").glob("*.yml"):
        responses += list((yaml.safe_load(f.read_text()) or {}).get("responses", {}))
    uttered = set()  # every "utter_..." string in the actions' code, and the callback form's re-asks
    for source in Path("actions").glob("*.py"):
        uttered |= set(re.findall(r'"(utter_[a-z0-9_]+)"', source.read_text()))
    uttered.discard("utter_action")  # the response selector's key for the chosen FAQ answer
    uttered |= {f"utter_wrong_{slot}" for slot in ("callback_name", "callback_contact", "callback_time")}
    assert "utter_handoff_consent" in uttered and "utter_crisis_team_told_live" in uttered
    assert sorted(uttered - set(responses)) == []
