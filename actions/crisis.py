"""The crisis response: resources at once, any form stopped, urgent flag, a person offered
(or, when the visitor already waits for a person or talks with one, the request made urgent)."""

import logging
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from clinic import db, handoff
from clinic.settings import get_settings

logger = logging.getLogger(__name__)


def _raise_live_request(engine: Any, conversation_id: str) -> Optional[Dict[str, Any]]:
    """The conversation's waiting or live request, made urgent (first in the queue); None if it has none."""
    if handoff.active(engine, conversation_id) is None:
        return None
    return handoff.raise_priority(engine, conversation_id)


def respond_to_crisis(dispatcher: CollectingDispatcher, tracker: Tracker) -> List[EventType]:
    """Crisis resources at once, a person offered, the conversation flagged urgent, any form stopped."""
    # The resources go out first, whatever happens to the flag below.
    dispatcher.utter_message(response="utter_crisis_resources")
    try:
        db.flag_conversation(db.get_engine(get_settings().clinic_db_url), tracker.sender_id, "crisis")
    except Exception:  # the visitor still gets the resources; staff see the transcript
        logger.exception("could not store the urgent flag of a conversation")
    try:
        request = _raise_live_request(db.get_engine(get_settings().clinic_db_url), tracker.sender_id)
    except Exception:  # a person is offered instead; a yes says honestly if it cannot be passed on
        logger.exception("could not raise the priority of a live handoff request")
        request = None
    if request is None:
        dispatcher.utter_message(response="utter_crisis_offer_person")
    elif request["status"] == handoff.LIVE:
        logger.info("live handoff request %s made urgent", request["id"])
        dispatcher.utter_message(response="utter_crisis_team_told_live", agent=request["staff_name"] or "the team")
    else:
        logger.info("live handoff request %s made urgent", request["id"])
        dispatcher.utter_message(response="utter_crisis_team_told_waiting")
    events: List[EventType] = [SlotSet("crisis_flagged", True)]
    if tracker.active_loop_name:
        events += [ActiveLoop(None), SlotSet("requested_slot", None)]
    return events


class ActionCrisisResponse(Action):
    def name(self) -> Text:
        return "action_crisis_response"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        return respond_to_crisis(dispatcher, tracker)
