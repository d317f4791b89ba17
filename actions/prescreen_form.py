"""The pre-screen form: each answer parsed, only what still matters asked."""

from typing import Any, Dict, List, Text

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import FormValidationAction
from rasa_sdk.types import DomainDict

from actions.prescreen_answers import answers_of, rules, validate_answer
from clinic import answer_parsing as parse
from clinic.eligibility import remaining_questions


def _gpe_entities(tracker: Tracker) -> List[Text]:
    return [e.get("value") for e in tracker.latest_message.get("entities", []) if e.get("entity") == "GPE"]


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
        return validate_answer(slot, value, dispatcher, tracker, parse.parse_frequency, "utter_wrong_frequency")

    def validate_phq2_interest(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        return self._frequency("phq2_interest", value, dispatcher, tracker)

    def validate_phq2_mood(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        return self._frequency("phq2_mood", value, dispatcher, tracker)

    def validate_gad2_nervous(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        return self._frequency("gad2_nervous", value, dispatcher, tracker)

    def validate_gad2_worry(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        return self._frequency("gad2_worry", value, dispatcher, tracker)

    def _yes_no(self, slot: Text, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker) -> Dict[Text, Any]:
        return validate_answer(slot, value, dispatcher, tracker, parse.parse_yes_no, "utter_wrong_yes_no")

    def validate_suicidal_thoughts(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        return self._yes_no("suicidal_thoughts", value, dispatcher, tracker)

    def validate_pregnant_or_breastfeeding(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        return self._yes_no("pregnant_or_breastfeeding", value, dispatcher, tracker)

    def validate_psychosis_history(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        return self._yes_no("psychosis_history", value, dispatcher, tracker)

    def validate_cardiovascular(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        return self._yes_no("cardiovascular", value, dispatcher, tracker)

    def validate_substance_misuse(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        return self._yes_no("substance_misuse", value, dispatcher, tracker)

    def validate_support_person(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        return self._yes_no("support_person", value, dispatcher, tracker)
