"""Rasa's tracker store read by the clinic's own processes: the staff console, and the action
server's referral action, which trusts the stored conversation rather than the one posted to it.

The engine is read-only on SQLite (the console never writes to what Rasa writes; WAL lets it read
while Rasa writes) and on the encrypted file (``clinic.storage.encrypted_sqlite``); on PostgreSQL it is
an ordinary pooled engine with connections checked before use. Nothing here imports Rasa (the
action server does without it).
"""

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from clinic.storage import encrypted_sqlite

# the events of a conversation's latest session (from its last session_started on, or all when
# there is none yet), as Rasa's SQLTrackerStore._event_query selects them (clinic.rasa_runtime.tracker_store
# runs the same statements)
CURRENT_SESSION = """
    FROM events, (SELECT max(timestamp) AS session_start FROM events
                  WHERE sender_id = :sender_id AND type_name = :session_started) AS latest
    WHERE events.sender_id = :sender_id
      AND (events.timestamp >= latest.session_start OR latest.session_start IS NULL)"""
SESSION_EVENTS = f"SELECT events.id, events.data {CURRENT_SESSION} ORDER BY events.id"


def reader(url: str) -> Engine:
    """An engine that reads the tracker store at ``url`` (see the module's docstring)."""
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///"):]
        if Path(path).exists():  # WAL is a property of the file: set it once, with a short writable connection
            conn = encrypted_sqlite.connect(path, timeout=5)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
            except encrypted_sqlite.Error:
                pass
            finally:
                conn.close()
        return encrypted_sqlite.create_engine(f"sqlite:///file:{path}?mode=ro&uri=true",
                                              connect_args={"check_same_thread": False})
    return sa.create_engine(url, pool_pre_ping=True)


@lru_cache(maxsize=None)
def shared_reader(url: str) -> Engine:
    """One ``reader`` per URL for the process (the action server's)."""
    return reader(url)


def session_events(engine: Engine, sender_id: str) -> List[Dict[str, Any]]:
    """The stored events of the conversation's latest session, in order (empty when none are)."""
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text(SESSION_EVENTS), {"sender_id": sender_id, "session_started": "session_started"})
            return [json.loads(data) for _, data in rows]
    except (sa.exc.OperationalError, sa.exc.ProgrammingError):  # no events table yet
        return []


def slots_after(events: List[Mapping[str, Any]]) -> Dict[str, Any]:
    """The slots as the events leave them (a slot event sets one; a reset or restart clears all)."""
    slots: Dict[str, Any] = {}
    for event in events:
        kind = event.get("event")
        if kind == "slot" and isinstance(event.get("name"), str):
            slots[event["name"]] = event.get("value")
        elif kind in ("reset_slots", "restart"):
            slots.clear()
    return slots


def active_loop_after(events: List[Mapping[str, Any]]) -> Optional[str]:
    """The form active once the events are applied (None: none)."""
    active: Optional[str] = None
    for event in events:
        kind = event.get("event")
        if kind == "active_loop":
            active = event.get("name")
        elif kind == "restart":
            active = None
    return active
