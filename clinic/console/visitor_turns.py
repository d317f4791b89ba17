"""What answered each visitor message: one reading of the tracker store for the console's figures.

A visitor message is read with the events of its turn (up to the next message):

- how it was sent: **typed**, or a **button** press (a button's title in ``metadata.display``,
  or a bare ``/intent`` payload);
- whether it was a **form answer** (``clinic.rules.form_answers``: a pre-screen, contact, waitlist
  or callback answer; health data or contact details);
- what the assistant ran first in reply (``answered_by``: the first action after it other
  than ``action_listen``), and so its **outcome**:
  ``faq`` (``action_answer_faq``), ``unsure`` ("did you mean" offered topics),
  ``fallback`` (a plain fallback: ``utter_fallback``, ``action_default_fallback``, or
  ``action_did_you_mean`` when nothing was likely), or ``other``;
- for an ``unsure`` message, what the visitor did next: picked one of the topics offered
  (``picked`` = the topic) or "Something else" (``something_else``).

A **question** is a typed message that is no form answer: only questions count as FAQ topics
or fallbacks on the dashboard, so a pre-screen answer that the NLU could not place ("42",
"several days") and a button press are neither.

The events are read with the few fields this needs (JSON values extracted by the database),
from a first event id on; a conversation that has events before it is read whole, so that a
form active across the boundary is known.
"""

import re
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Sequence

from sqlalchemy import bindparam, text
from sqlalchemy.engine import Connection

from clinic.rules import form_answers

FAQ_ACTIONS = frozenset({"action_answer_faq", "utter_faq"})
DID_YOU_MEAN_ACTION = "action_did_you_mean"
DID_YOU_MEAN_RESPONSE = "utter_did_you_mean"
FALLBACK_ACTIONS = frozenset({"utter_fallback", "utter_fallback_again", "action_default_fallback"})
SOMETHING_ELSE_RESPONSE = "utter_something_else"
SOMETHING_ELSE = "something_else"
UNANSWERED_OUTCOMES = ("unsure", "fallback")
_PICK = re.compile(r'^/faq\{"topic":\s*"([a-z0-9_]+)"\}$')
_CHUNK = 500


@dataclass
class Message:
    event_id: int
    conversation_id: str
    ts: float
    text: str  # what the visitor saw themselves send ("" for a bare payload)
    button: bool
    intent: Optional[str]
    topic: Optional[str]  # the FAQ topic the NLU chose, or the one a "did you mean" button picked
    message_id: Optional[str]  # Rasa's id of the message
    widget_id: Optional[str] = None  # the id the widget gave it (metadata.message_id): what a rating names
    form_answer: bool = False
    answered_by: Optional[str] = None
    offered_topics: bool = False  # a "did you mean" with topics answered it
    picked: Optional[str] = None  # after "did you mean": the topic picked, or "something_else"
    confidence: Optional[float] = None  # the NLU's confidence in ``intent``

    @property
    def understood(self) -> Optional[str]:
        """What the NLU made of it: ``faq/<topic>`` for an FAQ question, else the intent."""
        if self.intent == "faq" and self.topic:
            return f"faq/{self.topic}"
        return self.intent

    @property
    def question(self) -> bool:
        return not self.button and not self.form_answer and bool(self.text.strip())

    @property
    def outcome(self) -> str:
        if self.answered_by in FAQ_ACTIONS:
            return "faq"
        if self.answered_by == DID_YOU_MEAN_ACTION:
            return "unsure" if self.offered_topics else "fallback"
        if self.answered_by in FALLBACK_ACTIONS:
            return "fallback"
        return "other"

    @property
    def unanswered(self) -> bool:
        return self.question and self.outcome in UNANSWERED_OUTCOMES


@dataclass
class Conversation:
    conversation_id: str
    started: Optional[float] = None  # the time of its first event
    messages: List[Message] = field(default_factory=list)
    handoff: bool = False
    prescreen: bool = False
    crisis: bool = False


