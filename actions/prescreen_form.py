"""The pre-screen form: each answer parsed, only what still matters asked, with its progress line."""

from typing import Any, Dict, List, Text

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import FormValidationAction
from rasa_sdk.types import DomainDict

from actions.prescreen_answers import answers_of, flag_for_staff, is_being_answered, rules, validate_answer
from clinic.rules import answer_parsing as parse
from clinic.rules.eligibility import progress, remaining_questions

PROGRESS = "prescreen_progress"


def progress_line(number: int, total: int) -> Text:
    """What each question shows first: "Question 4 of 16"."""
    return f"Question {number} of {total}"


def _gpe_entities(tracker: Tracker) -> List[Text]:
    return [e.get("value") for e in tracker.latest_message.get("entities", []) if e.get("entity") == "GPE"]


def _numbered(text: Text) -> Any:
    return parse.parse_frequency(text, numbered_options=True)  # the buttons show each option's number


class ValidatePrescreenForm(FormValidationAction):
    def name(self) -> Text:
        return "validate_prescreen_form"

    async def required_slots(
        self,
        domain_slots: List[Text],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> List[Text]:
        return remaining_questions(answers_of(tracker), rules())

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        """The answers validated, then the progress line of the question asked next, when it changed.

        Only when it changed: a message that fills no slot (crisis, "stop", a person asked for) must
        set none, so that Rasa rejects the form and the rule for that message takes over.
        """
        events = await super().run(dispatcher, tracker, domain)
        number, total = progress(answers_of(tracker), rules())  # the tracker holds the validated answers now
        line = progress_line(number, total) if number else None
        if line is None or line == tracker.get_slot(PROGRESS):
            return events
        return events + [SlotSet(PROGRESS, line)]

    def validate_age(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        return validate_answer("age", value, dispatcher, tracker, parse.parse_age, "utter_wrong_age")

    def validate_state(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        entities = _gpe_entities(tracker)
        return validate_answer(
            "state", value, dispatcher, tracker, lambda t: parse.parse_state(t, entities), "utter_wrong_state"
        )

    def validate_concern(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        return validate_answer("concern", value, dispatcher, tracker, parse.parse_concern, "utter_wrong_concern")

    def validate_treatments_tried(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        return validate_answer(
            "treatments_tried", value, dispatcher, tracker, parse.parse_treatments, "utter_wrong_treatments_tried"
        )

    def _frequency(self, slot: Text, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker) -> Dict[Text, Any]:
        return validate_answer(slot, value, dispatcher, tracker, _numbered, "utter_wrong_frequency")

    def validate_phq2_interest(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        return self._frequency("phq2_interest", value, dispatcher, tracker)

    def validate_phq2_mood(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        return self._frequency("phq2_mood", value, dispatcher, tracker)

    def validate_gad2_nervous(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        return self._frequency("gad2_nervous", value, dispatcher, tracker)

    def validate_gad2_worry(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        return self._frequency("gad2_worry", value, dispatcher, tracker)

    def _suicide(self, slot: Text, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker) -> Dict[Text, Any]:
        """Parsed strictly; never another answer (an FAQ...) in the question's place."""
        return validate_answer(
            slot, value, dispatcher, tracker, lambda t: parse.parse_suicide_answer(t, slot),
            "utter_wrong_suicide_answer", interruptions=False,
        )

    def validate_suicidal_thoughts(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        result = self._suicide("suicidal_thoughts", value, dispatcher, tracker)
        if result.get("suicidal_thoughts") in ("yes", "unsure") and is_being_answered(tracker, "suicidal_thoughts"):
            flag_for_staff(tracker)
            dispatcher.utter_message(response="utter_prescreen_thoughts_follow_up")
        return result

    def validate_suicide_plan(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        return self._suicide("suicide_plan", value, dispatcher, tracker)

    def validate_suicide_attempt(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        result = self._suicide("suicide_attempt", value, dispatcher, tracker)
        passive = result.get("suicide_attempt") == "no" and tracker.get_slot("suicide_plan") == "no"
        if passive and is_being_answered(tracker, "suicide_attempt"):
            dispatcher.utter_message(response="utter_prescreen_passive_thoughts")
        return result

    def _yes_no(self, slot: Text, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker) -> Dict[Text, Any]:
        return validate_answer(slot, value, dispatcher, tracker, parse.parse_yes_no, "utter_wrong_yes_no")

    def validate_pregnant_or_breastfeeding(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        return self._yes_no("pregnant_or_breastfeeding", value, dispatcher, tracker)

    def validate_psychosis_history(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        return self._yes_no("psychosis_history", value, dispatcher, tracker)

    def validate_cardiovascular(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        return self._yes_no("cardiovascular", value, dispatcher, tracker)

    def validate_medications(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        return validate_answer("medications", value, dispatcher, tracker, parse.parse_medications, "utter_wrong_yes_no")

    def validate_medical_conditions(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        return validate_answer("medical_conditions", value, dispatcher, tracker, parse.parse_conditions, "utter_wrong_yes_no")

    def validate_substance_use(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        return validate_answer("substance_use", value, dispatcher, tracker, parse.parse_substance_use, "utter_wrong_substance_use")

    def validate_support_person(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        return self._yes_no("support_person", value, dispatcher, tracker)
