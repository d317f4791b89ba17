"""A visitor asks for a person: the request is recorded for staff, contacts are given."""

import logging
from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from clinic import db
from clinic.settings import get_settings

logger = logging.getLogger(__name__)


class ActionHumanHandoff(Action):
    def name(self) -> Text:
        return "action_human_handoff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        urgent = bool(tracker.get_slot("crisis_flagged"))
        try:
            db.record_handoff_request(
                db.get_engine(get_settings().clinic_db_url),
                tracker.sender_id,
                reason="crisis" if urgent else "visitor_request",
                urgent=urgent,
            )
        except Exception:
            logger.exception("could not record a handoff request")
            dispatcher.utter_message(response="utter_handoff_not_recorded")
            return []
        dispatcher.utter_message(response="utter_handoff_recorded")
        return []
