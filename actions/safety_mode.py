"""Safety mode: the turns after a crisis reply or a check-in (data/rules/safety.yml sends them here).

The visitor is not handed an FAQ answer while they may still be at risk: "no i just feel like
nothing helps" gets support and a person, whatever intent it was read as. The mode ends when
the visitor clearly moves on: they say they are safe, ask a question the assistant is sure of
with no sign of risk or distress (the verdict's ``settled``), thank it or say goodbye.

What was last asked (slot ``safety_question``) gives a yes or a no its meaning:

    are_you_safe   yes -> glad, a person offered (after a check-in: thanks, and on we go)
                   no  -> 911 first, the conversation flagged, a person offered
    offer_person   yes -> the handoff starts (live queue in staffed hours, else a callback)
                   no  -> 988 kept close, the mode goes on
"""

import logging
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.crisis import ARE_YOU_SAFE, CRISIS_FLAG, flag_urgent
from actions.faq import NEXT_STEP, OFFER_PERSON_NEXT, answer_topic, selected_topic
from actions.handoff import FORMS_SET_ASIDE, staffed_now
from clinic.rules import staffing
from clinic.safety.verdict import verdict_of

logger = logging.getLogger(__name__)

OFFER_PERSON = "offer_person"
# what a rule runs next (data/rules/safety.yml)
START_HANDOFF_NEXT = "handoff_start"
PRESCREEN_NEXT = "prescreen_intro"
MOVING_ON_INTENTS = {"thank": "utter_you_are_welcome", "goodbye": "utter_goodbye"}


def team_back() -> Text:
    try:
        return staffing.describe_opening(staffing.next_opening(staffing.load_staffing()))
    except Exception:
        logger.exception("could not read the staffing file")
        return "their next working day"


def offer_person(dispatcher: CollectingDispatcher, response: Text) -> List[EventType]:
    """A person offered; out of staffed hours, with when the team is back."""
    if staffed_now():
        dispatcher.utter_message(response=response)
    else:
        dispatcher.utter_message(response=f"{response}_team_away", team_back=team_back())
    return [SlotSet("safety_question", OFFER_PERSON)]


def leave_safety_mode() -> List[EventType]:
    return [SlotSet("safety_mode", False), SlotSet("safety_question", None)]


def resume_form(tracker: Tracker) -> List[EventType]:
    """The form a check-in set aside, brought back (it asks its question again)."""
    form = tracker.get_slot("form_set_aside")
    if form not in FORMS_SET_ASIDE:
        return []
    return [SlotSet("form_set_aside", None), ActiveLoop(form)]


class ActionSafetyFollowup(Action):
    def name(self) -> Text:
        return "action_safety_followup"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        return [SlotSet(NEXT_STEP, None)] + self.respond(dispatcher, tracker)

    def respond(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> List[EventType]:
        parse = tracker.latest_message or {}
        intent: Optional[Text] = (parse.get("intent") or {}).get("name")
        question = tracker.get_slot("safety_question")
        took_over = bool(tracker.get_slot("crisis_flagged"))
        verdict = verdict_of(parse)

        if intent == "safe_now" or (question == ARE_YOU_SAFE and intent == "affirm"):
            if not took_over:  # a check-in answered: thanks, and on with what the visitor was doing
                dispatcher.utter_message(response="utter_safety_thanks")
                return leave_safety_mode() + resume_form(tracker)
            return offer_person(dispatcher, "utter_safety_glad")
        if question == ARE_YOU_SAFE and intent == "deny":
            dispatcher.utter_message(response="utter_safety_not_safe")
            flag_urgent(tracker.sender_id, CRISIS_FLAG)
            return [SlotSet("crisis_flagged", True), SlotSet("form_set_aside", None)] + offer_person(
                dispatcher, "utter_safety_offer_person"
            )
        if question == OFFER_PERSON and intent == "affirm":  # a rule runs action_start_handoff next
            return [SlotSet("safety_question", None), SlotSet(NEXT_STEP, START_HANDOFF_NEXT)]
        if question == OFFER_PERSON and intent == "deny":
            dispatcher.utter_message(response="utter_crisis_declined")
            return [SlotSet("safety_question", None)]
        if intent == "start_prescreen":  # moving on: a rule asks the pre-screen's consent next, as usual
            return leave_safety_mode() + [SlotSet(NEXT_STEP, PRESCREEN_NEXT)]
        if intent == "human_handoff":  # a person, as usual (consent first); the conversation stays flagged
            return leave_safety_mode() + [SlotSet(NEXT_STEP, OFFER_PERSON_NEXT)]
        if intent in MOVING_ON_INTENTS and verdict.settled:
            dispatcher.utter_message(response=MOVING_ON_INTENTS[intent])
            dispatcher.utter_message(response="utter_safety_moving_on")
            return leave_safety_mode()
        topic = selected_topic(parse) if intent == "faq" else None
        if topic and verdict.settled:
            answer_topic(dispatcher, tracker, topic)
            dispatcher.utter_message(response="utter_safety_moving_on")
            return leave_safety_mode() + resume_form(tracker)
        return support(dispatcher, tracker)


def support(dispatcher: CollectingDispatcher, tracker: Tracker) -> List[EventType]:
    """Anything else while the visitor may be at risk (a check-in's worth of risk included, as
    the resources were just given): support and a person, never an FAQ."""
    if tracker.get_slot("crisis_flagged"):
        flag_urgent(tracker.sender_id, CRISIS_FLAG)
    return offer_person(dispatcher, "utter_safety_support")
