"""The pre-screen's outcome, said well; and stopping the pre-screen."""

from typing import Any, Dict, List, Sequence, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.crisis import respond_to_crisis
from actions.prescreen_answers import answers_of, reset_events, rules
from clinic.rules import eligibility
from clinic.rules.us_states import STATE_NAMES

# How each reason is put to the visitor: plainly, without judgement.
REASON_WORDS = {
    eligibility.UNDER_MIN_AGE: "the treatment is only for adults of {min_age} and over",
    eligibility.SUICIDAL_THOUGHTS: "what you shared about thoughts of ending your life",
    "pregnant_or_breastfeeding": "pregnancy or breastfeeding",
    "psychosis_history": "a history of psychosis, schizophrenia or mania",
    "cardiovascular": "blood pressure, heart or blood vessel conditions",
    "medications": "medicines that can change how ketamine affects you",
    "medical_conditions": "health conditions that need a clinician's look",
    "substance_use_current": "current alcohol or drug problems",
    "substance_use_past": "alcohol or drug problems in the past",
    "no_support_person": "having a sober adult nearby during at-home sessions",
    "no_prior_treatment": "not having tried other treatments yet",
    "screens_below_cutoff": "your answers about mood and worry",
    "unsure_answer": "health questions you weren't sure about",
}
# Where else to turn, after the outcome, when a reason calls for it.
SUPPORT_LINES = {
    "pregnant_or_breastfeeding": "utter_prescreen_perinatal_support",
    "substance_use_current": "utter_prescreen_substance_support",
}


def describe_reasons(reasons: Sequence[Text], min_age: int) -> Text:
    words = [REASON_WORDS[r].format(min_age=min_age) for r in reasons if r in REASON_WORDS]
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


class ActionPrescreenOutcome(Action):
    def name(self) -> Text:
        return "action_prescreen_outcome"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        answers = answers_of(tracker)
        clinic_rules = rules()
        assessment = eligibility.assess(answers, clinic_rules)
        outcome = assessment.outcome
        events: List[EventType] = [SlotSet("prescreen_outcome", outcome)]
        reasons = describe_reasons(assessment.reasons, clinic_rules.min_age)

        if outcome == eligibility.CRISIS:
            # A plan, an intention or a recent attempt: a person now, and no at-home referral. The
            # answers stay, so that starting the pre-screen again ends here again.
            dispatcher.utter_message(response="utter_prescreen_safety_first")
            return events + respond_to_crisis(dispatcher, tracker)
        if outcome == eligibility.ELIGIBLE:
            dispatcher.utter_message(response="utter_prescreen_eligible")
        elif outcome == eligibility.CLINICIAN_REVIEW:
            dispatcher.utter_message(response="utter_prescreen_clinician_review", reasons=reasons)
            if assessment.urgent:
                dispatcher.utter_message(response="utter_prescreen_urgent_review")
        elif outcome == eligibility.OUT_OF_AREA:
            state = str(answers.get("state") or "")
            dispatcher.utter_message(
                response="utter_prescreen_out_of_area", state_name=STATE_NAMES.get(state, state)
            )
        else:
            dispatcher.utter_message(response="utter_prescreen_not_eligible", reasons=reasons)
            events += reset_events()
        for reason in assessment.reasons:
            if reason in SUPPORT_LINES:
                dispatcher.utter_message(response=SUPPORT_LINES[reason])
        return events


class ActionPrescreenStop(Action):
    """The visitor stops: the form ends and its answers are forgotten (the transcript stays)."""

    def name(self) -> Text:
        return "action_prescreen_stop"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        dispatcher.utter_message(response="utter_prescreen_stopped")
        return [ActiveLoop(None), SlotSet("requested_slot", None), SlotSet("prescreen_outcome", None)] + reset_events()