def _json(dialect: str, *path: str) -> str:
    if dialect == "sqlite":
        return "json_extract(data, '$." + ".".join(path) + "')"
    steps = "".join(f"->'{p}'" for p in path[:-1])
    return f"(CAST(data AS json){steps}->>'{path[-1]}')"


def _value_type(dialect: str) -> str:
    """A slot event's value as 'true', 'false', 'null' or another JSON type name."""
    if dialect == "sqlite":
        return "json_type(data, '$.value')"
    return ("CASE json_typeof(CAST(data AS json)->'value') WHEN 'boolean' THEN (CAST(data AS json)->>'value') "
            "ELSE json_typeof(CAST(data AS json)->'value') END")


def _select(dialect: str) -> str:
    user = "type_name = 'user'"
    return f"""
    SELECT id, sender_id, type_name, timestamp, intent_name, action_name,
      CASE WHEN {user} THEN {_json(dialect, 'text')} END AS text,
      CASE WHEN {user} THEN {_json(dialect, 'metadata', 'display')} END AS display,
      CASE WHEN {user} THEN {_json(dialect, 'message_id')} END AS message_id,
      CASE WHEN {user} THEN {_json(dialect, 'metadata', 'message_id')} END AS widget_id,
      CASE WHEN {user} THEN {_json(dialect, 'parse_data', 'intent', 'full_retrieval_intent_name')} END AS retrieval,
      CASE WHEN {user} THEN {_json(dialect, 'parse_data', 'intent', 'confidence')} END AS confidence,
      CASE WHEN {user} THEN {_json(dialect, 'parse_data', 'response_selector', 'faq', 'response', 'intent_response_key')} END
        AS response_key,
      CASE WHEN type_name = 'bot' THEN {_json(dialect, 'metadata', 'utter_action')} END AS utter_action,
      CASE WHEN type_name = 'slot' THEN {_value_type(dialect)} END AS value_type
    FROM events
    """


def _topic(row: Any) -> Optional[str]:
    for key in (row.retrieval, row.response_key):
        if isinstance(key, str) and "/" in key:
            return key.split("/", 1)[1]
    return None


def read(conn: Connection, first_id: int) -> Dict[str, Conversation]:
    """Every conversation with events from ``first_id`` on, its messages read (module docstring)."""
    dialect = conn.dialect.name
    rows = conn.execute(text(_select(dialect) + " WHERE id >= :lo ORDER BY id"), {"lo": first_id}).fetchall()
    by_sender: Dict[str, List[Any]] = {}
    for row in rows:
        by_sender.setdefault(row.sender_id, []).append(row)
    earlier = text(
        "SELECT DISTINCT sender_id FROM events WHERE sender_id IN :ids AND id < :lo"
    ).bindparams(bindparam("ids", expanding=True))
    whole = text(_select(dialect) + " WHERE sender_id IN :ids AND id < :lo ORDER BY id").bindparams(
        bindparam("ids", expanding=True))
    senders = list(by_sender)
    for i in range(0, len(senders), _CHUNK):
        part = senders[i:i + _CHUNK]
        returning = [r[0] for r in conn.execute(earlier, {"ids": part, "lo": first_id})]
        if returning:
            before: Dict[str, List[Any]] = {}
            for row in conn.execute(whole, {"ids": returning, "lo": first_id}):
                before.setdefault(row.sender_id, []).append(row)
            for sender, events in before.items():
                by_sender[sender] = events + by_sender[sender]
    return {sender: fold(sender, events) for sender, events in by_sender.items()}


