"""What the visitor API does when a person from the clinic is wanted or holds the chat.

The state lives in the clinic DB (``clinic.rules.handoff``), so every web-app process
sees the same thing and the web app stays stateless. The DB calls run in a
worker thread, so a slow database never stalls the other visitors; all but
the visitor's state on SQLite (see ``full_state``).

- ``visitor_state``: who answers the visitor now, as the browser may see it
  (without the internal request id).
- ``send_to_person``: a message in a chat a person holds. Rasa's paused tracker
  logs it and answers nothing, and the staff page is woken; a crisis message
  the safety layer is sure of (a takeover) or an urgent symptom still gets the
  resources at once (the assistant is resumed for that one message, then paused
  again). Where the layer is unsure (a check-in), the person in the chat asks.
- ``leave_queue``: the visitor cancels a wait.
- ``end_for_new_conversation``: the visitor starts over; a wait is cancelled,
  a live chat is closed and the staff member is told.
"""

import asyncio
import logging
import time
from typing import Any, Callable, Dict, List, Optional, TypeVar

from sqlalchemy.engine import Engine

from clinic.rules import handoff
from clinic.rasa_runtime.rasa_client import RasaUnavailable

logger = logging.getLogger(__name__)

T = TypeVar("T")

PUBLIC_KEYS = ("mode", "agent", "position", "version")
ASSISTANT = {"mode": "assistant", "agent": None, "position": None, "version": 0}

VISITOR_LEFT_TEXT = "The visitor started a new conversation and has left this chat."


async def in_thread(fn: Callable[..., T], *args: Any) -> T:
    return await asyncio.to_thread(fn, *args)


def public(state: Dict[str, Any]) -> Dict[str, Any]:
    return {key: state.get(key) for key in PUBLIC_KEYS}


async def full_state(engine: Engine, conversation_id: Optional[str]) -> Dict[str, Any]:
    """``handoff.visitor_state``, with the request id (for the web app's own use).

    Read twice a turn. On PostgreSQL in a worker thread: a round trip to the server, which may
    be slow or gone. On SQLite on the event loop itself: in WAL mode (clinic.storage.db) a read never
    waits for a writer (tests/test_handoff_state.py), and the read (one indexed statement on a
    kept connection, ~20 us of CPU) costs several times less than the hop to a worker thread and
    back (~0.18 ms of CPU per read, timed in a loop of reads).
    """
    if conversation_id is None:
        return dict(ASSISTANT)
    if engine.dialect.name == "sqlite":
        return handoff.visitor_state(engine, conversation_id)
    return await in_thread(handoff.visitor_state, engine, conversation_id)


async def for_visitor(engine: Engine, state: Dict[str, Any]) -> Dict[str, Any]:
    """A state as the browser sees it: ``public``, and while the visitor waits, ``expected_wait_s``
    when it is known (``handoff.expected_wait_s``: from how long visitors waited lately)."""
    shown = public(state)
    if shown["mode"] == "waiting":
        expected = await in_thread(handoff.expected_wait_s, engine, shown["position"])
        if expected is not None:
            shown["expected_wait_s"] = expected
    return shown


async def visitor_state(engine: Engine, conversation_id: Optional[str]) -> Dict[str, Any]:
    return await for_visitor(engine, await full_state(engine, conversation_id))


class NotWaiting(Exception):
    """The visitor asked to leave a queue they are not in."""

    def __init__(self, detail: str, state: Dict[str, Any]) -> None:
        super().__init__(detail)
        self.detail = detail
        self.state = state


def _stamped(kind: str) -> Dict[str, Any]:
    return {"event": kind, "timestamp": time.time()}


async def send_to_person(
    rasa: Any, engine: Engine, conversation_id: str, request_id: int, text: str, metadata: Dict[str, Any]
) -> List[Dict[str, Any]]:
    """A visitor message while a person holds the chat; the assistant's replies (crisis and urgent only)."""
    parsed = await rasa.parse(text)
    replies: List[Dict[str, Any]] = []
    if needs_the_assistant(parsed):
        await rasa.append_events(conversation_id, [_stamped("resume")])
        try:
            replies = await rasa.send(conversation_id, text, metadata)
        finally:
            # pause again unless the person let go meanwhile (a hand back resumed the assistant for good)
            now = await full_state(engine, conversation_id)
            if now.get("mode") == "person" and now.get("request") == request_id:
                await rasa.append_events(conversation_id, [_stamped("pause")])
        logger.info("crisis message in a live chat: request %s", request_id)
    else:
        await rasa.send(conversation_id, text, metadata)
    await in_thread(handoff.touch, engine, request_id)
    return replies


def needs_the_assistant(parsed: Optional[Dict[str, Any]]) -> bool:
    """The resources go out at once even with a person in the chat: a crisis the safety layer
    is sure of, or an urgent symptom (a check-in, where it is unsure, is left to the person)."""
    intent = ((parsed or {}).get("intent") or {}).get("name")
    safety = (parsed or {}).get("safety") or {}
    if intent == "urgent_medical":
        return True
    return intent == "crisis" and safety.get("response") != "check_in"


async def leave_queue(rasa: Any, engine: Engine, conversation_id: Optional[str]) -> List[Dict[str, Any]]:
    """Cancel the visitor's wait; the events told to the visitor (stored in the transcript)."""
    state = await full_state(engine, conversation_id)
    if state["mode"] == "person":
        raise NotWaiting("A person from the team has already joined this chat.", state)
    if state["mode"] != "waiting" or conversation_id is None:
        raise NotWaiting("You're not waiting for a person right now.", state)
    try:
        await in_thread(handoff.change, engine, state["request"], "cancel", handoff.WAITING)
    except handoff.HandoffError:
        raise NotWaiting(
            "A person from the team has just joined this chat.", await full_state(engine, conversation_id)
        ) from None
    events = handoff.cancelled_events()
    try:
        await rasa.append_events(conversation_id, events)
    except RasaUnavailable as exc:  # the wait is cancelled all the same; the transcript misses the line
        logger.warning("cancelled request %s not written to the transcript: %s", state["request"], type(exc).__name__)
    return events


def visitor_left_events() -> List[Dict[str, Any]]:
    return [
        _stamped("resume"),
        {"event": "bot", "text": VISITOR_LEFT_TEXT, "timestamp": time.time(), "metadata": {"handoff": "visitor_left"}},
    ]


async def end_for_new_conversation(rasa: Any, engine: Engine, conversation_id: Optional[str]) -> None:
    """The visitor starts over: their wait is cancelled, or their live chat closed (the staff member sees why)."""
    for _ in range(3):  # a claim may land between reading the state and changing it
        state = await full_state(engine, conversation_id)
        if state["mode"] == "assistant" or conversation_id is None:
            return
        event, expected = ("cancel", handoff.WAITING) if state["mode"] == "waiting" else ("close", handoff.LIVE)
        try:
            await in_thread(handoff.change, engine, state["request"], event, expected)
        except handoff.HandoffError:
            continue
        if event == "close":
            try:
                await rasa.append_events(conversation_id, visitor_left_events())
            except RasaUnavailable as exc:
                logger.warning("request %s: visitor_left not written: %s", state["request"], type(exc).__name__)
        return
    logger.warning("request for a conversation kept changing during a start over")
