"""The safety layer's outcomes, answered (domain/safety.yml says what each response holds).

    respond_to_crisis      a takeover: resources at once (911 first when it is happening now,
                           the domestic violence hotline when the danger is a person), any form
                           stopped, the conversation flagged urgent once, "are you safe right
                           now?" (or, with a person waiting or in the chat, the request made
                           urgent), and safety mode for the next turns (actions/safety_mode.py)
    check_in               the safety layer is unsure: "are you safe right now?" with 988, after
                           whatever answer the message gets; the reply is taken in safety mode
                           (where an unsure message gets support and a person, not the
                           resources all over again: actions/safety_mode.py)
    action_urgent_medical  911 / Poison Control first, then the care team; flagged urgent

What the safety layer found is in the message's parse (``safety``: clinic/safety/layer.py).
"""

import logging
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from clinic.storage import db
from clinic.rules import handoff
from clinic.safety.verdict import verdict_of
from clinic.settings import get_settings

logger = logging.getLogger(__name__)

CRISIS_FLAG = "crisis"
URGENT_MEDICAL_FLAG = "urgent_medical"
ARE_YOU_SAFE = "are_you_safe"


def flag_urgent(conversation_id: Text, flag: Text) -> None:
    """The conversation in the console's urgent list (once, however often it is said)."""
    try:
        db.flag_once(db.get_engine(get_settings().clinic_db_url), conversation_id, flag)
    except Exception:  # the visitor still gets the resources; staff see the transcript
        logger.exception("could not store the urgent flag of a conversation")


def _raise_live_request(conversation_id: str) -> Optional[Dict[str, Any]]:
    """The conversation's waiting or live request, made urgent (first in the queue); None if it has none."""
    try:
        engine = db.get_engine(get_settings().clinic_db_url)
        if handoff.active(engine, conversation_id) is None:
            return None
        return handoff.raise_priority(engine, conversation_id)
    except Exception:  # a person is offered instead; a yes says honestly if it cannot be passed on
        logger.exception("could not raise the priority of a live handoff request")
        return None


def respond_to_crisis(dispatcher: CollectingDispatcher, tracker: Tracker) -> List[EventType]:
    """A takeover: resources at once, the form stopped, an urgent flag, safety mode."""
    verdict = verdict_of(tracker.latest_message)
    # The resources go out first, whatever happens below.
    dispatcher.utter_message(response="utter_crisis_resources_now" if verdict.now else "utter_crisis_resources")
    if verdict.danger_from_person:
        dispatcher.utter_message(response="utter_crisis_domestic_violence")
    flag_urgent(tracker.sender_id, CRISIS_FLAG)
    request = _raise_live_request(tracker.sender_id)
    if request is None:
        dispatcher.utter_message(response="utter_ask_safe_now")
    elif request["status"] == handoff.LIVE:
        logger.info("live handoff request %s made urgent", request["id"])
        dispatcher.utter_message(response="utter_crisis_team_told_live", agent=request["staff_name"] or "the team")
    else:
        logger.info("live handoff request %s made urgent", request["id"])
        dispatcher.utter_message(response="utter_crisis_team_told_waiting")
    events: List[EventType] = [
        SlotSet("crisis_flagged", True),
        SlotSet("safety_mode", True),
        SlotSet("safety_question", ARE_YOU_SAFE if request is None else None),
    ]
    if tracker.active_loop_name:
        events += [ActiveLoop(None), SlotSet("requested_slot", None)]
    return events


def check_in(dispatcher: CollectingDispatcher, tracker: Tracker) -> List[EventType]:
    """The unsure case: the message's question answered, then the assistant asks whether the
    visitor is safe; the answer is taken in safety mode. A form is set aside meanwhile (answers
    kept): "I'm safe" brings it back."""
    from actions.faq import answer_topic, selected_topic  # (actions.faq does not import this module)

    verdict = verdict_of(tracker.latest_message)
    topic = selected_topic(tracker.latest_message or {}) if verdict.intent == "faq" else None
    if topic:
        answer_topic(dispatcher, tracker, topic)
    dispatcher.utter_message(response="utter_safety_check_in")
    events: List[EventType] = [SlotSet("safety_mode", True), SlotSet("safety_question", ARE_YOU_SAFE)]
    if tracker.active_loop_name:
        events += [ActiveLoop(None), SlotSet("requested_slot", None), SlotSet("form_set_aside", tracker.active_loop_name)]
    return events


def needs_check_in(tracker: Tracker) -> bool:
    verdict = verdict_of(tracker.latest_message)
    return verdict.check_in and not tracker.get_slot("safety_mode")


class ActionCrisisResponse(Action):
    def name(self) -> Text:
        return "action_crisis_response"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        if needs_check_in(tracker):
            return check_in(dispatcher, tracker)
        if verdict_of(tracker.latest_message).check_in:  # in safety mode: support, the resources were just given
            from actions.safety_mode import support  # (actions.safety_mode imports this module)

            return support(dispatcher, tracker)
        return respond_to_crisis(dispatcher, tracker)


class ActionUrgentMedical(Action):
    """911 first (Poison Control first for something swallowed), then the care team; the
    conversation flagged urgent for staff. Never a booking or an FAQ in its place."""

    def name(self) -> Text:
        return "action_urgent_medical"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        verdict = verdict_of(tracker.latest_message)
        if verdict.ingestion:
            dispatcher.utter_message(response="utter_urgent_medical_ingestion")
        else:
            dispatcher.utter_message(response="utter_urgent_medical")
        flag_urgent(tracker.sender_id, URGENT_MEDICAL_FLAG)
        request = _raise_live_request(tracker.sender_id)
        if request is None:
            dispatcher.utter_message(response="utter_urgent_medical_team")
        elif request["status"] == handoff.LIVE:
            dispatcher.utter_message(response="utter_crisis_team_told_live", agent=request["staff_name"] or "the team")
        else:
            dispatcher.utter_message(response="utter_crisis_team_told_waiting")
        events: List[EventType] = [SlotSet("crisis_flagged", True)]
        if tracker.active_loop_name:
            events += [ActiveLoop(None), SlotSet("requested_slot", None)]
        return events
