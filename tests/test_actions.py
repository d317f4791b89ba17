"""Custom actions: exact events and responses, with a Tracker and a CollectingDispatcher.
(The handoff actions: tests/test_handoff_actions.py; crisis, urgent-medical, safety mode, FAQ
answers and "did you mean": tests/test_safety_actions.py.)"""

import asyncio
from typing import Any, Dict, List, Optional

import pytest
from rasa_sdk import Tracker
from rasa_sdk.events import ActionExecuted, SessionStarted
from rasa_sdk.executor import CollectingDispatcher

from actions.session import ActionSessionStart
from clinic.storage import db
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


# --- the domain goes only with the actions that read it (endpoints' enable_selective_domain) ---

def action_classes() -> Dict[str, type]:
    """Every custom action class of actions/, by the name Rasa calls it."""
    import importlib
    import inspect
    from pathlib import Path

    from rasa_sdk import Action

    found: Dict[str, type] = {}
    for source in sorted(Path("actions").glob("*.py")):
        module = importlib.import_module(f"actions.{source.stem}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, Action) and cls.__module__ == module.__name__:
                found[cls().name()] = cls
    return found


def test_only_the_form_validations_read_the_domain():
    """rasa_sdk's FormValidationAction reads the form's slots from the domain; no other action
    of actions/ reads its ``domain`` argument (they are sent none)."""
    import ast
    import inspect
    import textwrap

    from rasa_sdk.forms import FormValidationAction

    classes = action_classes()
    assert {"action_session_start", "validate_prescreen_form", "action_submit_referral"} <= set(classes)
    for name, cls in classes.items():
        if issubclass(cls, FormValidationAction):
            assert name.startswith("validate_"), name  # what Rasa sends the domain to
            continue
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
        read = [node.lineno for node in ast.walk(tree)
                if isinstance(node, ast.Name) and node.id == "domain" and isinstance(node.ctx, ast.Load)]
        assert read == [], f"{name} reads the domain (lines {read}): mark it send_domain: true in domain/"


@pytest.mark.parametrize("path", ["endpoints.yml", "endpoints.scale.yml"])
def test_the_endpoints_send_the_domain_only_to_the_form_validations(path, monkeypatch):
    from rasa.core.actions.action import RemoteAction
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.trackers import DialogueStateTracker
    from rasa.utils.endpoints import read_endpoint_config
    from rasa_sdk.forms import FormValidationAction

    monkeypatch.setenv("ACTION_ENDPOINT_URL", "http://127.0.0.1:5055/webhook")
    for name in ("DATABASE_URL", "REDIS_URL", "ACTION_SERVER_TOKEN"):
        monkeypatch.setenv(name, "x")
    endpoint = read_endpoint_config(path, "action_endpoint")
    domain = Domain.load("domain")
    tracker = DialogueStateTracker.from_events("c-1", [])
    classes = action_classes()
    assert set(domain.user_actions) - set(domain.responses) == set(classes)  # the custom actions: actions/
    for name, cls in classes.items():
        body = RemoteAction(name, endpoint)._action_call_format(tracker, domain)
        assert ("domain" in body) == issubclass(cls, FormValidationAction), name
        if "domain" in body:  # the whole domain, as Rasa sends it
            assert body["domain"] == domain.as_dict()
