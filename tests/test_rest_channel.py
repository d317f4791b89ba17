"""The REST channel of credentials.yml (clinic/rasa_runtime/rest_channel.py) keeps the parse of a
button's payload: only the domain's own payloads, once per loaded model, a copy for each
message, the very parse the NLU graph gives; whole conversations give the same events with the
kept parses as without them; the Rasa server's REST URL hands Rasa the kept parse."""

import asyncio
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Dict, List

import pytest
import yaml
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from clinic.rasa_runtime.rest_channel import ClinicRestInput, button_payloads, kept_parse
from tests.conversation_events import comparable, first_difference

ROOT = Path(__file__).resolve().parent.parent


def test_credentials_name_this_channel_under_rasa_s_rest_name():
    """The web app posts to /webhooks/rest/webhook and the events say input_channel "rest"."""
    credentials = yaml.safe_load((ROOT / "credentials.yml").read_text())
    assert list(credentials) == ["clinic.rasa_runtime.rest_channel.ClinicRestInput"]
    assert ClinicRestInput.name() == "rest" and ClinicRestInput().url_prefix() == "rest"


def test_the_domain_s_button_payloads_are_kept_and_no_template():
    payloads = button_payloads(Domain.load(str(ROOT / "domain")))
    assert {"Yes", "No", "/affirm", "/deny", "/human_handoff", "Mornings", "Skip"} <= payloads
    assert "What are the side effects?" in payloads  # a button that asks a question
    assert not any("{" in payload for payload in payloads)  # '/faq_more{{"topic": ...}}' is filled in by Rasa


def test_every_variation_s_buttons_count_and_malformed_ones_do_not():
    domain = SimpleNamespace(responses={
        "utter_a": [
            {"text": "x", "buttons": [{"title": "A", "payload": "/a"}, {"title": "T", "payload": '/b{{"x": 1}}'},
                                      "junk", {"title": "no payload"}, {"payload": "  "}, {"payload": 3}]},
            {"text": "y", "buttons": [{"payload": "Later"}]},
            None,
        ],
        "utter_b": None,
        "utter_c": [{"text": "no buttons"}],
    })
    assert button_payloads(domain) == {"/a", "Later"}
    assert button_payloads(SimpleNamespace()) == frozenset()


class CountingProcessor:
    """A stand-in for a loaded model's processor: its domain's buttons, the texts it parsed."""

    def __init__(self, payloads: List[str]) -> None:
        self.domain = SimpleNamespace(responses={"utter_x": [{"buttons": [{"payload": p} for p in payloads]}]})
        self.parsed: List[str] = []

    async def parse_message(self, message: UserMessage) -> Dict[str, Any]:
        self.parsed.append(message.text)
        return {"text": message.text, "intent": {"name": f"intent of {message.text}"}, "entities": []}


def test_a_payload_is_parsed_once_per_model_and_each_message_gets_its_own_copy():
    loop = asyncio.new_event_loop()
    try:
        first, second = CountingProcessor(["Yes", "/stop"]), CountingProcessor(["Yes"])
        one = loop.run_until_complete(kept_parse(first, "Yes"))
        one["intent"]["name"] = "changed by Rasa's events"  # a message's parse is its own
        two = loop.run_until_complete(kept_parse(first, "Yes"))
        assert two == {"text": "Yes", "intent": {"name": "intent of Yes"}, "entities": []}
        assert first.parsed == ["Yes"]
        assert loop.run_until_complete(kept_parse(second, "Yes"))["text"] == "Yes"
        assert second.parsed == ["Yes"]  # another model parses it again
        for typed in ("yes", "Yes ", "Yes please", "", "/stop{}", "x" * 50_000):
            assert loop.run_until_complete(kept_parse(first, typed)) is None
        assert loop.run_until_complete(kept_parse(second, "/stop")) is None  # not a button of that model
        assert first.parsed == ["Yes"]
    finally:
        loop.close()


@pytest.fixture(scope="module")
def agent(tmp_path_factory):
    """The trained model, with the action server of a temporary stack; the loop it runs on."""
    from tests.stack import agent_with_actions

    loop = asyncio.new_event_loop()
    try:
        with agent_with_actions(tmp_path_factory.mktemp("rest-channel"), loop) as loaded:
            yield loaded, loop
    finally:
        loop.close()


