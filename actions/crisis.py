"""The crisis response: resources at once, any form stopped, urgent flag, a person offered."""

import logging
from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from clinic import db
from clinic.settings import get_settings

logger = logging.getLogger(__name__)


def respond_to_crisis(dispatcher: CollectingDispatcher, tracker: Tracker) -> List[EventType]:
    """Crisis resources at once, a person offered, the conversation flagged urgent, any form stopped."""
    # The resources go out first, whatever happens to the flag below.
    dispatcher.utter_message(response="utter_crisis_resources")
    dispatcher.utter_message(response="utter_crisis_offer_person")
    try:
        db.flag_conversation(db.get_engine(get_settings().clinic_db_url), tracker.sender_id, "crisis")
    except Exception:  # the visitor still gets the resources; staff see the transcript
        logger.exception("could not store the urgent flag of a conversation")
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
