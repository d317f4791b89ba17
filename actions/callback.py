"""Outside staffed hours: a callback request (name, phone or email, best time), stored encrypted."""

import logging
from typing import Any, Callable, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import FormValidationAction
from rasa_sdk.types import DomainDict

from actions.handoff import CRISIS, VISITOR_REQUEST, callback_when, clinic_engine
from actions.prescreen_answers import answer_interruption
from actions.referral import parse_contact_time, parse_name
from clinic.rules import answer_parsing as parse
from clinic.storage import crypto
from clinic.rules import handoff
from clinic.settings import get_settings

logger = logging.getLogger(__name__)

CALLBACK_SLOTS = ("callback_name", "callback_contact", "callback_time")


def parse_contact(text: Text) -> Optional[Text]:
    """An email address, or a US phone number ("+1 555-010-4477")."""
    return parse.parse_email(text) or parse.parse_phone(text)


def forget_events() -> List[EventType]:
    return [SlotSet(slot, None) for slot in CALLBACK_SLOTS]


def _validate(
    slot: Text,
    value: Any,
    dispatcher: CollectingDispatcher,
    tracker: Tracker,
    parser: Callable[[Text], Optional[Text]],
    questions_first: bool,
) -> Dict[Text, Any]:
    """The parsed answer; or a question asked instead (an FAQ...) answered, and the slot asked again;
    or a clear re-ask. A name or a time could be any text, so a question is looked for first there."""
    if questions_first and answer_interruption(dispatcher, tracker):
        return {slot: None}
    parsed = parser(str(value or ""))
    if parsed is not None:
        return {slot: parsed}
    if not questions_first and answer_interruption(dispatcher, tracker):
        return {slot: None}
    dispatcher.utter_message(response=f"utter_wrong_{slot}")
    return {slot: None}


class ValidateCallbackForm(FormValidationAction):
    def name(self) -> Text:
        return "validate_callback_form"

    def validate_callback_name(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        return _validate("callback_name", value, dispatcher, tracker, parse_name, questions_first=True)

    def validate_callback_contact(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        return _validate("callback_contact", value, dispatcher, tracker, parse_contact, questions_first=False)

    def validate_callback_time(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        return _validate("callback_time", value, dispatcher, tracker, parse_contact_time, questions_first=True)


class ActionSubmitCallback(Action):
    """Stores the callback request (contact details encrypted), says what happens next, forgets the slots."""

    def name(self) -> Text:
        return "action_submit_callback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        contact_value = str(tracker.get_slot("callback_contact") or "")
        by_email = "@" in contact_value
        contact = {
            "name": tracker.get_slot("callback_name"),
            "email": contact_value if by_email else None,
            "phone": None if by_email else contact_value,
            "preferred_time": tracker.get_slot("callback_time"),
        }
        urgent = bool(tracker.get_slot("crisis_flagged"))
        reason = CRISIS if urgent else (tracker.get_slot("handoff_reason") or VISITOR_REQUEST)
        try:
            token = crypto.encrypt_json(get_settings().encryption_key, contact)
            request_id = handoff.request_callback(clinic_engine(), tracker.sender_id, reason, urgent, token)
        except Exception:
            logger.exception("could not store a callback request")  # never its contents
            dispatcher.utter_message(response="utter_handoff_not_recorded")
            return forget_events()
        logger.info("callback request %s stored", request_id)
        dispatcher.utter_message(
            response="utter_callback_recorded",
            callback_name=contact["name"],
            contact_way=f"email you at {contact_value}" if by_email else f"call you at {contact_value}",
            callback_when=callback_when(),
            callback_time=contact["preferred_time"],
        )
        return forget_events()


class ActionCallbackStop(Action):
    """The visitor stops the callback request: the form ends and its answers are forgotten."""

    def name(self) -> Text:
        return "action_callback_stop"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        dispatcher.utter_message(response="utter_callback_stopped")
        return [ActiveLoop(None), SlotSet("requested_slot", None)] + forget_events()
