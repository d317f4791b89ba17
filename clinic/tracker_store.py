"""Rasa's SQL tracker store: connections kept, and checked before use on a database server.

Both endpoints name it (``endpoints.yml``: the embedded SQLite file; ``endpoints.scale.yml``:
PostgreSQL), and importing it installs clinic/rasa_speedups.py in the Rasa server.

**PostgreSQL.** Rasa 3.6's ``SQLTrackerStore`` keeps a pool of connections (50, plus up to 100
more: ``SQL_POOL_SIZE`` and ``SQL_MAX_OVERFLOW``) and never tests them. After the database
restarts, the next read on each pooled connection fails, and Rasa then answers that message
from an empty in-memory tracker (its fail-safe store): the visitor's conversation is forgotten
for that turn. With ``pool_pre_ping`` a dead connection is noticed and replaced before it is
used, so the first message after a restart is answered from the real conversation.

**SQLite.** SQLAlchemy 1.4 opens and closes a new SQLite connection for every read and every
save of a tracker, and each commit waits for a full sync of the file; in WAL mode the last
connection's close also checkpoints the log into the file. Here the connections are kept (a
small pool: Rasa reads and saves on its one event loop thread), the file is in WAL mode, and
commits use ``synchronous=NORMAL``: in WAL mode a commit is still atomic and the database never
corrupt after a crash of the process or the machine, but a power cut may lose the last commits
(not more than the WAL since the last checkpoint). Other processes reading or backing up the same
file (the staff console, ``clinic.backup``) work as before: WAL lets readers and the one writer
go on together, and a writer waits up to ``SQLITE_BUSY_TIMEOUT_S`` for another one.

**Each turn** Rasa reads the conversation's current session and, to save, counts what is stored
of it and inserts the rest. Rasa does both with ORM queries built and compiled again every time
(more CPU than the database's work); here the same SQL statements, with the same results, are
written once and run on a connection of the pool (``_retrieve`` and ``save``; the rest is Rasa's).
(Rasa's ORM sessions also check, each time, that a ``POSTGRESQL_SCHEMA`` named in the environment
exists; these two do not, and use it all the same: Rasa sets it as the connections' search path.)

endpoints.yml::

    tracker_store:
      type: clinic.tracker_store.SQLTrackerStore
      dialect: "sqlite"
      db: "var/tracker.db"
"""

import itertools
import json
from typing import Any, Dict, Optional, Text

import sqlalchemy as sa
from rasa.core import tracker_store as rasa_tracker_store
from rasa.shared.core.events import Event, SessionStarted
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import INTENT_NAME_KEY

import clinic.rasa_speedups

clinic.rasa_speedups.install()

# how long a save waits for another process's write to end (Python's sqlite3 default, as before)
SQLITE_BUSY_TIMEOUT_S = 5.0
# connections kept open to the SQLite file; more are opened (and closed) only if ever needed at once
SQLITE_POOL_SIZE = 2

# the events of a conversation's latest session (from its last session_started on, or all when
# there is none yet), as Rasa's SQLTrackerStore._event_query selects them
_CURRENT_SESSION = """
    FROM events, (SELECT max(timestamp) AS session_start FROM events
                  WHERE sender_id = :sender_id AND type_name = :session_started) AS latest
    WHERE events.sender_id = :sender_id
      AND (events.timestamp >= latest.session_start OR latest.session_start IS NULL)"""
SESSION_EVENTS = sa.text(f"SELECT events.data {_CURRENT_SESSION} ORDER BY events.id")
SESSION_EVENT_COUNT = sa.text(f"SELECT count(*) {_CURRENT_SESSION}")
ALL_EVENTS = sa.text("SELECT data FROM events WHERE sender_id = :sender_id ORDER BY id")


class SQLTrackerStore(rasa_tracker_store.SQLTrackerStore):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # connects (waiting for the database) and makes the table
        url = self.engine.url
        self.engine.dispose()
        self.engine = create_engine(url)
        self.sessionmaker = sa.orm.session.sessionmaker(bind=self.engine)
        self._insert = self.SQLEvent.__table__.insert()

    async def _retrieve(self, sender_id: Text, fetch_events_from_all_sessions: bool) -> Optional[DialogueStateTracker]:
        query = ALL_EVENTS if fetch_events_from_all_sessions else SESSION_EVENTS
        with self.engine.connect() as conn:
            rows = conn.execute(query, _params(sender_id)).scalars().all()
        if not self.domain or not rows:
            return None
        return DialogueStateTracker.from_dict(sender_id, [json.loads(data) for data in rows], self.domain.slots)

    async def save(self, tracker: DialogueStateTracker) -> None:
        await self.stream_events(tracker)
        with self.engine.begin() as conn:
            stored = conn.execute(SESSION_EVENT_COUNT, _params(tracker.sender_id)).scalar()
            new = itertools.islice(tracker.events, stored, len(tracker.events))
            rows = [_row(tracker.sender_id, event) for event in new]
            if rows:
                conn.execute(self._insert, rows)


def _params(sender_id: Text) -> Dict[str, Any]:
    return {"sender_id": sender_id, "session_started": SessionStarted.type_name}


def _row(sender_id: Text, event: Event) -> Dict[str, Any]:
    """An event's row, as Rasa's SQLTrackerStore.save writes it."""
    data = event.as_dict()
    return {
        "sender_id": sender_id,
        "type_name": event.type_name,
        "timestamp": data.get("timestamp"),
        "intent_name": data.get("parse_data", {}).get("intent", {}).get(INTENT_NAME_KEY),
        "action_name": data.get("name"),
        "data": json.dumps(data),
    }


def create_engine(url: sa.engine.URL) -> sa.engine.Engine:
    """The tracker store's engine for ``url``: see the module's docstring."""
    if url.get_backend_name() != "sqlite":
        return sa.create_engine(url, pool_pre_ping=True, **rasa_tracker_store.create_engine_kwargs(url))
    if url.database in (None, "", ":memory:"):
        raise ValueError("the SQLite tracker store needs a file (db: in the endpoints)")
    engine = sa.create_engine(
        url,
        poolclass=sa.pool.QueuePool,
        pool_size=SQLITE_POOL_SIZE,
        max_overflow=8,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False},
    )
    sa.event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")  # a property of the file: a no-op once set
        cursor.execute("PRAGMA synchronous=NORMAL")  # of this connection
    finally:
        cursor.close()
