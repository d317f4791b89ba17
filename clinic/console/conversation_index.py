"""The conversation index: one row per tracker-store conversation, for the console's list.

Rasa's tracker store (table ``events``) is read, never written, through the
console's read-only engine. Each refresh reads only the events after the last
``events.id`` it applied (kept in ``conversation_index_state``), at most a
bounded batch, and updates one row per conversation (``sender_id``): first and
last event time, message counts, the pre-screen outcome (the last
``prescreen_outcome`` slot set), referred (a ``referral_reference`` slot set),
crisis (``action_crisis_response`` executed, a ``crisis_flagged`` slot, a
``crisis`` outcome, or a crisis flag in the clinic DB), handoff requested
(``action_human_handoff`` executed, or a handoff request stored), fallback
happened (a user message parsed as ``nlu_fallback``, or ``utter_fallback`` /
``action_default_fallback`` executed), the visitor's first real question (typed, not a form
answer, not a greeting, thanks or a bare yes or no: ``SMALL_TALK``) and the visitor's text for
search.

A visitor's message that filled a form slot (``clinic.rules.form_answers``: the
pre-screen, contact details, waitlist, callback request; the tracker's events
say so) is an answer (health data, contact details): it is not copied into the
index. A message waits in ``pending_text`` until its turn's events show whether
it filled one (a turn ends with ``action_listen``, or the next message); then it
is searchable or dropped. Messages the forms leave out (a crisis, a request for
a person, anything outside a form) are indexed.

Search uses SQLite FTS5 (``conversation_fts``, an external-content table over
``conversation_index.visitor_text`` kept by triggers); where FTS5 is missing
(another database), a LIKE on the lower-cased text. Paging is by keyset on
(last activity, id), so page 50 costs what page 1 costs.

Conversations whose events are gone from the tracker store drop out of the
index: the rows of every page shown are checked against the tracker (one
indexed query), and ``reconcile()`` checks them all.
"""

import datetime as dt
import json
import re
import weakref
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple

from sqlalchemy import and_, bindparam, delete, func, insert, select, text, tuple_, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from clinic.console import clock
from clinic.storage import db
from clinic.rules import form_answers
from clinic.storage.db import conversation_flags, conversation_index, conversation_index_state, conversation_tags, handoff_requests

ci = conversation_index

PAGE_SIZE = 50
BATCH_EVENTS = 20_000  # events read by one refresh (the list request's bound)
MAX_TEXT_CHARS = 20_000  # searchable visitor text kept per conversation
FIRST_MESSAGE_CHARS = 200
CHUNK = 500  # ids per IN (...) query

FALLBACK_ACTIONS = frozenset({"utter_fallback", "action_default_fallback"})
# Messages that are no question: never a conversation's "first message" in the list.
SMALL_TALK = frozenset({"greet", "goodbye", "thank", "affirm", "deny", "bot_challenge"})
SLOTS_READ = frozenset({"prescreen_outcome", "referral_reference", "crisis_flagged"})
OUTCOMES = ("eligible", "clinician_review", "not_eligible", "out_of_area", "crisis")

# The outcome filter of the list: value -> label.
OUTCOME_FILTERS: Dict[str, str] = {
    "referred": "Referred",
    "eligible": "Eligible",
    "clinician_review": "Clinician review",
    "not_eligible": "Not eligible",
    "out_of_area": "Out of area",
    "crisis": "Crisis",
    "handoff": "Handoff requested",
    "fallback": "Fallback happened",
}
TAG_RE = re.compile(r"^[a-z0-9][a-z0-9 _-]{0,39}$")
_WORD = re.compile(r"[^\W_]+", re.UNICODE)

EVENT_COLUMNS = "id, sender_id, type_name, timestamp, intent_name, action_name"
# Only user and slot events need their JSON (the slots read, and whether a form slot was set).
_DATA = "CASE WHEN type_name IN ('user', 'slot') THEN data END AS data"


# --- schema ----------------------------------------------------------------------


