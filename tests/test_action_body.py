"""clinic/action_body.py: the body of a call to the action server, each event's dict and JSON
kept: the same dict as Rasa's ``RemoteAction._action_call_format`` and JSON that parses to the
same data (types included) as ``json.dumps`` of it, on every call of the bench's visitors and on
odd cases: text outside ASCII, floats, slots holding lists and dicts, a restarted conversation,
events replaced, events changed after they were written, events gone."""

import asyncio
import copy
import gc
import json
import math
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest
from rasa.core.actions.action import RemoteAction
from rasa.shared.core import events
from rasa.shared.core.domain import Domain
from rasa.shared.core.trackers import DialogueStateTracker

import clinic.tracker_store  # noqa: F401  (what Rasa imports: it installs the speed-ups)
from clinic import action_body
from scripts.bench_stack import BenchStack
from scripts.bench_visitors import Visitors, rasa_message
from tests.conftest import MODEL

DOMAIN = Domain.load("domain")


def typed(value: Any) -> Any:
    """Parsed JSON with the type of each part (1, 1.0 and true differ), dicts in any order."""
    if isinstance(value, dict):
        return ("dict", sorted((k, typed(v)) for k, v in value.items()))
    if isinstance(value, list):
        return ("list", [typed(v) for v in value])
    if isinstance(value, float) and math.isnan(value):
        return ("float", "nan")
    return (type(value).__name__, value)


def same_data(text: str, body: Dict[str, Any]) -> bool:
    return typed(json.loads(text)) == typed(json.loads(json.dumps(body)))


def rasa_body(action: RemoteAction, tracker: DialogueStateTracker, domain: Domain) -> Dict[str, Any]:
    """Rasa's body, the domain as sent: without the responses (action_body.sent_domain)."""
    body = action_body._rasa_action_call_format(action, tracker, domain)
    if "domain" in body:
        body["domain"] = {key: value for key, value in body["domain"].items() if key != "responses"}
    return body


def check(action: RemoteAction, tracker: DialogueStateTracker, domain: Domain = DOMAIN) -> action_body.ActionCall:
    """Ours against Rasa's: the same dict (same keys in the same order), JSON of the same data."""
    theirs = rasa_body(action, tracker, domain)
    ours = action_body.action_call_format(action, tracker, domain)
    assert type(ours) is action_body.ActionCall
    assert ours == theirs
    assert list(ours) == list(theirs) and list(ours["tracker"]) == list(theirs["tracker"])
    assert typed(ours) == typed(theirs)
    assert same_data(action_body.body_json(ours), theirs)
    return ours


def user(text: str, intent: str = "inform", **parse: Any) -> events.UserUttered:
    return events.UserUttered(text, {"name": intent, "confidence": 0.87}, [], {"text": text, **parse})


def a_tracker(evts: List[events.Event], sender: str = "c-1") -> DialogueStateTracker:
    return DialogueStateTracker.from_events(sender, evts, slots=DOMAIN.slots)


ACTION = RemoteAction("validate_prescreen_form", None)


def a_conversation() -> List[events.Event]:
    return [
        events.ActionExecuted("action_session_start"), events.SessionStarted(), events.ActionExecuted("action_listen"),
        user("I’m 34 — and “anxious” ✓ 😀 \u2028 <b>/</b>", entities=[{"entity": "CARDINAL", "value": "34"}]),
        events.ActionExecuted("prescreen_form", policy="RulePolicy", confidence=0.9999999999999999),
        events.ActiveLoop("prescreen_form"),
        events.SlotSet("age", 34), events.SlotSet("concern", None), events.SlotSet("requested_slot", "state"),
        events.SlotSet("treatments", ["medication", "talk therapy"]),
        events.SlotSet("prescreen_answers", {"phq2": [1, 2.5], "nested": {"ok": True, "none": None}}),
        events.BotUttered("Thanks — noted", {"buttons": [{"title": "Yes", "payload": "/affirm"}]}, {"m": 1e-7}),
        events.ActionExecuted("action_listen", timestamp=1732700000.123456789),
    ]


