"""The "Tell me more" button of an FAQ answer: the topic's second response, utter_faq_more_<topic>.

The topics are those of settings/faq_titles.yml (one per topic of the contract); each topic's
file data/faq/<topic>.yml holds both the answer and its detail. The action names the response
and Rasa renders it from its own domain.
"""

from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.faq import topic_titles

UNKNOWN = "utter_faq_more_unknown"


def more_response(tracker: Tracker) -> Text:
    """The response for the latest message's topic entity: the topic's detail, or the "sorry"."""
    topic: Optional[Any] = next(tracker.get_latest_entity_values("topic"), None)
    if isinstance(topic, str) and topic in topic_titles():
        return f"utter_faq_more_{topic}"
    return UNKNOWN


class ActionFaqMore(Action):
    def name(self) -> Text:
        return "action_faq_more"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        dispatcher.utter_message(response=more_response(tracker))
        return []