def test_each_kept_parse_is_the_parse_the_graph_gives(agent):
    agent, loop = agent
    payloads = sorted(button_payloads(agent.processor.domain))
    assert len(payloads) >= 20
    for payload in payloads:
        kept = loop.run_until_complete(kept_parse(agent.processor, payload))
        again = loop.run_until_complete(kept_parse(agent.processor, payload))
        graph = loop.run_until_complete(agent.processor.parse_message(UserMessage(payload)))
        assert kept == again == graph, payload
        # in a conversation, with the web app's metadata: still the same parse
        tracker = DialogueStateTracker.from_events("v2", [ActionExecuted("action_listen"), UserUttered("hello")])
        in_context = loop.run_until_complete(agent.processor.parse_message(
            UserMessage(payload, sender_id="v2", metadata={"display": payload.title()}), tracker))
        assert in_context == kept, payload
        assert kept["intent"]["name"], payload


def test_whole_conversations_give_the_same_events_with_the_kept_parses(agent):
    """The bench's simulated visitors (FAQ, pre-screens to a referral, handoff, crisis), each played
    as the channel plays it, then its messages again with every parse made by the graph."""
    from scripts.bench_visitors import Visitors, rasa_message

    agent, loop = agent

    async def play(messages: List[Any], keep: bool) -> List[Dict[str, Any]]:
        sender = uuid.uuid4().hex
        for text, metadata in messages:
            parse = await kept_parse(agent.processor, text) if keep else None
            await agent.handle_message(UserMessage(text, CollectingOutputChannel(), sender, input_channel="rest",
                                                   metadata=metadata, parse_data=parse))
        tracker = await agent.tracker_store.retrieve_full_tracker(sender)
        return comparable([event.as_dict() for event in tracker.events])

    visitors, kept_turns = Visitors(seed=23), 0
    for _ in range(10):
        sender, last, sent = uuid.uuid4().hex, [], []
        for kind, value in visitors.next().steps:
            text, metadata = rasa_message(kind, value, last)
            out = CollectingOutputChannel()
            parse = loop.run_until_complete(kept_parse(agent.processor, text))
            kept_turns += parse is not None
            loop.run_until_complete(agent.handle_message(
                UserMessage(text, out, sender, input_channel="rest", metadata=metadata, parse_data=parse)))
            sent.append((text, metadata))
            last = out.messages
        kept = comparable([e.as_dict() for e in
                           loop.run_until_complete(agent.tracker_store.retrieve_full_tracker(sender)).events])
        graph = loop.run_until_complete(play(sent, keep=False))
        assert kept == graph, (sent, first_difference(kept, graph))
    assert kept_turns >= 10


def test_the_rest_url_hands_rasa_the_kept_parse_of_a_button_and_none_of_typed_text(agent):
    """Through Sanic, as the Rasa server runs the channel: the agent read from the app at start."""
    from sanic import Sanic

    agent, loop = agent
    received: List[UserMessage] = []

    async def on_new_message(message: UserMessage) -> None:
        received.append(message)
        await message.output_channel.send_text_message(message.sender_id, "ok")

    test_mode, Sanic.test_mode = Sanic.test_mode, True
    try:
        app = Sanic(f"rest_channel_{uuid.uuid4().hex[:8]}")
        app.ctx.agent = agent
        app.blueprint(ClinicRestInput().blueprint(on_new_message), url_prefix="/webhooks/rest")
        for text in ("Yes", "Mornings", "what does it cost?"):
            _, response = app.test_client.post("/webhooks/rest/webhook", json={"sender": "v1", "message": text})
            assert response.status == 200 and response.json == [{"recipient_id": "v1", "text": "ok"}]
    finally:
        Sanic.test_mode = test_mode
    yes, mornings, typed = received
    assert yes.parse_data == loop.run_until_complete(agent.processor.parse_message(UserMessage("Yes")))
    assert yes.parse_data["intent"]["name"] == "affirm"
    assert mornings.parse_data["text"] == "Mornings"
    assert typed.parse_data is None  # parsed by Rasa's processor, as every typed message
    assert yes.input_channel == "rest" and yes.sender_id == "v1"
