"""A visitor asks for a person: consent first, then the live queue or, outside staffed hours,
a callback request (actions/callback.py).

    action_human_handoff     asks consent (or says where the visitor already is in the queue)
    action_start_handoff     after a yes: the live queue in hours, else the callback form
    action_handoff_declined  after a no: a kind word, and a form set aside goes on

The queue and its states are clinic/rules/handoff.py; staffed hours clinic/rules/staffing.py.
"""

import logging
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from clinic.storage import db
from clinic.rules import handoff, staffing
from clinic.rules.eligibility import CLINICIAN_REVIEW
from clinic.settings import get_settings

logger = logging.getLogger(__name__)

# Forms set aside (answers kept) when the visitor asks for a person; the callback
# form is not among them: asking for a person there is what the form is doing.
FORMS_SET_ASIDE = ("prescreen_form", "contact_form", "waitlist_form")
VISITOR_REQUEST = "visitor_request"
FALLBACK = "fallback"
CRISIS = "crisis"
LIVE_MODE = "live"
CALLBACK_MODE = "callback"


def clinic_engine() -> Any:
    return db.get_engine(get_settings().clinic_db_url)


def staffed_now() -> bool:
    """Whether a person can be asked for now; a staffing file that cannot be read counts as closed."""
    try:
        return staffing.is_staffed(staffing.load_staffing())
    except Exception:
        logger.exception("could not read the staffing file")
        return False


def callback_when() -> Text:
    """When the team will get in touch: "once the team is back (tomorrow at 9:00 AM EST)"."""
    try:
        opening = staffing.next_opening(staffing.load_staffing())
    except Exception:
        logger.exception("could not read the staffing file")
        opening = None
    if opening is None:
        return "once the team is back"
    return f"once the team is back ({staffing.describe_opening(opening)})"


def queue_place(position: Optional[int]) -> Text:
    return "next" if not position or position <= 1 else f"number {position}"


def offer_reason(tracker: Tracker) -> Text:
    """Why a person is offered: after repeated fallbacks, after a clinician_review referral, or asked for."""
    intent = ((tracker.latest_message or {}).get("intent") or {}).get("name")
    if intent == "nlu_fallback":
        return FALLBACK
    if tracker.latest_action_name == "action_submit_referral" and tracker.get_slot("prescreen_outcome") == CLINICIAN_REVIEW:
        return CLINICIAN_REVIEW
    return VISITOR_REQUEST


def say_where_they_are(dispatcher: CollectingDispatcher, engine: Any, row: Dict[str, Any]) -> None:
    """The visitor already has an active request: a person is with them, or their place in line."""
    if row["status"] == handoff.LIVE:
        dispatcher.utter_message(response="utter_handoff_already_live", agent=row["staff_name"] or "Someone")
    else:
        dispatcher.utter_message(
            response="utter_handoff_already_waiting", queue_place=queue_place(handoff.position(engine, row))
        )


class ActionHumanHandoff(Action):
    """Asks consent before a person is involved; any open pre-screen form is set aside, answers kept."""

    def name(self) -> Text:
        return "action_human_handoff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        reason = offer_reason(tracker)
        form = tracker.active_loop_name if tracker.active_loop_name in FORMS_SET_ASIDE else None
        events: List[EventType] = [ActiveLoop(None), SlotSet("requested_slot", None)] if form else []
        events += [SlotSet("form_set_aside", form), SlotSet("handoff_reason", reason)]

        try:
            engine = clinic_engine()
            row = handoff.active(engine, tracker.sender_id)
            if row is not None:
                say_where_they_are(dispatcher, engine, row)
                return events
        except Exception:  # consent is asked; a yes says honestly if the request cannot be passed on
            logger.exception("could not read the live queue")

        staffed = staffed_now()
        if reason == CLINICIAN_REVIEW and not staffed:
            return events  # the referral already has a clinician call back: no callback request on top
        if reason == FALLBACK:
            dispatcher.utter_message(response="utter_handoff_after_fallbacks")
        if staffed:
            dispatcher.utter_message(response="utter_handoff_consent")
        else:
            dispatcher.utter_message(response="utter_handoff_callback_offer", callback_when=callback_when())
        return events


class ActionStartHandoff(Action):
    """The visitor said yes: the live queue inside staffed hours, else the callback form (a rule)."""

    def name(self) -> Text:
        return "action_start_handoff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        if not staffed_now():  # hours checked again: the answer may come after closing time
            dispatcher.utter_message(response="utter_callback_start")
            return [SlotSet("handoff_mode", CALLBACK_MODE)]

        urgent = bool(tracker.get_slot("crisis_flagged"))
        reason = CRISIS if urgent else (tracker.get_slot("handoff_reason") or VISITOR_REQUEST)
        try:
            engine = clinic_engine()
            row = handoff.request_live(engine, tracker.sender_id, reason, urgent)
            position = handoff.position(engine, row)
        except Exception:
            logger.exception("could not put a conversation in the live queue")
            dispatcher.utter_message(response="utter_handoff_not_recorded")
            return [SlotSet("handoff_mode", None)]
        logger.info("live handoff request %s is %s", row["id"], row["status"])
        if row["status"] == handoff.LIVE:
            say_where_they_are(dispatcher, engine, row)
        else:
            dispatcher.utter_message(response="utter_handoff_queued", queue_place=queue_place(position))
        return [SlotSet("handoff_mode", LIVE_MODE)]


class ActionHandoffDeclined(Action):
    """No person after all: a kind word with the contacts, and the form set aside (if any) goes on."""

    def name(self) -> Text:
        return "action_handoff_declined"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        dispatcher.utter_message(response="utter_handoff_declined")
        form = tracker.get_slot("form_set_aside")
        if form not in FORMS_SET_ASIDE:
            return []
        # the loop back on, without a trigger: the form asks its next question (RulePolicy's loop path)
        return [SlotSet("form_set_aside", None), ActiveLoop(form)]
