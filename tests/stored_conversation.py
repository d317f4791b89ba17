"""A conversation put in the tracker store as Rasa would have stored it, for the actions that read
the stored conversation rather than the one posted to them (the referral action)."""

import json
import time
from typing import Any, Dict, List, Optional

from rasa_sdk import Tracker

from clinic.settings import get_settings
from tests import encrypted_db

TRACKER_DDL = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER NOT NULL, sender_id VARCHAR(255) NOT NULL, type_name VARCHAR(255) NOT NULL,
    timestamp FLOAT, intent_name VARCHAR(255), action_name VARCHAR(255), data TEXT, PRIMARY KEY (id)
);
CREATE INDEX IF NOT EXISTS ix_events_sender_id ON events (sender_id);
"""

TURN_SLOTS = ("contact_consent",)  # answered in the turn that runs the referral action: not stored yet


def store_events(sender_id: str, events: List[Dict[str, Any]]) -> None:
    """Events appended to the settings' tracker store (an encrypted SQLite file)."""
    path = get_settings().tracker_db_url[len("sqlite:///"):]
    with encrypted_db.connect(path, get_settings().var_dir) as conn:
        conn.executescript(TRACKER_DDL)
        for e in events:
            conn.execute(
                "INSERT INTO events (sender_id, type_name, timestamp, action_name, data) VALUES (?, ?, ?, ?, ?)",
                (sender_id, e["event"], e["timestamp"], e.get("name"), json.dumps(e)),
            )


def stored_events(sender_id: str) -> List[Dict[str, Any]]:
    path = get_settings().tracker_db_url[len("sqlite:///"):]
    with encrypted_db.connect(path, get_settings().var_dir) as conn:
        conn.executescript(TRACKER_DDL)
        rows = conn.execute("SELECT data FROM events WHERE sender_id = ? ORDER BY id", (sender_id,)).fetchall()
    return [json.loads(r[0]) for r in rows]


def as_stored(tracker: Tracker, stored_slots: Optional[Dict[str, Any]] = None) -> Tracker:
    """``tracker`` with its slots (or ``stored_slots``) stored as the turns before this one (the
    contact form active at their end; once: a second call finds them), and posted with this turn's
    answer to the consent question."""
    now = time.time()
    stored = stored_events(tracker.sender_id)
    if not stored:
        slots = dict(tracker.slots if stored_slots is None else stored_slots)
        stored = [{"event": "action", "name": "action_session_start", "timestamp": now - 60}]
        stored += [{"event": "slot", "name": name, "value": value, "timestamp": now - 50}
                   for name, value in slots.items() if name not in TURN_SLOTS]
        stored.append({"event": "active_loop", "name": "contact_form", "timestamp": now - 40})
        store_events(tracker.sender_id, stored)
    turn = [{"event": "user", "text": "yes", "timestamp": now}]
    turn += [{"event": "slot", "name": name, "value": tracker.slots.get(name), "timestamp": now}
             for name in TURN_SLOTS if name in tracker.slots]
    return Tracker(tracker.sender_id, dict(tracker.slots), tracker.latest_message, stored + turn, False, None, {}, None)
