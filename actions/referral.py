"""Contact details and the referral (or the waitlist), stored only with consent."""

import asyncio
import logging
import time
from typing import Any, Callable, Dict, List, Optional, Set, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import FormValidationAction
from rasa_sdk.types import DomainDict

from actions.prescreen_answers import answers_of, reset_events, rules, understood, validate_answer
from clinic import answer_parsing as parse
from clinic import db, eligibility, notifier, referrals
from clinic.settings import get_settings

logger = logging.getLogger(__name__)

SKIP_WORDS = {"skip", "no", "none", "no thanks", "n/a", "na", "rather not", "prefer not to say", "no phone"}
PHONE_SKIPPED = "skipped"
# Notices being sent in the background; the notifier worker retries any that fail.
_pending_notices: Set[asyncio.Future] = set()


def parse_name(text: Text) -> Optional[Text]:
    """A name to address the visitor by (also the callback request's), or None."""
    text = " ".join(text.split())
    if not 1 <= len(text) <= 100 or not any(ch.isalpha() for ch in text) or "@" in text:
        return None
    return text


def parse_contact_time(text: Text) -> Optional[Text]:
    """When to reach the visitor, in their words (also the callback request's), or None."""
    text = " ".join(text.split())
    return text if 1 <= len(text) <= 100 else None


def _consent(text: Text) -> Optional[Text]:
    answer = parse.parse_yes_no(text)
    return answer if answer in ("yes", "no") else None


class ValidateContactForm(FormValidationAction):
    def name(self) -> Text:
        return "validate_contact_form"

    def validate_contact_name(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        return validate_answer("contact_name", value, dispatcher, tracker, parse_name, "utter_wrong_contact_name")

    def validate_contact_email(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        return validate_answer("contact_email", value, dispatcher, tracker, parse.parse_email, "utter_wrong_contact_email")

    def validate_contact_phone(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        if str(value or "").strip().lower().rstrip(".!") in SKIP_WORDS:
            return understood("contact_phone", PHONE_SKIPPED)
        return validate_answer("contact_phone", value, dispatcher, tracker, parse.parse_phone, "utter_wrong_contact_phone")

    def validate_contact_time(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        return validate_answer("contact_time", value, dispatcher, tracker, parse_contact_time, "utter_wrong_contact_time")

    def validate_contact_consent(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        return validate_answer("contact_consent", value, dispatcher, tracker, _consent, "utter_wrong_consent")


class ValidateWaitlistForm(FormValidationAction):
    def name(self) -> Text:
        return "validate_waitlist_form"

    def validate_waitlist_email(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        return validate_answer("waitlist_email", value, dispatcher, tracker, parse.parse_email, "utter_wrong_waitlist_email")

    def validate_waitlist_consent(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        return validate_answer("waitlist_consent", value, dispatcher, tracker, _consent, "utter_wrong_consent")


# A referral (or waitlist entry) that could not be stored, the database being locked or full, is
# tried again in the background until it is, for RETRY_FOR_S at most: the visitor, told to
# contact the clinic meanwhile, is not lost, and create_referral is idempotent per conversation.
RETRY_EVERY_S = 5.0
RETRY_FOR_S = 60 * 60.0
_retrying: Set["asyncio.Task[None]"] = set()


async def _in_thread(store: Callable[[], Any]) -> Any:
    """A database write off the event loop: a locked SQLite file waits out its busy timeout."""
    return await asyncio.get_running_loop().run_in_executor(None, store)


async def _store_later(store: Callable[[], Any], then: Optional[Callable[[Any], None]]) -> None:
    deadline = time.monotonic() + RETRY_FOR_S
    while time.monotonic() < deadline:
        await asyncio.sleep(RETRY_EVERY_S)
        try:
            result = await _in_thread(store)
        except ValueError:
            logger.exception("cannot store: not to be tried again")
            return
        except Exception as exc:
            logger.warning("still cannot store (%s): trying again", type(exc).__name__)
            continue
        logger.info("stored on a later try")
        if then is not None:
            then(result)
        return
    logger.error("gave up storing after %.0f s", RETRY_FOR_S)


def _keep_trying(store: Callable[[], Any], then: Optional[Callable[[Any], None]] = None) -> None:
    task = asyncio.get_running_loop().create_task(_store_later(store, then))
    _retrying.add(task)
    task.add_done_callback(_retrying.discard)


def _notify_in_background(reference: Text) -> None:
    settings = get_settings()
    engine = db.get_engine(settings.clinic_db_url)
    future = asyncio.get_running_loop().run_in_executor(None, notifier.notify_referral, engine, settings, reference)
    _pending_notices.add(future)
    future.add_done_callback(_pending_notices.discard)


class ActionSubmitReferral(Action):
    def name(self) -> Text:
        return "action_submit_referral"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        if tracker.get_slot("contact_consent") != "yes":
            dispatcher.utter_message(response="utter_referral_no_consent")
            return reset_events()
        answers = answers_of(tracker)
        assessment = eligibility.assess(answers, rules())
        phone = tracker.get_slot("contact_phone")
        contact = {
            "name": tracker.get_slot("contact_name"),
            "email": tracker.get_slot("contact_email"),
            "phone": None if phone == PHONE_SKIPPED else phone,
            "preferred_time": tracker.get_slot("contact_time"),
        }
        urgent = bool(tracker.get_slot("crisis_flagged")) or answers.get("suicidal_thoughts") == "unsure"
        settings = get_settings()

        def store() -> Text:
            return referrals.create_referral(
                db.get_engine(settings.clinic_db_url),
                settings.encryption_key,
                tracker.sender_id,
                assessment.outcome,
                assessment.reasons,
                answers,
                contact,
                urgent=urgent,
            )

        try:
            reference = await _in_thread(store)
        except Exception:
            logger.exception("could not store a referral")  # never its contents
            _keep_trying(store, _notify_in_background)
            dispatcher.utter_message(response="utter_referral_not_stored")
            return []
        _notify_in_background(reference)
        dispatcher.utter_message(
            response="utter_referral_done", referral_reference=reference, contact_name=contact["name"]
        )
        return [SlotSet("referral_reference", reference)] + reset_events()


class ActionJoinWaitlist(Action):
    def name(self) -> Text:
        return "action_join_waitlist"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        if tracker.get_slot("waitlist_consent") != "yes":
            dispatcher.utter_message(response="utter_waitlist_no_consent")
            return reset_events()
        settings = get_settings()
        state, email = tracker.get_slot("state"), tracker.get_slot("waitlist_email")

        def store() -> Any:
            return referrals.join_waitlist(
                db.get_engine(settings.clinic_db_url), settings.encryption_key, tracker.sender_id, state, {"email": email}
            )

        try:
            await _in_thread(store)
        except Exception:
            logger.exception("could not store a waitlist entry")
            _keep_trying(store)
            dispatcher.utter_message(response="utter_referral_not_stored")
            return []
        dispatcher.utter_message(response="utter_waitlist_joined")
        return reset_events()