def test_the_body_is_rasas_dict_and_json(tmp_path):
    tracker = a_tracker(a_conversation())
    check(ACTION, tracker)
    check(ACTION, tracker)  # the second time from the kept entries
    check(RemoteAction("action_session_start", None), tracker)
    no_domain = RemoteAction("action_x", None)
    no_domain.action_endpoint = type("Endpoint", (), {"kwargs": {"enable_selective_domain": True}})()
    assert "domain" not in check(no_domain, tracker)  # selective domain: none for this action
    check(ACTION, a_tracker([]))  # no event at all
    check(ACTION, a_tracker([user("only a message")]))


def test_the_domain_is_sent_without_its_responses_and_made_once_per_domain():
    tracker = a_tracker(a_conversation())
    data = DOMAIN.as_dict()
    assert data["responses"] and data["forms"] and data["slots"]
    sent = check(ACTION, tracker)["domain"]
    assert list(sent) == [key for key in data if key != "responses"]
    assert all(sent[key] is data[key] for key in sent)  # Rasa's parts, shared (read-only, as Rasa's own)
    assert check(ACTION, tracker)["domain"] is sent  # kept while the domain is the same dict
    assert "responses" in DOMAIN.as_dict()  # Rasa's own domain untouched
    other = Domain.load("domain")  # a new model's domain: a new dict
    assert check(ACTION, tracker, other)["domain"] is not sent
    assert check(ACTION, tracker, other)["domain"] == sent


def test_kept_entries_are_used_again_and_the_latest_message_written_afresh(monkeypatch):
    conversation = a_conversation() + [user("second message"), events.ActionExecuted("validate_prescreen_form")]
    tracker = a_tracker(conversation)
    check(ACTION, tracker)
    made: List[events.Event] = []
    as_dict = events.Event.as_dict
    for cls in {type(e) for e in conversation}:
        monkeypatch.setattr(cls, "as_dict", lambda self, _f=cls.as_dict: made.append(self) or _f(self))
    body = check(ACTION, tracker)
    ours = made[len(tracker.events):]  # (check makes Rasa's body first: every event's dict)
    assert made[:len(tracker.events)] == list(tracker.events)
    assert ours == [tracker.latest_message] and ours[0] is conversation[-2]
    assert as_dict is events.Event.as_dict
    assert [e.data for e in body.entries] == body["tracker"]["events"]


def test_a_restarted_conversation_and_more_events_after():
    evts = a_conversation()
    tracker = a_tracker(evts)
    check(ACTION, tracker)
    for event in [events.Restarted(), events.ActionExecuted("action_session_start"), events.SessionStarted(),
                  events.ActionExecuted("action_listen"), user("again, ñ")]:
        tracker.update(event)
        check(ACTION, tracker)
    assert check(ACTION, tracker)["tracker"]["events"][len(evts)]["event"] == "restart"


def test_events_replaced_removed_or_inserted_give_the_new_body():
    tracker = a_tracker(a_conversation())
    check(ACTION, tracker)
    tracker.events[6] = events.SlotSet("age", 35)
    assert check(ACTION, tracker)["tracker"]["events"][6]["value"] == 35
    tracker.events.remove(tracker.events[7])
    tracker.events.insert(2, events.SlotSet("age", 36))
    check(ACTION, tracker)
    tracker.events.clear()
    tracker.events.extend(a_conversation()[:4])
    check(ACTION, tracker)
    other = a_tracker(a_conversation()[:5], sender="c-2")
    other.events = tracker.events  # another tracker with the same events
    check(ACTION, other)


