"""FAQ answers, and "did you mean" when the assistant is unsure which question was asked.

    action_answer_faq   the topic the NLU chose (or the visitor picked from "did you mean"),
                        its answer ``utter_faq/<topic>``; a 988 footer when the question is about
                        overdose, death or safety; a pick recorded with the message it answers
    action_did_you_mean low confidence (``nlu_fallback``): the two or three likeliest topics as
                        buttons, plus "Something else"; a plain fallback only when nothing is
                        likely; a person offered after the third fallback in a row

The likely topics come from the NLU (``did_you_mean`` in the parse: the topics above a
confidence set from the calibration, clinic/nlu/linear_intent_classifier.py); their button
titles from settings/faq_titles.yml.
"""

import logging
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, List, Optional, Text, Tuple

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from clinic.storage import db
from clinic.safety.verdict import verdict_of
from clinic.settings import get_settings, load_yaml

logger = logging.getLogger(__name__)

FALLBACK = "nlu_fallback"
SOMETHING_ELSE = "something_else"
MAX_FALLBACKS_BEFORE_PERSON = 2  # the third in a row gets a person offered
# What comes next, for the rules to branch on (data/rules/fallback.yml, safety.yml).
NEXT_STEP = "next_step"
OFFER_PERSON_NEXT = "handoff_offer"


@lru_cache(maxsize=4)
def _titles(path: str, mtime_ns: int) -> Dict[str, str]:
    return {str(k): str(v) for k, v in (load_yaml(Path(path)) or {}).items()}


def topic_titles() -> Dict[str, str]:
    """settings/faq_titles.yml: topic -> the short title of its button (read again when it changes)."""
    path = get_settings().settings_dir / "faq_titles.yml"
    return _titles(str(path), path.stat().st_mtime_ns)


def pick_payload(topic: Text) -> Text:
    return '/faq{"topic": "%s"}' % topic


def selected_topic(parse: Dict[str, Any]) -> Optional[Text]:
    """The FAQ topic of a parse: a picked button's ``topic`` entity, else the response selector's."""
    for entity in parse.get("entities") or []:
        if entity.get("entity") == "topic" and entity.get("value"):
            return str(entity["value"])
    key = (((parse.get("response_selector") or {}).get("faq") or {}).get("response") or {}).get("intent_response_key")
    return key.split("/", 1)[1] if key and "/" in key else None


def is_pick(parse: Dict[str, Any]) -> bool:
    return any(e.get("entity") == "topic" for e in parse.get("entities") or [])


def _offer_before(tracker: Tracker) -> Tuple[Optional[Text], List[Text]]:
    """The message the last "did you mean" answered, and the topics it offered (the buttons)."""
    events = tracker.events
    for index in range(len(events) - 1, -1, -1):
        event = events[index]
        if event.get("event") == "bot" and any(
            str(b.get("payload", "")).startswith('/faq{"topic"') for b in (event.get("data") or {}).get("buttons") or []
        ):
            offered = [str(b["payload"])[len('/faq{"topic": "'):-2] for b in event["data"]["buttons"]
                       if str(b.get("payload", "")).startswith('/faq{"topic"')]
            for earlier in reversed(events[:index]):
                if earlier.get("event") == "user":
                    return (earlier.get("parse_data") or {}).get("message_id") or earlier.get("message_id"), offered
            return None, offered
    return None, []


def record_pick(tracker: Tracker, picked: Text) -> None:
    message_id, offered = _offer_before(tracker)
    try:
        db.record_topic_pick(db.get_engine(get_settings().clinic_db_url), tracker.sender_id, message_id, offered, picked)
    except Exception:  # the visitor is answered all the same
        logger.exception("could not record a topic pick")


def answer_topic(dispatcher: CollectingDispatcher, tracker: Tracker, topic: Text) -> None:
    """A topic's answer, with the safety footer when the message asked for it."""
    if topic not in topic_titles():
        dispatcher.utter_message(response="utter_fallback")
        return
    dispatcher.utter_message(response=f"utter_faq/{topic}")
    if verdict_of(tracker.latest_message).footer:
        dispatcher.utter_message(response="utter_safety_footer")


class ActionAnswerFaq(Action):
    def name(self) -> Text:
        return "action_answer_faq"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        parse = tracker.latest_message or {}
        topic = selected_topic(parse)
        if topic is None:
            dispatcher.utter_message(response="utter_fallback")
            return []
        if is_pick(parse):
            record_pick(tracker, topic)
        answer_topic(dispatcher, tracker, topic)
        return []


def consecutive_fallbacks(tracker: Tracker) -> int:
    """How many of the visitor's messages in a row, this one included, the assistant was unsure of."""
    count = 0
    for event in reversed(tracker.events):
        if event.get("event") != "user":
            continue
        intent = ((event.get("parse_data") or {}).get("intent") or {}).get("name")
        if intent != FALLBACK:
            break
        count += 1
    return count


def likely_topics(parse: Dict[str, Any], titles: Dict[str, str]) -> List[Text]:
    return [c["topic"] for c in parse.get("did_you_mean") or [] if c.get("topic") in titles]


class ActionDidYouMean(Action):
    def name(self) -> Text:
        return "action_did_you_mean"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        parse = tracker.latest_message or {}
        titles = topic_titles()
        topics = likely_topics(parse, titles)
        if topics:
            buttons = [{"title": titles[t], "payload": pick_payload(t)} for t in topics]
            buttons.append({"title": "Something else", "payload": "/deny"})
            dispatcher.utter_message(response="utter_did_you_mean", buttons=buttons)
            return [SlotSet(NEXT_STEP, None)]
        fallbacks = consecutive_fallbacks(tracker)
        if fallbacks > MAX_FALLBACKS_BEFORE_PERSON:  # a rule runs action_human_handoff next
            return [SlotSet(NEXT_STEP, OFFER_PERSON_NEXT)]
        dispatcher.utter_message(response="utter_fallback" if fallbacks <= 1 else "utter_fallback_again")
        return [SlotSet(NEXT_STEP, None)]
