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
from clinic.rules import answer_parsing as parse
from clinic.storage import db, referral_spool, referrals, tracker_reader
from clinic.rules import eligibility
from clinic.mail import notifier
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
# written to the spool (clinic.storage.referral_spool: a file under var/, encrypted) and stored from there:
# at action-server start, then every RETRY_EVERY_S while entries wait. The visitor, told to contact
# the clinic meanwhile, is not lost, even if the action server restarts; storing is idempotent per
# conversation. Only if the spool cannot be written either (the disk full) is it tried again in
# memory, for RETRY_FOR_S at most.
RETRY_EVERY_S = 5.0
RETRY_FOR_S = 60 * 60.0
_retrying: Set["asyncio.Task[None]"] = set()
_drainer: Optional["asyncio.Task[None]"] = None
_spooled = 0  # entries this process wrote: a drainer that found none waiting looks again if it moved


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


async def _store_later_durably(
    kind: Text, seal: Callable[[], Dict[Text, Any]], store: Callable[[], Any], then: Optional[Callable[[Any], None]] = None
) -> None:
    """What could not be stored goes to the spool, drained in the background; to memory if it cannot."""
    global _spooled
    settings = get_settings()
    try:
        await _in_thread(
            lambda: referral_spool.put(referral_spool.spool_dir(settings.var_dir), settings.encryption_key, kind, seal())
        )
    except Exception as exc:
        logger.error("could not spool a %s either (%s): retrying in memory only, lost if this process stops",
                     kind, type(exc).__name__)
        _keep_trying(store, then)
        return
    _spooled += 1
    _drain_soon(wait_first=True)


def _drain_soon(wait_first: bool = False) -> None:
    """Starts the spool's drainer on this loop unless it runs already."""
    global _drainer
    loop = asyncio.get_running_loop()
    if _drainer is not None and not _drainer.done() and _drainer.get_loop() is loop:
        return
    _drainer = loop.create_task(_drain_spool(wait_first))


async def _drain_spool(wait_first: bool) -> None:
    """Stores what waits in the spool, every RETRY_EVERY_S until none waits; sends the notices."""
    settings = get_settings()
    directory = referral_spool.spool_dir(settings.var_dir)

    def drain() -> referral_spool.DrainResult:
        if not referral_spool.counts(directory)[0]:  # none waits: the database is not even opened
            return referral_spool.DrainResult()
        return referral_spool.drain(directory, db.get_engine(settings.clinic_db_url), settings.encryption_key)

    if wait_first:
        await asyncio.sleep(RETRY_EVERY_S)
    while True:
        seen = _spooled
        try:
            result = await _in_thread(drain)
        except Exception as exc:  # the spool folder itself (permissions, I/O): try again later
            logger.error("could not drain the referral spool (%s)", type(exc).__name__)
        else:
            for kind, reference in result.stored:
                if kind == "referral":
                    _notify_in_background(reference)
            if not result.waiting and _spooled == seen:
                return
        await asyncio.sleep(RETRY_EVERY_S)


def _drain_at_server_start() -> None:
    """Entries a stopped action server left in the spool are stored as soon as it runs again.

    rasa-sdk imports this package while it builds its Sanic app ("rasa_sdk"), before the
    server starts; elsewhere (tests, a shell) there is no such app and nothing is attached.
    """
    from sanic import Sanic

    try:
        app = Sanic.get_app("rasa_sdk")
    except Exception:  # SanicException: no action server in this process
        return

    async def start(_app: Any, _loop: Any) -> None:
        _drain_soon()

    app.register_listener(start, "after_server_start")


_drain_at_server_start()


def _notify_in_background(reference: Text) -> None:
    settings = get_settings()
    engine = db.get_engine(settings.clinic_db_url)
    future = asyncio.get_running_loop().run_in_executor(None, notifier.notify_referral, engine, settings, reference)
    _pending_notices.add(future)
    future.add_done_callback(_pending_notices.discard)