@pytest.mark.parametrize("change", [
    lambda e: setattr(e, "timestamp", 1.5),  # what Rasa's update_with_events does
    lambda e: setattr(e, "metadata", {**e.metadata, "model_id": "m1"}),  # what Rasa's update does
    lambda e: setattr(e, "value", True),  # 1 -> True: equal in Python, not in JSON
    lambda e: setattr(e, "value", 1.0),
    lambda e: setattr(e, "extra", "an attribute more"),
    lambda e: delattr(e, "timestamp"),
])
def test_an_event_changed_after_it_was_written_is_written_again(change):
    slot = events.SlotSet("age", 1, timestamp=1.0)
    tracker = a_tracker(a_conversation() + [slot])
    body = check(ACTION, tracker)
    assert body["tracker"]["events"][-1]["value"] == 1
    try:
        change(slot)
        check(ACTION, tracker)
    except AttributeError:  # an event without an attribute its as_dict reads: fails as Rasa's
        with pytest.raises(AttributeError):
            rasa_body(ACTION, tracker, DOMAIN)
        with pytest.raises(AttributeError):
            action_body.action_call_format(ACTION, tracker, DOMAIN)


def test_the_same_event_in_a_form_s_temporary_tracker_then_logged_again():
    """A form's step: the validation action is called with a temporary tracker holding the
    slot candidates, which are then logged into the conversation (Rasa's ``update`` sets their
    metadata, ``update_with_events`` their timestamp)."""
    tracker = a_tracker(a_conversation())
    tracker.model_id = "model-1"
    candidate = events.SlotSet("age", 41)
    temporary = a_tracker(list(tracker.events) + [candidate])
    check(ACTION, temporary)
    tracker.update_with_events([candidate], DOMAIN)
    body = check(ACTION, tracker)
    assert body["tracker"]["events"][-1]["metadata"] == {"model_id": "model-1"}


def test_entities_added_to_the_latest_message_are_in_the_next_body():
    message = events.UserUttered("I am 41", {"name": "inform", "confidence": 0.9}, [{"entity": "age", "value": 41}])
    parse = {"intent": message.intent, "entities": message.entities, "text": message.text}
    message = events.UserUttered(message.text, message.intent, parse["entities"], parse)  # as the processor makes it
    tracker = a_tracker(a_conversation() + [events.ActionExecuted("action_listen"), message])
    check(ACTION, tracker)
    tracker.update(events.EntitiesAdded([{"entity": "state", "value": "TX"}]))  # TED's: in place
    assert len(message.parse_data["entities"]) == 2
    assert len(check(ACTION, tracker)["tracker"]["events"][-2]["parse_data"]["entities"]) == 2


def test_copies_of_events_and_events_gone_are_written_as_they_are():
    tracker = a_tracker(a_conversation())
    check(ACTION, tracker)
    copied = copy.deepcopy(tracker)
    copied.events[3].parse_data["intent"]["confidence"] = 1.0  # as Rasa's two-stage fallback does
    assert check(ACTION, copied)["tracker"]["events"][3]["parse_data"]["intent"]["confidence"] == 1.0
    before = len(action_body._kept)
    del tracker, copied
    gc.collect()
    assert len(action_body._kept) < before  # the entries go with their events
    for _ in range(50):  # new events (maybe at the addresses of the old ones) are theirs
        check(ACTION, a_tracker([events.SlotSet("age", n) for n in range(5)] + [user(uuid.uuid4().hex)]))


def test_a_body_changed_before_it_is_written_is_written_as_it_is():
    tracker = a_tracker(a_conversation())
    body = action_body.action_call_format(ACTION, tracker, DOMAIN)
    body["tracker"]["events"].append({"event": "slot", "name": "x", "value": [1]})
    assert same_data(action_body.body_json(body), body)
    body = action_body.action_call_format(ACTION, tracker, DOMAIN)
    body["tracker"]["events"][0] = {"event": "action", "name": "other"}
    assert same_data(action_body.body_json(body), body)
    body = action_body.action_call_format(ACTION, tracker, DOMAIN)
    body["tracker"] = {"events": body["tracker"]["events"]}
    assert same_data(action_body.body_json(body), body)
    body = action_body.action_call_format(ACTION, tracker, DOMAIN)
    body["tracker"][1] = "a key not a string"
    assert typed(json.loads(action_body.body_json(body))) == typed(json.loads(json.dumps(body)))