def fold(conversation_id: str, rows: Sequence[Any]) -> Conversation:
    """One conversation's events (rows of ``_select``, in order) read into its messages."""
    conversation = Conversation(conversation_id)
    plain: List[Dict[str, Any]] = []  # the events as form_answers reads them
    messages_at: Dict[int, Message] = {}
    current: Optional[Message] = None
    previous_unsure: Optional[Message] = None  # the last message, if "did you mean" answered it
    for position, row in enumerate(rows):
        kind = row.type_name
        if row.timestamp is not None and (conversation.started is None or row.timestamp < conversation.started):
            conversation.started = row.timestamp
        plain.append(_plain(row))
        if kind == "user":
            previous_unsure = current if current is not None and current.outcome == "unsure" else None
            raw = row.text if isinstance(row.text, str) else ""
            display = row.display if isinstance(row.display, str) and row.display.strip() else None
            pick = _PICK.match(raw)
            current = Message(
                event_id=row.id, conversation_id=conversation_id, ts=row.timestamp or 0.0,
                text=display or ("" if raw.startswith("/") else raw),
                button=display is not None or raw.startswith("/"),
                intent=row.intent_name, topic=pick.group(1) if pick else _topic(row),
                message_id=row.message_id if isinstance(row.message_id, str) else None,
                widget_id=row.widget_id if isinstance(row.widget_id, str) else None,
                confidence=_number(row.confidence),
            )
            conversation.messages.append(current)
            messages_at[position] = current
        elif kind == "action":
            name = row.action_name
            if current is not None and current.answered_by is None and name and name != "action_listen":
                current.answered_by = name
                if previous_unsure is not None:
                    if name in FAQ_ACTIONS and current.button and current.topic:
                        previous_unsure.picked = current.topic
                    elif name == SOMETHING_ELSE_RESPONSE:
                        previous_unsure.picked = SOMETHING_ELSE
            if name == "action_human_handoff":
                conversation.handoff = True
            elif name == "action_crisis_response":
                conversation.crisis = True
            elif name in ("prescreen_form", "action_prescreen_outcome"):
                conversation.prescreen = True
        elif kind == "bot" and current is not None:
            if row.utter_action == DID_YOU_MEAN_RESPONSE:
                current.offered_topics = True
        elif kind == "active_loop" and row.action_name == "prescreen_form":
            conversation.prescreen = True
        elif kind == "slot":
            if row.action_name == "crisis_flagged" and row.value_type == "true":
                conversation.crisis = True
    for position, answered in enumerate(form_answers.answered_messages(plain)):
        if answered and position in messages_at:
            messages_at[position].form_answer = True
    return conversation


def _number(value: Any) -> Optional[float]:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def read_conversations(conn: Connection, conversation_ids: Sequence[str]) -> Dict[str, Conversation]:
    """These conversations, each read whole (``fold``)."""
    query = text(_select(conn.dialect.name) + " WHERE sender_id IN :ids ORDER BY id").bindparams(
        bindparam("ids", expanding=True))
    by_sender: Dict[str, List[Any]] = {}
    ids = list(dict.fromkeys(conversation_ids))
    for i in range(0, len(ids), _CHUNK):
        for row in conn.execute(query, {"ids": ids[i:i + _CHUNK]}):
            by_sender.setdefault(row.sender_id, []).append(row)
    return {sender: fold(sender, rows) for sender, rows in by_sender.items()}


def _plain(row: Any) -> Dict[str, Any]:
    """An event as clinic.rules.form_answers reads it (type, intent, loop or slot name, slot set or not)."""
    event: Dict[str, Any] = {"event": row.type_name, "name": row.action_name}
    if row.type_name == "user":
        event["parse_data"] = {"intent": {"name": row.intent_name}}
    elif row.type_name == "slot":
        event["value"] = None if row.value_type in (None, "null") else True
    return event


def questions(conversations: Iterable[Conversation], since: float) -> List[Message]:
    """The visitors' questions (typed, no form answer) sent at ``since`` or later, in order."""
    found = [m for c in conversations for m in c.messages if m.question and m.ts >= since]
    return sorted(found, key=lambda m: m.event_id)
