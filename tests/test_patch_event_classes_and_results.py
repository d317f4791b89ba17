"""clinic/rasa_runtime/patches/event_classes.py and action_result_check.py: Rasa's event class lookup from a table, and its check of the action
server's answers with the schema checked once; same answers as Rasa's own."""

import copy
import json
from pathlib import Path

import jsonschema
import pytest
from rasa.core.actions.action import RemoteAction
from rasa.shared.core import events
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.utils.common import all_subclasses

from clinic.rasa_runtime.patches import action_result_check, event_classes
from clinic.rasa_runtime.patches import applied as patches_applied


@pytest.fixture(autouse=True, scope="module")
def _patches_under_test():
    """The patches these tests test, in place whatever CLINIC_RASA_PATCHES says."""
    with patches_applied():
        yield



def rasa_lookup(type_name, default=None):
    return event_classes._rasa_resolve_by_type(type_name, default)


def test_the_patch_installs_the_lookup():
    assert events.Event.resolve_by_type is event_classes.resolve_by_type
    assert event_classes._rasa_resolve_by_type is not event_classes.resolve_by_type


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
    assert RemoteAction._validate_action_result is action_result_check.validate_action_result


@pytest.mark.parametrize("answer", ANSWERS_OK + ANSWERS_BAD)
def test_answers_pass_and_fail_as_rasa_checks_them(answer):
    ours = check(action_result_check.validate_action_result, answer)
    assert ours == check(action_result_check._rasa_validate_action_result, answer)
    assert (ours is True) == (answer in ANSWERS_OK)
    if ours is not True:
        assert ours[0] is jsonschema.ValidationError
        assert "Failed to validate Action server response from API" in ours[1]


def test_the_schema_is_checked_once(monkeypatch):
    action_result_check._validators.clear()
    checked = []
    cls = jsonschema.validators.validator_for(RemoteAction.action_response_format_spec())
    monkeypatch.setattr(cls, "check_schema", classmethod(lambda c, schema: checked.append(schema)))
    for answer in ANSWERS_OK * 3:
        assert check(action_result_check.validate_action_result, answer) is True
    assert len(checked) == 1


# --- the check by event type: same verdicts as Rasa's jsonschema check --------------------

# every distinct answer of the action server to the bench's visitors (scripts/bench_visitors.py,
# seed 7: 50 visitors, 375 calls of 5 actions), recorded at RemoteAction._validate_action_result
RECORDED = [entry["answer"] for entry in json.loads((Path(__file__).parent / "action_answers.json").read_text())]

# answers of every event type Rasa has, valid by its schema (Rasa's check says so below)
OTHER_TYPES = {"events": [
    {"event": "user", "text": "hi", "parse_data": {
        "intent": {"name": "greet", "confidence": 0.9}, "entities": [{"entity": "x", "value": 1, "start": 0, "end": 2}],
        "intent_ranking": [{"name": "greet", "confidence": 0.9}],
        "response_selector": {"all_retrieval_intents": ["faq"]}}, "input_channel": "rest", "message_id": "m"},
    {"event": "action", "name": "action_listen", "policy": None, "confidence": 1.0, "hide_rule_turn": False},
    {"event": "entities", "entities": []}, {"event": "user_featurization"}, {"event": "cancel_reminder"},
    {"event": "reminder"}, {"event": "action_execution_rejected"}, {"event": "form_validation"},
    {"event": "loop_interrupted"}, {"event": "form"}, {"event": "active_loop", "name": "prescreen_form"},
    {"event": "reset_slots"}, {"event": "resume"}, {"event": "pause"}, {"event": "followup", "name": "x"},
    {"event": "export"}, {"event": "restart"}, {"event": "undo"}, {"event": "rewind"},
    {"event": "bot", "text": "hello", "data": {}}, {"event": "session_started", "metadata": {"a": 1}},
    {"event": "agent", "text": "hi"}, {"event": "slot", "name": "age", "value": None, "timestamp": 1.5},
]}