def test_what_json_cannot_write_fails_as_rasa_s():
    tracker = a_tracker(a_conversation() + [events.SlotSet("age", {1, 2})])
    with pytest.raises(TypeError) as theirs:
        json.dumps(rasa_body(ACTION, tracker, DOMAIN))
    with pytest.raises(TypeError) as ours:
        action_body.body_json(action_body.action_call_format(ACTION, tracker, DOMAIN))
    assert str(ours.value) == str(theirs.value)


def test_install_and_uninstall(monkeypatch):
    monkeypatch.setattr(RemoteAction, "_action_call_format", RemoteAction._action_call_format)  # put back after
    action_body.install()
    assert RemoteAction._action_call_format is action_body.action_call_format
    action_body.uninstall()
    assert RemoteAction._action_call_format is action_body._rasa_action_call_format
    assert action_body._rasa_action_call_format.__module__ == "rasa.core.actions.action"


# --- every call of the bench's visitors -------------------------------------------------------


@pytest.fixture(scope="module")
def agent(loop: asyncio.AbstractEventLoop) -> Iterator[Any]:
    """The trained model in this process, on endpoints.yml's stores and the action server of a
    temporary stack (as scripts/bench_profile.py runs it)."""
    from rasa.core.agent import load_agent

    from clinic.action_endpoint import close_sessions

    if not MODEL.exists():
        pytest.fail(f"{MODEL} is missing: run `make train` (make test does it)")
    workdir = Path(tempfile.mkdtemp(prefix="action-body-"))
    stack = BenchStack(workdir)
    try:
        stack.start("actions")
        stack.wait_ready(names=["actions"])
        stack.var_dir.mkdir(parents=True, exist_ok=True)
        endpoints = stack.read_endpoints()
        yield loop.run_until_complete(load_agent(model_path=str(MODEL), endpoints=endpoints))
    finally:
        loop.run_until_complete(close_sessions())
        stack.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)


def test_every_call_of_the_bench_visitors_sends_rasa_s_body(agent, loop, monkeypatch):
    from rasa.core.channels.channel import CollectingOutputChannel, UserMessage

    from clinic import action_endpoint

    sent: List[str] = []
    checked: List[str] = []
    reused: List[int] = []
    body_json = action_body.body_json
    monkeypatch.setattr(action_endpoint, "body_json", lambda body: sent.append(body_json(body)) or sent[-1])
    run = RemoteAction.run

    async def checked_run(self: RemoteAction, output_channel: Any, nlg: Any, tracker: Any, domain: Any) -> Any:
        theirs = rasa_body(self, tracker, domain)
        before = len(sent)
        kept_before = {id(e): action_body._kept.get(id(e)) for e in tracker.events}
        answer = await run(self, output_channel, nlg, tracker, domain)
        assert len(sent) == before + 1
        assert same_data(sent[-1], theirs)
        checked.append(self.name())
        reused.append(sum(1 for e in tracker.events if kept_before[id(e)] is not None
                          and action_body._kept.get(id(e)) is kept_before[id(e)]))
        return answer

    monkeypatch.setattr(RemoteAction, "run", checked_run)
    monkeypatch.setattr(RemoteAction, "_action_call_format", action_body.action_call_format)
    # the endpoint writes with the session's json_serialize: a new session, ours wrapped
    loop.run_until_complete(action_endpoint.close_sessions())
    visitors = Visitors(seed=5)
    for _ in range(12):
        script, sender, last = visitors.next(), uuid.uuid4().hex, []
        for kind, value in script.steps:
            text, metadata = rasa_message(kind, value, last)
            out = CollectingOutputChannel()
            loop.run_until_complete(agent.handle_message(
                UserMessage(text, out, sender, input_channel="rest", metadata=metadata)))
            last = out.messages
    loop.run_until_complete(action_endpoint.close_sessions())
    assert len(checked) > 40 and {"action_session_start", "validate_prescreen_form"} <= set(checked)
    assert sum(reused) > 20 * len(checked)  # most events' JSON was kept from an earlier call