# Whether FTS5 search is on, per engine whose schema was ensured (gone with the engine).
_FTS_OF_ENGINE: "weakref.WeakKeyDictionary[Engine, bool]" = weakref.WeakKeyDictionary()


def ensure_schema(engine: Engine) -> bool:
    """Create what the index needs beyond the tables of clinic.storage.db; True when FTS5 search is on."""
    cached = _FTS_OF_ENGINE.get(engine)
    if cached is not None:
        return bool(cached)
    db.metadata.create_all(engine, tables=[ci, conversation_index_state, conversation_tags, db.conversation_notes])
    fts = False
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            exists = conn.execute(text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'conversation_fts'")).first()
            if exists:
                fts = True
            else:
                try:
                    conn.execute(text(
                        "CREATE VIRTUAL TABLE conversation_fts USING fts5(visitor_text, content='conversation_index', "
                        "content_rowid='id', tokenize='unicode61 remove_diacritics 2')"
                    ))
                except OperationalError:  # this SQLite has no FTS5: LIKE it is
                    fts = False
                else:
                    for statement in (
                        "CREATE TRIGGER conversation_index_fts_ai AFTER INSERT ON conversation_index BEGIN "
                        "INSERT INTO conversation_fts(rowid, visitor_text) VALUES (new.id, new.visitor_text); END",
                        "CREATE TRIGGER conversation_index_fts_ad AFTER DELETE ON conversation_index BEGIN "
                        "INSERT INTO conversation_fts(conversation_fts, rowid, visitor_text) VALUES ('delete', old.id, old.visitor_text); END",
                        "CREATE TRIGGER conversation_index_fts_au AFTER UPDATE OF visitor_text ON conversation_index BEGIN "
                        "INSERT INTO conversation_fts(conversation_fts, rowid, visitor_text) VALUES ('delete', old.id, old.visitor_text); "
                        "INSERT INTO conversation_fts(rowid, visitor_text) VALUES (new.id, new.visitor_text); END",
                        "INSERT INTO conversation_fts(conversation_fts) VALUES ('rebuild')",
                    ):
                        conn.execute(text(statement))
                    fts = True
    try:
        with engine.begin() as conn:
            if conn.execute(select(conversation_index_state.c.name).where(conversation_index_state.c.name == "events")).first() is None:
                conn.execute(insert(conversation_index_state).values(name="events", value=0))
    except IntegrityError:  # another process made it meanwhile
        pass
    _FTS_OF_ENGINE[engine] = fts
    return fts


def watermark(engine: Engine) -> int:
    with engine.connect() as conn:
        value = conn.execute(select(conversation_index_state.c.value).where(conversation_index_state.c.name == "events")).scalar()
    return int(value or 0)


def lower_watermark(engine: Engine, top: Optional[int]) -> None:
    """After events were deleted from the tracker store: never skip ids it may hand out again."""
    ensure_schema(engine)
    with engine.begin() as conn:
        conn.execute(
            update(conversation_index_state)
            .where(conversation_index_state.c.name == "events", conversation_index_state.c.value > (top or 0))
            .values(value=top or 0)
        )


# --- applying events ---------------------------------------------------------------


def new_row(conversation_id: str) -> Dict[str, Any]:
    return {
        "id": None, "conversation_id": conversation_id, "first_ts": None, "last_ts": None, "message_count": 0,
        "visitor_messages": 0, "outcome": None, "referral_reference": None, "referred": False, "prescreen": False,
        "crisis": False, "handoff": False, "fallback": False, "active_form": None, "first_message": None,
        "visitor_text": "", "last_event_id": 0, "pending_text": None, "pending_question": None,
    }


def _loads(data: Optional[str]) -> Dict[str, Any]:
    if not data:
        return {}
    try:
        value = json.loads(data)
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def visitor_text_of(event: Mapping[str, Any]) -> str:
    """What the visitor saw themselves send: a button's title, or what they typed ('' for a bare payload)."""
    display = (event.get("metadata") or {}).get("display")
    if isinstance(display, str) and display.strip():
        return display
    typed = event.get("text")
    if not isinstance(typed, str) or typed.startswith("/"):
        return ""
    return typed


def intent_of(event: Mapping[str, Any]) -> Optional[str]:
    intent = ((event.get("parse_data") or {}).get("intent") or {}).get("name")
    return intent if isinstance(intent, str) else None


def _settle(row: Dict[str, Any]) -> None:
    """The waiting message filled no form slot: it is the visitor's own words, searchable."""
    said, row["pending_text"] = row.get("pending_text"), None
    question, row["pending_question"] = row.get("pending_question"), None
    if not said:
        return
    if row["first_message"] is None and question:
        row["first_message"] = said[:FIRST_MESSAGE_CHARS]
    if len(row["visitor_text"]) < MAX_TEXT_CHARS:
        joined = (row["visitor_text"] + "\n" + said.lower()) if row["visitor_text"] else said.lower()
        row["visitor_text"] = joined[:MAX_TEXT_CHARS]


def apply_event(row: Dict[str, Any], event_id: int, type_name: str, ts: Optional[float], intent: Optional[str],
                action: Optional[str], data: Optional[str]) -> None:
    """Fold one tracker event into an index row (events already applied are skipped)."""
    if event_id <= row["last_event_id"]:
        return
    row["last_event_id"] = event_id
    if ts is not None:
        if row["first_ts"] is None or ts < row["first_ts"]:
            row["first_ts"] = ts
        if row["last_ts"] is None or ts > row["last_ts"]:
            row["last_ts"] = ts
    if type_name == "user":
        _settle(row)
        row["message_count"] += 1
        row["visitor_messages"] += 1
        event = _loads(data)
        intent = intent_of(event) or intent
        if intent == "nlu_fallback":
            row["fallback"] = True
        said = visitor_text_of(event).strip() or None
        row["pending_text"] = None if form_answers.sent_during_form(row["active_form"], intent) else said
        typed = not (event.get("metadata") or {}).get("display") and not str(event.get("text") or "").startswith("/")
        row["pending_question"] = bool(said) and typed and intent not in SMALL_TALK
    elif type_name == "bot":
        row["message_count"] += 1
    elif type_name == "action":
        if action == "action_listen":  # the turn is over: its message filled no form slot
            _settle(row)
        elif action in FALLBACK_ACTIONS:
            row["fallback"] = True
        elif action == "action_human_handoff":
            row["handoff"] = True
        elif action == "action_crisis_response":
            row["crisis"] = True
        elif action in ("prescreen_form", "action_prescreen_outcome"):
            row["prescreen"] = True
    elif type_name == "active_loop":
        row["active_form"] = action
        if action == "prescreen_form":
            row["prescreen"] = True
    elif type_name == "slot" and action in form_answers.form_slots():
        if _loads(data).get("value") is not None:  # the waiting message was a form's answer
            row["pending_text"] = row["pending_question"] = None
    elif type_name == "slot" and action in SLOTS_READ:
        value = _loads(data).get("value")
        if action == "prescreen_outcome" and isinstance(value, str) and value:
            row["outcome"] = value[:32]
            row["prescreen"] = True
            if value == "crisis":
                row["crisis"] = True
        elif action == "referral_reference" and isinstance(value, str) and value:
            row["referred"] = True
            row["referral_reference"] = value[:16]
        elif action == "crisis_flagged" and value is True:
            row["crisis"] = True


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _existing_rows(conn: Connection, ids: Sequence[str]) -> Dict[str, Dict[str, Any]]:
    found: Dict[str, Dict[str, Any]] = {}
    columns = [c for c in ci.c if c.name not in ("reviewed", "reviewed_at", "reviewed_by")]
    for part in _chunks(list(ids)):
        for r in conn.execute(select(*columns).where(ci.c.conversation_id.in_(part))):
            found[r.conversation_id] = dict(r._mapping)
    return found


def _clinic_flags(conn: Connection, ids: Sequence[str]) -> Tuple[Set[str], Set[str]]:
    """Conversations with a crisis flag, and with a handoff request, in the clinic DB."""
    crisis: Set[str] = set()
    handoff: Set[str] = set()
    for part in _chunks(list(ids)):
        crisis.update(r[0] for r in conn.execute(
            select(conversation_flags.c.conversation_id).where(
                conversation_flags.c.conversation_id.in_(part), conversation_flags.c.flag == "crisis")))
        handoff.update(r[0] for r in conn.execute(
            select(handoff_requests.c.conversation_id).where(handoff_requests.c.conversation_id.in_(part))))
    return crisis, handoff


EVENT_FIELDS = ("first_ts", "last_ts", "message_count", "visitor_messages", "outcome", "referral_reference", "referred",
                "prescreen", "crisis", "handoff", "fallback", "active_form", "first_message", "last_event_id", "pending_text",
                "pending_question")


def _tracker_rows(tracker: Engine, sql: str, params: Mapping[str, Any]) -> Optional[List[Any]]:
    """Rows from the tracker store, or None when it has no events table yet."""
    try:
        with tracker.connect() as conn:
            return conn.execute(text(sql), dict(params)).fetchall()
    except (OperationalError, ProgrammingError):
        return None


def _write(engine: Engine, rows: Dict[str, Dict[str, Any]], originals: Dict[str, Dict[str, Any]],
           old_mark: Optional[int], new_mark: Optional[int]) -> bool:
    """Write changed rows (and move the watermark from old to new); False when another process got there first."""
    inserts = [r for r in rows.values() if r["id"] is None and r["last_ts"] is not None]
    updates_text, updates = [], []
    for cid, r in rows.items():
        if r["id"] is None:
            continue
        before = originals.get(cid, {})
        if all(before.get(k) == r[k] for k in EVENT_FIELDS) and before.get("visitor_text") == r["visitor_text"]:
            continue
        values = {f"v_{k}": r[k] for k in EVENT_FIELDS}
        values["v_id"] = r["id"]
        if before.get("visitor_text") != r["visitor_text"]:
            values["v_visitor_text"] = r["visitor_text"]
            updates_text.append(values)
        else:
            updates.append(values)
    try:
        with engine.begin() as conn:
            if new_mark is not None:
                moved = conn.execute(
                    update(conversation_index_state)
                    .where(conversation_index_state.c.name == "events", conversation_index_state.c.value == old_mark)
                    .values(value=new_mark)
                )
                if not moved.rowcount:
                    raise _Conflict()
            if inserts:
                conn.execute(insert(ci), [{k: v for k, v in r.items() if k != "id"} for r in inserts])
            set_values = {k: bindparam(f"v_{k}") for k in EVENT_FIELDS}
            if updates:
                conn.execute(update(ci).where(ci.c.id == bindparam("v_id")).values(**set_values), updates)
            if updates_text:
                conn.execute(
                    update(ci).where(ci.c.id == bindparam("v_id")).values(**set_values, visitor_text=bindparam("v_visitor_text")),
                    updates_text,
                )
    except (_Conflict, IntegrityError):
        return False
    return True


class _Conflict(Exception):
    pass


def refresh(engine: Engine, tracker: Engine, max_events: int = BATCH_EVENTS) -> int:
    """Apply the tracker events not indexed yet (at most ``max_events``); returns how many were read."""
    ensure_schema(engine)
    mark = watermark(engine)
    events = _tracker_rows(
        tracker, f"SELECT {EVENT_COLUMNS}, {_DATA} FROM events WHERE id > :mark ORDER BY id LIMIT :n",
        {"mark": mark, "n": max_events},
    )
    if not events:
        if events is not None and mark:
            top = _tracker_rows(tracker, "SELECT max(id) FROM events", {})
            top_id = (top[0][0] if top else None) or 0
            if top_id < mark:  # events were deleted from under the index: their ids may come again
                lower_watermark(engine, top_id)
        return 0
    by_sender: Dict[str, List[Any]] = {}
    for e in events:
        by_sender.setdefault(e[1], []).append(e)
    with engine.connect() as conn:
        originals = _existing_rows(conn, list(by_sender))
        crisis, handoff = _clinic_flags(conn, list(by_sender))
    rows: Dict[str, Dict[str, Any]] = {}
    for sender, evs in by_sender.items():
        row = dict(originals[sender]) if sender in originals else new_row(sender)
        for e in evs:
            apply_event(row, e[0], e[2], e[3], e[4], e[5], e[6])
        if sender in crisis:
            row["crisis"] = True
        if sender in handoff:
            row["handoff"] = True
        if row["first_ts"] is None:  # events without a time (never seen from Rasa): keep them findable
            row["first_ts"] = row["last_ts"] = 0.0
        rows[sender] = row
    if not _write(engine, rows, originals, mark, events[-1][0]):
        return 0
    return len(events)


def build(engine: Engine, tracker: Engine, batch: int = 50_000, progress: Any = None) -> int:
    """Refresh until nothing is new (a first build, a purge, the benchmark)."""
    total = 0
    while True:
        n = refresh(engine, tracker, batch)
        total += n
        if progress and n:
            progress(total)
        if n == 0:
            return total


def pending_events(engine: Engine, tracker: Engine) -> int:
    """About how many tracker events are not indexed yet."""
    top = _tracker_rows(tracker, "SELECT max(id) FROM events", {})
    top_id = (top[0][0] if top else None) or 0
    return max(int(top_id) - watermark(engine), 0)


def conversation_events(tracker: Engine, conversation_id: str) -> List[Any]:
    """All tracker events of one conversation, in order (id, sender, type, ts, intent, action, data)."""
    rows = _tracker_rows(
        tracker, f"SELECT {EVENT_COLUMNS}, data FROM events WHERE sender_id = :cid ORDER BY id", {"cid": conversation_id}
    )
    return rows or []


def ensure_indexed(engine: Engine, tracker: Engine, conversation_id: str, events: Optional[List[Any]] = None) -> Optional[Dict[str, Any]]:
    """The index row of a conversation, made now from its events if the refresh has not reached it.

    None (and no row) when the tracker store has no events for it."""
    ensure_schema(engine)
    events = conversation_events(tracker, conversation_id) if events is None else events
    with engine.connect() as conn:
        found = conn.execute(select(ci).where(ci.c.conversation_id == conversation_id)).first()
    if not events:
        if found is not None:
            drop_rows(engine, [conversation_id])
        return None
    if found is not None:
        return dict(found._mapping)
    row = new_row(conversation_id)
    for e in events:
        apply_event(row, e[0], e[2], e[3], e[4], e[5], e[6])
    with engine.connect() as conn:
        crisis, handoff = _clinic_flags(conn, [conversation_id])
    row["crisis"] = row["crisis"] or conversation_id in crisis
    row["handoff"] = row["handoff"] or conversation_id in handoff
    if row["first_ts"] is None:
        row["first_ts"] = row["last_ts"] = 0.0
    _write(engine, {conversation_id: row}, {}, None, None)
    with engine.connect() as conn:
        found = conn.execute(select(ci).where(ci.c.conversation_id == conversation_id)).first()
    return dict(found._mapping) if found else None


def drop_rows(engine: Engine, conversation_ids: Sequence[str]) -> int:
    """Remove conversations from the index (their tags and notes stay unless deleted on purpose)."""
    n = 0
    with engine.begin() as conn:
        for part in _chunks(list(conversation_ids)):
            n += conn.execute(delete(ci).where(ci.c.conversation_id.in_(part))).rowcount or 0
    return n


def senders_present(tracker: Engine, conversation_ids: Sequence[str]) -> Set[str]:
    present: Set[str] = set()
    for part in _chunks(list(conversation_ids)):
        rows = _tracker_rows(
            tracker,
            "SELECT DISTINCT sender_id FROM events WHERE sender_id IN (" + ", ".join(f":s{i}" for i in range(len(part))) + ")",
            {f"s{i}": v for i, v in enumerate(part)},
        )
        present.update(r[0] for r in rows or [])
    return present


def reconcile(engine: Engine, tracker: Engine) -> int:
    """Drop every indexed conversation that has no events left in the tracker store; returns how many."""
    ensure_schema(engine)
    rows = _tracker_rows(tracker, "SELECT DISTINCT sender_id FROM events", {})
    if rows is None:
        return 0
    present = {r[0] for r in rows}
    with engine.connect() as conn:
        indexed = [r[0] for r in conn.execute(select(ci.c.conversation_id))]
    gone = [cid for cid in indexed if cid not in present]
    return drop_rows(engine, gone) if gone else 0


# --- the list -----------------------------------------------------------------------


def _date(value: Optional[str]) -> Optional[dt.date]:
    try:
        return dt.date.fromisoformat((value or "").strip()) if value and value.strip() else None
    except ValueError:
        return None


@dataclass
class Filters:
    date_from: Optional[dt.date] = None
    date_to: Optional[dt.date] = None
    outcome: str = ""
    tag: str = ""
    reviewed: str = ""  # "", "yes", "no"
    q: str = ""
    errors: List[str] = field(default_factory=list)

    @classmethod
    def from_args(cls, args: Mapping[str, Any]) -> "Filters":
        def arg(name: str) -> str:
            value = args.get(name)
            if isinstance(value, list):
                value = value[0] if value else ""
            return (value or "").strip()

        f = cls()
        for name in ("from", "to"):
            raw = arg(name)
            value = _date(raw)
            if raw and value is None:
                f.errors.append(f"'{name}' is a date: YYYY-MM-DD")
            setattr(f, "date_from" if name == "from" else "date_to", value)
        outcome = arg("outcome")
        f.outcome = outcome if outcome in OUTCOME_FILTERS else ""
        tag = arg("tag").lower()
        f.tag = tag if TAG_RE.match(tag) else ""
        reviewed = arg("reviewed")
        f.reviewed = reviewed if reviewed in ("yes", "no") else ""
        f.q = arg("q")[:200]
        return f

    def query_args(self) -> Dict[str, str]:
        """The filters as query-string arguments (empty ones left out)."""
        values = {
            "from": self.date_from.isoformat() if self.date_from else "",
            "to": self.date_to.isoformat() if self.date_to else "",
            "outcome": self.outcome, "tag": self.tag, "reviewed": self.reviewed, "q": self.q,
        }
        return {k: v for k, v in values.items() if v}

    def summary(self) -> str:
        """For the audit log: which filters, never the search words (they may quote a visitor)."""
        parts = [f"{k}={v}" for k, v in self.query_args().items() if k != "q"]
        if self.q:
            parts.append("q=(search)")
        return " ".join(parts)


def _epoch(day: dt.date) -> float:
    """The start of a clinic day (the list shows the clinic's times) in epoch seconds."""
    return clock.day_start(day).replace(tzinfo=dt.timezone.utc).timestamp()


def fts_query(q: str) -> str:
    """A safe FTS5 query: each word of ``q`` as a quoted prefix term, all required."""
    words = _WORD.findall(q.lower())[:12]
    return " ".join(f'"{w}"*' for w in words)


def _like(value: str) -> str:
    return "%" + value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def conditions(engine: Engine, f: Filters) -> List[Any]:
    fts = ensure_schema(engine)
    where: List[Any] = []
    if f.date_from:
        where.append(ci.c.last_ts >= _epoch(f.date_from))
    if f.date_to:
        where.append(ci.c.last_ts < _epoch(f.date_to + dt.timedelta(days=1)))
    if f.outcome in ("referred", "crisis", "handoff", "fallback"):
        where.append(ci.c[f.outcome] == True)  # noqa: E712  (= 1: the index is used)
    elif f.outcome:
        where.append(ci.c.outcome == f.outcome)
    if f.tag:
        where.append(ci.c.conversation_id.in_(select(conversation_tags.c.conversation_id).where(conversation_tags.c.tag == f.tag)))
    if f.reviewed:
        where.append(ci.c.reviewed == (f.reviewed == "yes"))
    if f.q:
        match = fts_query(f.q)
        if fts and match:
            where.append(
                text("conversation_index.id IN (SELECT rowid FROM conversation_fts WHERE conversation_fts MATCH :fts_q)")
                .bindparams(fts_q=match)
            )
        else:
            words = _WORD.findall(f.q.lower())[:12] or [f.q.lower()]
            for word in words:
                where.append(ci.c.visitor_text.like(_like(word), escape="\\"))
    return where


LIST_COLUMNS = (
    ci.c.id, ci.c.conversation_id, ci.c.first_ts, ci.c.last_ts, ci.c.message_count, ci.c.visitor_messages,
    ci.c.outcome, ci.c.referred, ci.c.prescreen, ci.c.crisis, ci.c.handoff, ci.c.fallback, ci.c.reviewed,
    ci.c.first_message,
)


def parse_cursor(value: Optional[str]) -> Optional[Tuple[float, int]]:
    """A cursor is "<last activity>_<id>" of the last row shown."""
    try:
        ts, _, row_id = (value or "").partition("_")
        return (float(ts), int(row_id)) if value else None
    except ValueError:
        return None


def make_cursor(row: Mapping[str, Any]) -> str:
    return f"{row['last_ts']!r}_{row['id']}"


def query_page(engine: Engine, f: Filters, cursor: Optional[Tuple[float, int]], limit: int = PAGE_SIZE,
               extra: Sequence[Any] = ()) -> Tuple[List[Dict[str, Any]], Optional[str]]:
    where = conditions(engine, f) + list(extra)
    if cursor:
        where.append(tuple_(ci.c.last_ts, ci.c.id) < tuple_(cursor[0], cursor[1]))
    query = select(*LIST_COLUMNS).where(and_(*where) if where else text("1 = 1"))
    query = query.order_by(ci.c.last_ts.desc(), ci.c.id.desc()).limit(limit + 1)
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(query)]
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (make_cursor(rows[-1]) if more and rows else None)


