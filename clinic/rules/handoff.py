"""Live handoff: a person from the clinic takes over a conversation.

One row of ``handoff_requests`` (kind ``live``) per request, and this state
machine over its ``status``::

    waiting --claim--> live --hand_back--> handed_back
       |      <--release--     \\--close-------> closed
       |--cancel (the visitor leaves the queue)--> cancelled
       \\--close (staff close a request nobody will take)--> closed

``waiting`` and ``live`` are active: at most one active request per
conversation. Every change and every message of a live chat bumps the row's
``version``, which is what the visitor's long poll waits on (the row is in the
clinic DB, so any web app process sees it).

What the assistant's tracker gets at each step (Rasa's ``ConversationPaused``
while a person holds the chat, ``ConversationResumed`` when they let go, staff
messages as bot events with the staff member in ``metadata.staff``) is built
by the ``*_events`` functions below and sent by ``clinic.rasa_runtime.rasa_client``; the
texts the visitor sees at those steps are here too.

Outside staffed hours (``clinic.rules.staffing``) no live request is made: the
visitor leaves a callback request (kind ``callback``, status ``new ->
in_progress -> closed``, name and contact stored encrypted).
"""

import datetime as dt
import time
from typing import Any, Dict, List, Optional

from sqlalchemy import bindparam, insert, or_, select, update
from sqlalchemy.engine import Engine

from clinic.storage.db import driver_cursor, driver_sql, handoff_requests, utcnow

LIVE_KIND = "live"
CALLBACK_KIND = "callback"

WAITING = "waiting"
LIVE = "live"
HANDED_BACK = "handed_back"
CLOSED = "closed"
CANCELLED = "cancelled"
ACTIVE = (WAITING, LIVE)
STATUS_LABELS = {
    WAITING: "Waiting",
    LIVE: "Live",
    HANDED_BACK: "Handed back",
    CLOSED: "Closed",
    CANCELLED: "Cancelled by the visitor",
}

# status -> {event: next status}; anything else is refused.
TRANSITIONS: Dict[str, Dict[str, str]] = {
    WAITING: {"claim": LIVE, "cancel": CANCELLED, "close": CLOSED},
    LIVE: {"hand_back": HANDED_BACK, "close": CLOSED, "release": WAITING},
    HANDED_BACK: {},
    CLOSED: {},
    CANCELLED: {},
}

# What the visitor sees at each step (bot events in the transcript).
JOINED_TEXT = "{name} from the {clinic} team has joined the chat."
HANDED_BACK_TEXT = (
    "{name} has handed the chat back to me, the clinic's automated assistant. "
    "Ask me anything about at-home ketamine therapy, or ask for a person again at any time."
)
CLOSED_TEXT = (
    "{name} has closed this chat. I'm the clinic's automated assistant and I'm still here "
    "if you have other questions. If you need help right now, call or text 988."
)
# the person steps away: back in the queue, and the assistant answers meanwhile
RELEASED_TEXT = (
    "{name} had to step away, so you're back in the queue: the next person free will join you here. "
    "Meanwhile I can still answer questions."
)
# staff close a request still waiting (nobody can take it now)
CLOSED_WAITING_TEXT = (
    "Sorry, nobody from the team can join this chat right now. You can reach them at {phone} or {email} "
    "({hours}), or ask me for a callback. If you need help right now, call or text 988, or call 911 in an emergency."
)
CANCELLED_TEXT = (
    "You've left the queue. I'm still here if you have questions, and you can ask for a person again at any time."
)


class HandoffError(ValueError):
    """A change the state machine refuses, or a row that changed meanwhile."""


def next_status(status: str, event: str) -> str:
    """The status after ``event``; HandoffError when the state machine does not allow it."""
    try:
        return TRANSITIONS[status][event]
    except KeyError:
        raise HandoffError(f"a {STATUS_LABELS.get(status, status)} chat cannot {event.replace('_', ' ')}") from None


# --- the clinic DB ------------------------------------------------------------


