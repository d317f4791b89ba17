"""clinic/rasa_speedups.py: Rasa's event class lookup from a table, and its check of the action
server's answers with the schema checked once; same answers as Rasa's own."""

import jsonschema
import pytest
from rasa.core.actions.action import RemoteAction
from rasa.shared.core import events
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.utils.common import all_subclasses

import clinic.tracker_store  # noqa: F401  (what Rasa imports: it installs the speed-ups)
from clinic import rasa_speedups


def rasa_lookup(type_name, default=None):
    return rasa_speedups._rasa_resolve_by_type(type_name, default)


def test_loading_the_tracker_store_installs_the_lookup():
    assert events.Event.resolve_by_type is rasa_speedups.resolve_by_type
    assert rasa_speedups._rasa_resolve_by_type is not rasa_speedups.resolve_by_type


def test_every_event_type_rasa_has_gives_the_class_rasa_gives():
    names = {cls.type_name for cls in all_subclasses(events.Event)}
    assert {"user", "bot", "action", "slot", "session_started", "active_loop", "followup"} <= names
    for name in names:
        assert events.Event.resolve_by_type(name) is rasa_lookup(name), name
        assert events.Event.resolve_by_type(name, events.UserUttered) is rasa_lookup(name, events.UserUttered)


def test_unknown_types_fail_or_default_as_before():
    with pytest.raises(ValueError, match="Unknown event name 'no_such_event'"):
        events.Event.resolve_by_type("no_such_event")
    assert events.Event.resolve_by_type("no_such_event", events.BotUttered) is events.BotUttered
    assert events.Event.resolve_by_type("topic") is None  # Rasa's old TopicSet events
    with pytest.raises(ValueError):
        events.Event.from_parameters({"event": "no_such_event"})
    assert events.Event.from_parameters({"event": "topic"}) is None


def test_an_event_class_defined_later_is_found():
    assert events.Event.resolve_by_type("user") is events.UserUttered  # the table is made
    with pytest.raises(ValueError):
        events.Event.resolve_by_type("clinic_test_event")

    class ClinicTestEvent(events.Restarted):
        type_name = "clinic_test_event"

    assert events.Event.resolve_by_type("clinic_test_event") is ClinicTestEvent
    assert events.Event.resolve_by_type("user") is events.UserUttered


def test_a_conversation_replays_to_the_same_tracker():
    tracker = DialogueStateTracker.from_events("c-1", [
        events.ActionExecuted("action_session_start"), events.SessionStarted(),
        events.ActionExecuted("action_listen"), events.UserUttered("hi", {"name": "greet"}),
        events.SlotSet("topic", "fees"), events.ActiveLoop("prescreen_form"), events.BotUttered("hello"),
        events.ActionExecuted("action_listen"), events.FollowupAction("action_listen"), events.Restarted(),
    ])
    dumped = [e.as_dict() for e in tracker.events]
    replayed = DialogueStateTracker.from_dict("c-1", dumped, [])
    assert [type(e) for e in replayed.events] == [type(e) for e in tracker.events]
    assert [e.as_dict() for e in replayed.events] == dumped


# --- the action server's answers, checked against Rasa's schema ---------------------------

ANSWERS_OK = [
    {"events": [], "responses": []},
    {},
    {"events": [{"event": "slot", "name": "topic", "value": "fees", "timestamp": None}],
     "responses": [{"text": "Our fees", "buttons": [{"title": "More", "payload": "/more"}]}]},
    {"events": [{"event": "active_loop", "name": None}, {"event": "followup", "name": "action_listen"}]},
]
ANSWERS_BAD = [
    {"events": {"event": "slot"}},
    {"events": [{"name": "topic"}]},
    {"events": [{"event": "slot", "name": 3}]},
    {"responses": ["just text"]},
    [],
]


def check(validate, answer):
    """What a check gives: True, or the error's class and message."""
    try:
        return validate(RemoteAction("validate_prescreen_form", None), answer)
    except Exception as e:  # noqa: BLE001 (compared, not hidden)
        return type(e), str(e)


def test_the_kept_validator_is_installed():
    assert RemoteAction._validate_action_result is rasa_speedups.validate_action_result


@pytest.mark.parametrize("answer", ANSWERS_OK + ANSWERS_BAD)
def test_answers_pass_and_fail_as_rasa_checks_them(answer):
    ours = check(rasa_speedups.validate_action_result, answer)
    assert ours == check(rasa_speedups._rasa_validate_action_result, answer)
    assert (ours is True) == (answer in ANSWERS_OK)
    if ours is not True:
        assert ours[0] is jsonschema.ValidationError
        assert "Failed to validate Action server response from API" in ours[1]


def test_the_schema_is_checked_once(monkeypatch):
    rasa_speedups._validators.clear()
    checked = []
    cls = jsonschema.validators.validator_for(RemoteAction.action_response_format_spec())
    monkeypatch.setattr(cls, "check_schema", classmethod(lambda c, schema: checked.append(schema)))
    for answer in ANSWERS_OK * 3:
        assert check(rasa_speedups.validate_action_result, answer) is True
    assert len(checked) == 1