def tags_for(engine: Engine, conversation_ids: Sequence[str]) -> Dict[str, List[str]]:
    tags: Dict[str, List[str]] = {}
    with engine.connect() as conn:
        for part in _chunks(list(conversation_ids)):
            for cid, tag in conn.execute(
                select(conversation_tags.c.conversation_id, conversation_tags.c.tag)
                .where(conversation_tags.c.conversation_id.in_(part)).order_by(conversation_tags.c.tag)
            ):
                tags.setdefault(cid, []).append(tag)
    return tags


# Crisis conversations nobody has marked reviewed: pinned above the first page of the list.
PINNED = 20
NOT_REVIEWED_CRISIS = (ci.c.crisis == True, ci.c.reviewed == False)  # noqa: E712 (SQL)


def list_page(engine: Engine, tracker: Engine, f: Filters, cursor: Optional[Tuple[float, int]],
              limit: int = PAGE_SIZE, extra: Sequence[Any] = ()) -> Tuple[List[Dict[str, Any]], Optional[str]]:
    """One page of conversations, newest activity first; rows whose events are gone are dropped.
    ``extra``: more conditions (``NOT_REVIEWED_CRISIS``: the pinned rows)."""
    for _ in range(3):
        rows, next_cursor = query_page(engine, f, cursor, limit, extra)
        if not rows:
            return rows, next_cursor
        ids = [r["conversation_id"] for r in rows]
        present = senders_present(tracker, ids)
        gone = [cid for cid in ids if cid not in present]
        if not gone:
            break
        drop_rows(engine, gone)
    else:
        rows = [r for r in rows if r["conversation_id"] in present]
    tags = tags_for(engine, [r["conversation_id"] for r in rows])
    for r in rows:
        r["tags"] = tags.get(r["conversation_id"], [])
    return rows, next_cursor


def count_all(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(ci)).scalar() or 0)


def matching_ids(engine: Engine, f: Filters, limit: int) -> List[str]:
    """The conversation ids of the filtered set, newest first (for an export)."""
    where = conditions(engine, f)
    query = select(ci.c.conversation_id).where(and_(*where) if where else text("1 = 1"))
    query = query.order_by(ci.c.last_ts.desc(), ci.c.id.desc()).limit(limit)
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(query)]