def broken(answer):
    """Invalid answers made from a valid one: each way an answer or one of its events can break."""
    out = [None, "text", 3, [answer], {**answer, "events": None}, {**answer, "events": {"event": "slot"}},
           {**answer, "responses": {"text": "x"}}, {**answer, "responses": ["x"]}, {**answer, "responses": [None]}]
    for i, event in enumerate(answer.get("events") or []):
        changes = [None, [], "slot", {k: v for k, v in event.items() if k != "event"},
                   {**event, "event": "no_such_event"}, {**event, "event": 3}, {**event, "event": None},
                   {**event, "event": "topic"}, {**event, "event": "Slot"}, {**event, "timestamp": "now"},
                   {**event, "metadata": []}, {**event, "metadata": "m"}]
        if event["event"] == "slot":
            changes += [{**event, "name": 3}, {k: v for k, v in event.items() if k != "value"},
                        {k: v for k, v in event.items() if k != "name"}]
        if event["event"] == "user":
            changes += [{**event, "text": 3}, {**event, "parse_data": []},
                        {**event, "parse_data": {**event["parse_data"], "intent_ranking": {}}},
                        {**event, "parse_data": {**event["parse_data"], "entities": [{"entity": "x"}]}},
                        {**event, "parse_data": {**event["parse_data"], "response_selector": {"faq": 3}}}]
        if event["event"] == "action":
            changes += [{**event, "name": 3}, {**event, "hide_rule_turn": "no"}, {**event, "confidence": "high"}]
        if event["event"] == "entities":
            changes += [{"event": "entities"}, {"event": "entities", "entities": [{"value": 1}]}]
        for change in changes:
            events_ = list(answer["events"])
            events_[i] = change
            out.append({**answer, "events": events_})
    return out


INVALID = [bad for answer in RECORDED[::30] + [OTHER_TYPES] for bad in broken(answer)]


def test_the_recorded_answers_cover_the_bench_s_actions():
    assert len(RECORDED) > 50
    types = {event["event"] for answer in RECORDED for event in answer["events"]}
    assert {"slot", "session_started", "action"} <= types
    assert any(answer["responses"] for answer in RECORDED)


@pytest.mark.parametrize("answer", RECORDED + [OTHER_TYPES] + ANSWERS_OK)
def test_valid_answers_pass_by_their_event_types_without_the_whole_check(answer, monkeypatch):
    assert check(action_result_check._rasa_validate_action_result, answer) is True  # Rasa's verdict
    action_result_check.validate_action_result(RemoteAction("x", None), {})  # the validators made
    validators = action_result_check._validators[RemoteAction.action_response_format_spec]
    monkeypatch.setattr(validators, "whole", None)  # the whole check would fail
    assert check(action_result_check.validate_action_result, answer) is True


def test_broken_answers_pass_or_fail_as_rasa_checks_them_with_rasa_s_error():
    rejected = 0
    for answer in INVALID:
        rasa = check(action_result_check._rasa_validate_action_result, answer)
        assert check(action_result_check.validate_action_result, answer) == rasa, answer
        rejected += rasa is not True
    assert rejected > 300  # most are invalid by Rasa's own check (a few changes are allowed)


def test_every_event_type_of_rasa_s_schema_has_its_own_check():
    validators = action_result_check._Validators(RemoteAction.action_response_format_spec())
    alternatives = RemoteAction.action_response_format_spec()["properties"]["events"]["items"]["oneOf"]
    assert set(validators.by_type) == {alt["properties"]["event"]["const"] for alt in alternatives}
    assert {event["event"] for event in OTHER_TYPES["events"]} == set(validators.by_type)


@pytest.mark.parametrize("change", [
    lambda alts: alts.append({"properties": {"name": {"type": "string"}}}),  # an alternative for any type
    lambda alts: alts.append({"properties": {"event": {"const": "slot"}}}),  # two alternatives for one type
    lambda alts: alts.append({"properties": {"event": {"enum": ["slot", "bot"]}}}),
])
def test_a_schema_not_shaped_by_type_is_always_checked_whole(change):
    class OtherAction(RemoteAction):
        @staticmethod
        def action_response_format_spec():
            schema = copy.deepcopy(RemoteAction.action_response_format_spec())
            change(schema["properties"]["events"]["items"]["oneOf"])
            return schema

    validators = action_result_check._Validators(OtherAction.action_response_format_spec())
    assert validators.by_type == {} and validators.answer is None
    for answer in RECORDED[:5] + [OTHER_TYPES]:
        assert not validators.passes(answer)
        assert check(action_result_check.validate_action_result, answer) == check(action_result_check._rasa_validate_action_result, answer)