def _row(conn: Any, query: Any, params: Optional[Dict[str, Any]] = None) -> Optional[Dict[str, Any]]:
    row = conn.execute(query, params or {}).first()
    return dict(row._mapping) if row is not None else None


# Reads built once with the conversation as a bound parameter (the statement itself is then
# SQLAlchemy's cache key at once: building it anew each read cost 0.25 ms of a 0.35 ms read on
# SQLite); the status as "= OR =" (an IN is expanded again at each read).
_ACTIVE = (
    select(handoff_requests)
    .where(
        handoff_requests.c.conversation_id == bindparam("conversation_id"),
        handoff_requests.c.kind == LIVE_KIND,
        or_(*(handoff_requests.c.status == status for status in ACTIVE)),
    )
    .order_by(handoff_requests.c.id.desc())
    .limit(1)
)
_QUEUE = (
    select(handoff_requests)
    .where(handoff_requests.c.kind == LIVE_KIND, handoff_requests.c.status == WAITING)
    .order_by(handoff_requests.c.urgent.desc(), handoff_requests.c.created_at, handoff_requests.c.id)
)


def active(engine: Engine, conversation_id: str) -> Optional[Dict[str, Any]]:
    """The conversation's waiting or live request, if any."""
    with engine.connect() as conn:
        return _row(conn, _ACTIVE, {"conversation_id": conversation_id})


def get(engine: Engine, request_id: int) -> Optional[Dict[str, Any]]:
    with engine.connect() as conn:
        return _row(conn, select(handoff_requests).where(handoff_requests.c.id == request_id))


def request_live(engine: Engine, conversation_id: str, reason: str, urgent: bool) -> Dict[str, Any]:
    """Put the conversation in the live queue; a second request (a retry, a second "yes") finds the first."""
    existing = active(engine, conversation_id)
    if existing is not None:
        if urgent and not existing["urgent"]:
            raise_priority(engine, conversation_id)
            existing = active(engine, conversation_id) or existing
        return existing
    now = utcnow()
    with engine.begin() as conn:
        result = conn.execute(
            insert(handoff_requests).values(
                conversation_id=conversation_id, reason=reason, urgent=urgent, kind=LIVE_KIND,
                status=WAITING, created_at=now, updated_at=now, version=1,
            )
        )
        request_id = int(result.inserted_primary_key[0])
    row = get(engine, request_id)
    assert row is not None
    return row


def request_callback(engine: Engine, conversation_id: str, reason: str, urgent: bool, contact_encrypted: str) -> int:
    """A callback request (outside staffed hours); the contact details come encrypted."""
    now = utcnow()
    with engine.begin() as conn:
        result = conn.execute(
            insert(handoff_requests).values(
                conversation_id=conversation_id, reason=reason, urgent=urgent, kind=CALLBACK_KIND,
                status="new", created_at=now, updated_at=now, version=1, contact_encrypted=contact_encrypted,
            )
        )
        return int(result.inserted_primary_key[0])


def change(
    engine: Engine,
    request_id: int,
    event: str,
    expected: str,
    staff_id: Optional[int] = None,
    staff_name: Optional[str] = None,
) -> Dict[str, Any]:
    """Apply ``event`` to a request whose status is ``expected``, atomically: when two staff
    members claim the same chat at once, one wins and the other gets HandoffError."""
    target = next_status(expected, event)
    now = utcnow()
    values: Dict[str, Any] = {"status": target, "updated_at": now, "version": handoff_requests.c.version + 1}
    if event == "release":
        values.update(staff_id=None, staff_name=None, claimed_at=None)
    if event == "claim":
        if staff_id is None or not staff_name:
            raise HandoffError("a chat is claimed by a staff member")
        values.update(staff_id=staff_id, staff_name=staff_name, claimed_at=now)
    if not TRANSITIONS[target]:
        values["ended_at"] = now
    with engine.begin() as conn:
        done = conn.execute(
            update(handoff_requests)
            .where(
                handoff_requests.c.id == request_id,
                handoff_requests.c.kind == LIVE_KIND,
                handoff_requests.c.status == expected,
            )
            .values(**values)
        )
    if not done.rowcount:
        raise HandoffError("the chat changed meanwhile; look at it again")
    row = get(engine, request_id)
    assert row is not None
    return row