def _same_event(posted: Any, stored: Dict[Text, Any]) -> bool:
    if not isinstance(posted, dict) or posted.get("event") != stored.get("event"):
        return False
    if stored.get("event") == "slot" and (posted.get("name"), posted.get("value")) != (stored.get("name"), stored.get("value")):
        return False
    a, b = posted.get("timestamp"), stored.get("timestamp")
    return a == b or (isinstance(a, (int, float)) and isinstance(b, (int, float)) and abs(a - b) < 1e-3)


def stored_conversation(tracker: Tracker) -> Optional[Tracker]:
    """The conversation as the tracker store holds it (the turns before this one), with this
    turn's answer to the contact form's last question (consent, which Rasa stores when the turn
    ends); None when the conversation posted is not the stored one plus this turn. The referral
    is made from it, never from slots posted in the call (SECURITY.md)."""
    settings = get_settings()
    stored = tracker_reader.session_events(tracker_reader.shared_reader(settings.tracker_db_url), tracker.sender_id)
    posted = list(tracker.events or [])
    if not stored or len(posted) < len(stored) or not all(map(_same_event, posted, stored)):
        return None
    slots = tracker_reader.slots_after(stored)
    this_turn = tracker_reader.slots_after(posted[len(stored):])
    if tracker_reader.active_loop_after(stored) == "contact_form" and "contact_consent" in this_turn:
        slots["contact_consent"] = this_turn["contact_consent"]
    return Tracker(tracker.sender_id, slots, tracker.latest_message, posted, False, None, {}, None)


class ActionSubmitReferral(Action):
    def name(self) -> Text:
        return "action_submit_referral"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[EventType]:
        if tracker.get_slot("contact_consent") != "yes":
            dispatcher.utter_message(response="utter_referral_no_consent")
            return reset_events()
        posted_sender = tracker.sender_id
        try:
            tracker = await _in_thread(lambda: stored_conversation(tracker))
        except Exception as exc:  # the tracker store unreadable (down, another key): no referral made up
            logger.error("could not read the stored conversation (%s): no referral", type(exc).__name__)
            tracker = None
        answers = answers_of(tracker) if tracker is not None else {}
        assessment = eligibility.assess(answers, rules())
        if tracker is None or tracker.get_slot("contact_consent") != "yes" or \
                assessment.outcome not in (eligibility.ELIGIBLE, eligibility.CLINICIAN_REVIEW):
            # a call whose conversation is not the one stored (made up by another process), or whose
            # stored answers lead to no referral: nothing is stored, nobody is notified
            logger.warning("a referral call that the stored conversation does not bear out: nothing stored "
                           "(conversation %s)", posted_sender[:8])
            dispatcher.utter_message(response="utter_referral_not_stored")
            return []
        phone = tracker.get_slot("contact_phone")
        contact = {
            "name": tracker.get_slot("contact_name"),
            "email": tracker.get_slot("contact_email"),
            "phone": None if phone == PHONE_SKIPPED else phone,
            "preferred_time": tracker.get_slot("contact_time"),
        }
        urgent = bool(tracker.get_slot("crisis_flagged")) or assessment.urgent
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

        def seal() -> Dict[Text, Any]:
            return referrals.seal_referral(
                settings.encryption_key, tracker.sender_id, assessment.outcome, assessment.reasons, answers, contact,
                urgent=urgent,
            )

        try:
            reference = await _in_thread(store)
        except Exception:
            logger.exception("could not store a referral")  # never its contents
            await _store_later_durably("referral", seal, store, _notify_in_background)
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

        def seal() -> Dict[Text, Any]:
            return referrals.seal_waitlist_entry(settings.encryption_key, tracker.sender_id, state, {"email": email})

        try:
            await _in_thread(store)
        except Exception:
            logger.exception("could not store a waitlist entry")
            await _store_later_durably("waitlist", seal, store)
            dispatcher.utter_message(response="utter_referral_not_stored")
            return []
        dispatcher.utter_message(response="utter_waitlist_joined")
        return reset_events()
