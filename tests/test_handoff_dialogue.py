"""The trained dialogue model on the trackers a live handoff leaves behind.

The console appends events to the tracker over Rasa's HTTP API (clinic/rules/handoff.py
builds them): a person joins (pause), visitor messages are logged while paused
(no actions), staff messages are bot events, and the person hands back (resume,
a bot event, action_listen). The web app, for a crisis during a live chat,
appends a resume before sending the message. Here those trackers are built
event by event, visitor messages parsed by the real model, and the next action
predicted as the Rasa server would.
"""

from typing import Any, Dict, List, Optional

import pytest
from rasa.shared.core.events import ActionExecuted, BotUttered, Event, SessionStarted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from clinic.rules import handoff

CID = "d1a1" * 8


class Conversation:
    """A tracker built as the Rasa server would have stored it, turn by turn."""

    def __init__(self, agent: Any, loop: Any) -> None:
        self.agent = agent
        self.loop = loop
        self.tracker = DialogueStateTracker.from_events(
            CID,
            [ActionExecuted("action_session_start"), SessionStarted(), ActionExecuted("action_listen")],
            slots=agent.domain.slots,
        )

    def user(self, text: str) -> str:
        """The visitor's message, parsed by the model and logged; its intent."""
        parse = self.loop.run_until_complete(self.agent.parse_message(text))
        self.tracker.update(UserUttered(text, parse["intent"], parse["entities"], parse), self.agent.domain)
        return parse["intent"]["name"]

    def action(self, name: str, *events: Event, text: Optional[str] = None) -> None:
        """An action the bot ran, with the events it returned, then the listen that follows."""
        self.tracker.update(ActionExecuted(name), self.agent.domain)
        for event in events:
            self.tracker.update(event, self.agent.domain)
        if text is not None:
            self.tracker.update(BotUttered(text), self.agent.domain)

    def listen(self) -> None:
        self.tracker.update(ActionExecuted("action_listen"), self.agent.domain)

    def append(self, events: List[Dict[str, Any]]) -> None:
        """Events as the HTTP API appends them (/conversations/{id}/tracker/events)."""
        for data in events:
            self.tracker.update(Event.from_parameters(data), self.agent.domain)

    def predict(self) -> tuple:
        result = self.agent.processor.predict_next_with_tracker(self.tracker)
        best = max(result["scores"], key=lambda s: s["score"])
        return best["action"], result["policy"]


@pytest.fixture
def waiting(agent: Any, loop: Any) -> Conversation:
    """A visitor who asked for a person, said yes and waits in the live queue."""
    c = Conversation(agent, loop)
    assert c.user("can i talk to a real person please") == "human_handoff"
    assert c.predict()[0] == "action_human_handoff"
    c.action("action_human_handoff", SlotSet("form_set_aside", None), SlotSet("handoff_reason", "visitor_request"),
             text="I can connect you with a person from the team.")
    c.listen()
    assert c.user("yes") == "affirm"
    assert c.predict()[0] == "action_start_handoff"
    c.action("action_start_handoff", SlotSet("handoff_mode", "live"), text="You're next in line.")
    assert c.predict()[0] == "action_listen"
    c.listen()
    return c


@pytest.fixture
def live(waiting: Conversation) -> Conversation:
    """A person has joined, and messages went both ways while the assistant was paused."""
    c = waiting
    c.append(handoff.joined_events(7, "Ana", "Daytryp RX"))
    assert c.tracker.is_paused()
    c.user("hi ana, thanks for joining")  # logged while paused: no action runs
    c.append([handoff.staff_message_event(7, "Ana", "Hi, how can I help today?")])
    c.user("i have a question about the evaluation")
    c.append([handoff.staff_message_event(7, "Ana", "Of course, go ahead.")])
    return c


def test_while_waiting_the_assistant_still_answers_an_faq(waiting):
    assert waiting.user("how much does it cost") == "faq"
    assert waiting.predict() == ("action_answer_faq", "RulePolicy")


def test_a_crisis_in_a_live_chat_after_the_web_app_resumes_gets_the_crisis_response(live):
    live.append([{"event": "resume"}])
    assert not live.tracker.is_paused()
    assert live.user("honestly i want to end my life") == "crisis"
    assert live.predict() == ("action_crisis_response", "RulePolicy")


def test_after_the_person_hands_back_an_faq_is_answered_by_the_assistant(live):
    live.append(handoff.resumed_events("Ana", closed=False))
    assert live.user("is ketamine therapy safe") == "faq"
    assert live.predict() == ("action_answer_faq", "RulePolicy")


def test_after_the_person_closes_the_chat_a_greeting_is_answered(live):
    live.append(handoff.resumed_events("Ana", closed=True))
    assert live.user("hello") == "greet"
    assert live.predict() == ("utter_greet", "RulePolicy")


def test_after_a_crisis_in_a_live_chat_and_a_new_pause_a_hand_back_still_leads_to_answers(live):
    live.append([{"event": "resume"}])
    live.user("i want to kill myself")
    live.action("action_crisis_response", SlotSet("crisis_flagged", True), text="Please call or text 988.")
    live.listen()
    live.append([{"event": "pause"}])  # the web app pauses the assistant again
    live.user("ok")
    live.append([handoff.staff_message_event(7, "Ana", "I'm here with you.")])
    live.append(handoff.resumed_events("Ana", closed=False))
    assert live.user("what are the side effects") == "faq"
    assert live.predict() == ("action_answer_faq", "RulePolicy")