def touch(engine: Engine, request_id: int) -> None:
    """A new message in a live chat: wake whoever waits on it."""
    with engine.begin() as conn:
        conn.execute(
            update(handoff_requests)
            .where(handoff_requests.c.id == request_id)
            .values(version=handoff_requests.c.version + 1, updated_at=utcnow())
        )


def raise_priority(engine: Engine, conversation_id: str) -> Optional[Dict[str, Any]]:
    """A crisis during a wait or a live chat: the request becomes urgent (first in the queue)."""
    with engine.begin() as conn:
        conn.execute(
            update(handoff_requests)
            .where(
                handoff_requests.c.conversation_id == conversation_id,
                handoff_requests.c.kind == LIVE_KIND,
                handoff_requests.c.status.in_(ACTIVE),
            )
            .values(urgent=True, reason="crisis", version=handoff_requests.c.version + 1, updated_at=utcnow())
        )
    return active(engine, conversation_id)


def queue(engine: Engine) -> List[Dict[str, Any]]:
    """Waiting requests, urgent first, then the longest waiting."""
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(_QUEUE)]


def live_chats(engine: Engine) -> List[Dict[str, Any]]:
    """Chats a person holds now, oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(handoff_requests)
            .where(handoff_requests.c.kind == LIVE_KIND, handoff_requests.c.status == LIVE)
            .order_by(handoff_requests.c.urgent.desc(), handoff_requests.c.claimed_at, handoff_requests.c.id)
        )
        return [dict(r._mapping) for r in rows]


def position(engine: Engine, row: Dict[str, Any]) -> Optional[int]:
    """1 for the next in line; None when the request is not waiting."""
    if row.get("status") != WAITING:
        return None
    ids = [r["id"] for r in queue(engine)]
    return ids.index(row["id"]) + 1 if row["id"] in ids else None


# The visitor's state of every turn (read before and after the message is answered): the
# conversation's active live request (its latest) and, when it waits, its place in the queue:
# the waiting requests ordered before it as _QUEUE orders them (urgent first, then the oldest,
# then the lowest id), itself included. Run on the driver's own cursor (clinic.storage.db.driver_cursor):
# through SQLAlchemy the two reads of a turn cost more CPU than the database's work on them.
VISITOR_STATE = """
    SELECT r.id, r.status, r.staff_name, r.version,
           CASE WHEN r.status = :waiting THEN
             (SELECT count(*) FROM handoff_requests q
               WHERE q.kind = :kind AND q.status = :waiting
                 AND (q.urgent > r.urgent
                      OR (q.urgent = r.urgent AND (q.created_at < r.created_at
                                                   OR (q.created_at = r.created_at AND q.id <= r.id)))))
           END
      FROM handoff_requests r
     WHERE r.conversation_id = :conversation_id AND r.kind = :kind
       AND (r.status = :waiting OR r.status = :live)
     ORDER BY r.id DESC
     LIMIT 1"""


def visitor_state(engine: Engine, conversation_id: str) -> Dict[str, Any]:
    """Who answers the visitor now: ``{"mode": "assistant" | "waiting" | "person", "agent",
    "position", "version"}`` (and ``request``, the row's id, when one is active); what the widget
    shows and the long poll compares. The row and its place in line come from one statement (one
    snapshot of the table, on SQLite and PostgreSQL alike), so a claim landing meanwhile never
    shows as "waiting, nowhere in line"."""
    with driver_cursor(engine) as cursor:
        cursor.execute(driver_sql(engine, VISITOR_STATE), {
            "conversation_id": conversation_id, "kind": LIVE_KIND, "waiting": WAITING, "live": LIVE,
        })
        row = cursor.fetchone()
    if row is None:
        return {"mode": "assistant", "agent": None, "position": None, "version": 0}
    request_id, status, staff_name, version, place = row
    if status == LIVE:
        return {"mode": "person", "agent": staff_name, "position": None, "version": version, "request": request_id}
    return {"mode": "waiting", "agent": None, "position": place, "version": version, "request": request_id}


# The expected wait in the live queue: the median time the last TYPICAL_OF visitors a person took
# waited (within TYPICAL_DAYS), times the place in line; None with fewer than TYPICAL_MIN of them
# (no figure is better than a made-up one). Read only for a visitor who waits (one small query).
TYPICAL_OF = 20
TYPICAL_MIN = 3
TYPICAL_DAYS = 30


def typical_wait_s(engine: Engine) -> Optional[float]:
    """How long a visitor waited for a person lately (the median, seconds), or None."""
    since = utcnow() - dt.timedelta(days=TYPICAL_DAYS)
    with engine.connect() as conn:
        rows = conn.execute(
            select(handoff_requests.c.created_at, handoff_requests.c.claimed_at)
            .where(handoff_requests.c.kind == LIVE_KIND, handoff_requests.c.claimed_at.isnot(None),
                   handoff_requests.c.created_at >= since)
            .order_by(handoff_requests.c.claimed_at.desc()).limit(TYPICAL_OF)
        ).fetchall()
    waits = sorted(max((r.claimed_at - r.created_at).total_seconds(), 0.0) for r in rows)
    if len(waits) < TYPICAL_MIN:
        return None
    middle = len(waits) // 2
    return waits[middle] if len(waits) % 2 else (waits[middle - 1] + waits[middle]) / 2


def expected_wait_s(engine: Engine, place: Optional[int]) -> Optional[int]:
    """The expected wait of the visitor at ``place`` in line (seconds), or None when not known."""
    typical = typical_wait_s(engine)
    if typical is None or not place:
        return None
    return int(round(typical * place))


# --- what the assistant's tracker gets ----------------------------------------


def _bot(text: str, metadata: Dict[str, Any]) -> Dict[str, Any]:
    return {"event": "bot", "text": text, "timestamp": time.time(), "metadata": metadata}


def staff_metadata(staff_id: int, staff_name: str) -> Dict[str, Any]:
    return {"staff": {"id": staff_id, "name": staff_name}}


def joined_events(staff_id: int, staff_name: str, clinic_name: str) -> List[Dict[str, Any]]:
    """A person takes the chat: the assistant pauses and the visitor is told who is there."""
    text = JOINED_TEXT.format(name=staff_name, clinic=clinic_name)
    return [{"event": "pause", "timestamp": time.time()}, _bot(text, {**staff_metadata(staff_id, staff_name), "handoff": "joined"})]


def staff_message_event(staff_id: int, staff_name: str, text: str) -> Dict[str, Any]:
    return _bot(text, staff_metadata(staff_id, staff_name))


def resumed_events(staff_name: str, closed: bool) -> List[Dict[str, Any]]:
    """The person lets go (hands back, or closes): the assistant resumes and says so, then listens."""
    text = (CLOSED_TEXT if closed else HANDED_BACK_TEXT).format(name=staff_name)
    return [
        {"event": "resume", "timestamp": time.time()},
        _bot(text, {"handoff": "closed" if closed else "handed_back"}),
        {"event": "action", "name": "action_listen", "timestamp": time.time()},
    ]


def released_events(staff_name: str) -> List[Dict[str, Any]]:
    """The person lets go without ending the chat: the assistant resumes, says so, then listens."""
    return [
        {"event": "resume", "timestamp": time.time()},
        _bot(RELEASED_TEXT.format(name=staff_name), {"handoff": "released"}),
        {"event": "action", "name": "action_listen", "timestamp": time.time()},
    ]


def closed_waiting_events(phone: str, email: str, hours: str) -> List[Dict[str, Any]]:
    return [_bot(CLOSED_WAITING_TEXT.format(phone=phone, email=email, hours=hours), {"handoff": "closed"})]


def cancelled_events() -> List[Dict[str, Any]]:
    return [_bot(CANCELLED_TEXT, {"handoff": "cancelled"})]
