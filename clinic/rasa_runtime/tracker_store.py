"""Rasa's SQL tracker store: connections kept, and checked before use on a database server.

Both endpoints name it (``endpoints.yml``: the embedded SQLite file; ``endpoints.scale.yml``:
PostgreSQL).

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
file (the staff console, ``clinic.storage.backup``) work as before: WAL lets readers and the one writer
go on together, and a writer waits up to ``SQLITE_BUSY_TIMEOUT_S`` for another one.

**Each turn** Rasa reads the conversation's current session and, to save, counts what is stored
of it and inserts the rest. Rasa does both with ORM queries built and compiled again every time
(more CPU than the database's work); here the same SQL statements, with the same results, are
written once and run with the database driver's own cursor on a connection of the pool
(``_retrieve`` and ``save``; the rest is Rasa's).
(Rasa's ORM sessions also check, each time, that a ``POSTGRESQL_SCHEMA`` named in the environment
exists; these two do not, and use it all the same: Rasa sets it as the connections' search path.)

**The tracker a turn saved** is kept in the process (``KEPT_TRACKERS`` conversations at most, the
least recently used go) and is the next read of that conversation, instead of the query, the JSON
of each event and Rasa replaying them into a new tracker, when it is provably what that read
would give:

- the tracker saved is the very object this store read (or the conversation had no event when it
  was read), and, in the save's transaction, the database still held what that read found (the
  conversation's last row, id and data: then the count of what is stored is the count read): the
  rows after the save are those read plus the events the save added, in the tracker's order;
- those events are all of the latest session as Rasa selects it (none of them older than the
  latest ``session_started``: not so for the turn that starts a new session), no event history
  limit, the store's domain's slots;
- when it is read again, the conversation's last row (one indexed query) is still the one the
  save wrote and the tracker has no event more than it had then (another Rasa server's turn, a
  deletion or purge by the staff console, a restore from a backup all change the last row; ids
  may come again after a deletion, the data with them does not).

When the last row has changed because another Rasa server took turns of the conversation (the web
app moves a conversation to the less busy server), the kept tracker catches up instead: the rows
from its last one on are read (one statement: the kept last row must come first, unchanged) and the
events after it applied to the tracker as Rasa's read replays them, one after another. Not when
they start a new session or hold an event Rasa's read would leave out (older than the session's
start) or cannot read back: then the whole session is read. A replay of N events is the replay of
the first N - k followed by the last k, so the tracker is then what the read gives.

A kept tracker is handed out once: the turn that reads it changes it, and a turn that fails
half-way leaves nothing behind (the next read is from the database). Trackers read from all
sessions (``retrieve_full_tracker``) always come from the database. What this rests on: a
conversation's rows are only ever deleted all together (the console's deletion and purge), a
restore is refused while a Rasa server holds the file (a restarted one keeps nothing), and Rasa
changes a tracker only by adding events to it (a change after the last save shows as events
more than saved). What clinic/rasa_runtime/patches/tracker_caches.py works out on a tracker (when
installed) goes with it.
tests/test_tracker_cache.py compares every turn of the bench's visitors with a read by Rasa's own
store.

**Encrypted.** A SQLite tracker store is a SQLCipher file (``clinic.storage.encrypted_sqlite``: the
events, the WAL and the journal encrypted whole with the key derived from the clinic's
``CLINIC_ENCRYPTION_KEY``); ``dialect: "sqlite"`` in the endpoints is opened so, and a plain file
is refused (``python -m clinic.storage.encrypt_existing`` converts it). The statements above run on it
unchanged. On PostgreSQL the database's own storage encryption and TLS protect the events
(docs/DEPLOYMENT.md, SECURITY.md).

endpoints.yml::

    tracker_store:
      type: clinic.rasa_runtime.tracker_store.SQLTrackerStore
      dialect: "sqlite"
      db: "var/tracker.db"
"""

import contextlib
import itertools
import json
import math
import re
from collections import OrderedDict
from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Text, Tuple

import sqlalchemy as sa
from rasa.core import tracker_store as rasa_tracker_store
from rasa.shared.core import events as rasa_events
from rasa.shared.core.events import Event, SessionStarted
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import INTENT_NAME_KEY

from clinic.storage import encrypted_sqlite
from clinic.storage.tracker_reader import CURRENT_SESSION

# how long a save waits for another process's write to end (Python's sqlite3 default, as before)
SQLITE_BUSY_TIMEOUT_S = 5.0
# connections kept open to the SQLite file; more are opened (and closed) only if ever needed at once
SQLITE_POOL_SIZE = 2
# conversations whose tracker a process keeps after a save (the least recently saved or read go
# first): a tracker with what Rasa works out on it takes 150-700 KiB (bench visitors, 30-250 events)
KEPT_TRACKERS = 64

# the events of a conversation's latest session, as Rasa's SQLTrackerStore._event_query selects them
_CURRENT_SESSION = CURRENT_SESSION
SESSION_EVENTS = f"SELECT events.id, events.data {_CURRENT_SESSION} ORDER BY events.id"
SESSION_EVENT_COUNT = f"SELECT count(*) {_CURRENT_SESSION}"
ALL_EVENTS = "SELECT data FROM events WHERE sender_id = :sender_id ORDER BY id"
# the conversation's last row (the index on sender_id holds the ids: no scan)
LAST_EVENT = "SELECT id, data FROM events WHERE id = (SELECT max(id) FROM events WHERE sender_id = :sender_id)"
# the conversation's rows from a given one on, in order (what a kept tracker lacks: another server's turns)
ROWS_SINCE = "SELECT id, type_name, timestamp, data FROM events WHERE sender_id = :sender_id AND id >= :id ORDER BY id"
INSERT_EVENT = ("INSERT INTO events (sender_id, type_name, timestamp, intent_name, action_name, data) "
                "VALUES (:sender_id, :type_name, :timestamp, :intent_name, :action_name, :data)")


class Known(NamedTuple):
    """What the database held of a conversation when this store last read or saved ``tracker``
    (``None``: nothing was stored); ``servable``: a save left it, nobody has read it since."""

    tracker: Optional[DialogueStateTracker]
    events: int  # how many events of the latest session were stored (the tracker had then)
    last: Optional[tuple]  # the conversation's last row: (id, data), None when there was none
    domain: Any
    servable: bool


class SQLTrackerStore(rasa_tracker_store.SQLTrackerStore):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # connects (waiting for the database) and makes the table
        url = self.engine.url
        self.engine.dispose()
        self.engine = create_engine(url)
        self.sessionmaker = sa.orm.session.sessionmaker(bind=self.engine)
        self._sqlite = url.get_backend_name() == "sqlite"
        self._sql = {name: _for_driver(sql, self._sqlite) for name, sql in (
            ("session", SESSION_EVENTS), ("count", SESSION_EVENT_COUNT), ("all", ALL_EVENTS),
            ("last", LAST_EVENT), ("since", ROWS_SINCE), ("insert", INSERT_EVENT))}
        self._known: "OrderedDict[Text, Known]" = OrderedDict()  # see the module's docstring

    @staticmethod
    def get_db_url(dialect: Text = "sqlite", host: Optional[Text] = None, port: Optional[int] = None,
                   db: Text = "rasa.db", username: Optional[Text] = None, password: Optional[Text] = None,
                   login_db: Optional[Text] = None, query: Optional[Dict] = None) -> Any:
        """Rasa's URL; a SQLite one as the encrypted file's, with the key derived from the clinic's
        (or, given as the endpoint's ``password``, a raw SQLCipher key: the tests' in-process Rasa
        on a test stack's file)."""
        sqlite = dialect == "sqlite" and not (host and "://" in host)
        url = rasa_tracker_store.SQLTrackerStore.get_db_url(dialect, host, port, db, username,
                                                             None if sqlite else password, login_db, query)
        url = sa.engine.make_url(url) if isinstance(url, str) else url
        if url.get_backend_name() != "sqlite":
            return url
        encrypted = encrypted_sqlite.engine_url(url, password if sqlite and password else None)
        encrypted_sqlite.refuse_plain(encrypted)
        return encrypted

    @contextlib.contextmanager
    def _cursor(self) -> Iterator[Tuple[Any, Any]]:
        """A connection of the pool and a cursor, the database driver's own: SQLAlchemy's layer
        over each statement costs more CPU than these statements take in the database. The
        connection goes back to the pool rolled back: what is not committed is undone."""
        connection = self.engine.raw_connection()
        try:
            yield connection, connection.cursor()
        finally:
            connection.close()

    def _last(self, cursor: Any, params: Dict[str, Any]) -> Optional[tuple]:
        cursor.execute(self._sql["last"], params)
        row = cursor.fetchone()
        return (row[0], row[1]) if row is not None else None

    async def _retrieve(self, sender_id: Text, fetch_events_from_all_sessions: bool) -> Optional[DialogueStateTracker]:
        params = _params(sender_id)
        if fetch_events_from_all_sessions:
            with self._cursor() as (_, cursor):
                cursor.execute(self._sql["all"], params)
                rows = cursor.fetchall()
            if not self.domain or not rows:
                return None
            return DialogueStateTracker.from_dict(sender_id, [json.loads(data) for data, in rows], self.domain.slots)
        known = self._known.pop(sender_id, None)
        kept = known is not None and known.servable and known.last is not None and known.domain is self.domain \
            and len(known.tracker.events) == known.events
        with self._cursor() as (connection, cursor):
            if kept:
                last = self._last(cursor, params)
                if last == known.last:  # nothing stored since this store's save
                    return self._hand_out(sender_id, known.tracker, known.events, last)
                if last is not None and last[0] > known.last[0]:  # rows added since: another server's turns
                    cursor.execute(self._sql["since"], {"sender_id": sender_id, "id": known.last[0]})
                    rows = cursor.fetchall()
                    if _caught_up(known, rows):
                        return self._hand_out(sender_id, known.tracker, known.events + len(rows) - 1,
                                              (rows[-1][0], rows[-1][3]))
            if self._sqlite:  # one snapshot of the file: the session's events and the last row
                cursor.execute("BEGIN")
            cursor.execute(self._sql["session"], params)
            rows = cursor.fetchall()
            last = self._last(cursor, params)
            connection.commit()
        if not self.domain or not rows:
            if self.domain:
                self._remember(sender_id, Known(None, 0, last, self.domain, False))
            return None
        tracker = DialogueStateTracker.from_dict(sender_id, [json.loads(data) for _, data in rows], self.domain.slots)
        self._remember(sender_id, Known(tracker, len(rows), last, self.domain, False))
        return tracker

    def _hand_out(self, sender_id: Text, tracker: DialogueStateTracker, events: int, last: tuple) -> DialogueStateTracker:
        """``tracker``, kept, as a read gives it: remembered as read, to be handed out once."""
        tracker.model_id = tracker.assistant_id = None  # as read: the processor sets them
        self._remember(sender_id, Known(tracker, events, last, self.domain, False))
        return tracker

    async def save(self, tracker: DialogueStateTracker) -> None:
        sender_id = tracker.sender_id
        params = _params(sender_id)
        known = self._known.pop(sender_id, None)
        await self.stream_events(tracker)
        read_by_us = bool(self.domain) and known is not None and known.domain is self.domain and (
            known.tracker is tracker or (known.tracker is None and known.last is None))
        keep = None
        with self._cursor() as (connection, cursor):
            if self._sqlite:  # the file's write lock from here: the checks below hold until the commit
                cursor.execute("BEGIN IMMEDIATE")
            if read_by_us:
                read_by_us = self._last(cursor, params) == known.last
            if read_by_us:  # the rows are those read (the module's docstring): nothing to count
                stored = known.events
            else:
                cursor.execute(self._sql["count"], params)
                stored = cursor.fetchone()[0]
            new = itertools.islice(tracker.events, stored, len(tracker.events))
            rows = [_row(sender_id, event) for event in new]
            if rows:
                cursor.executemany(self._sql["insert"], rows)
            if read_by_us and stored == known.events and self._keepable(tracker):
                last = self._last(cursor, params) if rows else known.last
                if not rows or (last is not None and last[1] == rows[-1]["data"]):
                    keep = Known(tracker, len(tracker.events), last, self.domain, True)
            connection.commit()
        if keep is not None:
            self._remember(sender_id, keep)

    def _keepable(self, tracker: DialogueStateTracker) -> bool:
        """Whether a read of the tracker's events once saved gives this tracker (module docstring)."""
        if type(tracker) is not DialogueStateTracker or tracker._max_event_history is not None \
                or tracker.sender_source is not None or tracker.is_rule_tracker:
            return False
        if list(tracker.slots) != [slot.name for slot in self.domain.slots]:
            return False
        times = [e.timestamp for e in tracker.events]
        if not all((type(t) is float or type(t) is int) and math.isfinite(t) for t in times):
            return False
        starts = [e.timestamp for e in tracker.events if type(e) is SessionStarted]
        return not starts or min(times, default=0) >= max(starts)

    def _remember(self, sender_id: Text, known: Known) -> None:
        self._known[sender_id] = known
        self._known.move_to_end(sender_id)
        while len(self._known) > KEPT_TRACKERS:
            self._known.popitem(last=False)


def _caught_up(known: Known, rows: List[tuple]) -> bool:
    """Whether the kept tracker, with the events of ``rows`` after ``known.last`` (the
    conversation's rows from that one on: id, type, timestamp, data) applied as Rasa replays them,
    is what a read gives now; if so it has them. Not when the rows start a new session (or hold
    one Rasa's read would leave out: older than the session's start), when the kept last row is not
    the first of them (a deletion), or when an event cannot be read back."""
    if len(rows) < 2 or (rows[0][0], rows[0][3]) != known.last:
        return False
    tracker, new = known.tracker, rows[1:]
    start = next((e.timestamp for e in reversed(tracker.events) if type(e) is SessionStarted), None)
    for _, type_name, timestamp, _ in new:
        if type_name == SessionStarted.type_name or (
                start is not None and not (timestamp is not None and timestamp >= start)):
            return False
    events = rasa_events.deserialise_events([json.loads(data) for *_, data in new])
    if len(events) != len(new):
        return False
    for event in events:
        tracker.update(event)
    return True


def _params(sender_id: Text) -> Dict[str, Any]:
    return {"sender_id": sender_id, "session_started": SessionStarted.type_name}


def _for_driver(sql: Text, sqlite: bool) -> Text:
    """A statement with ``:name`` parameters in the database driver's style (sqlite3 takes them
    as they are; psycopg2 wants ``%(name)s``)."""
    return sql if sqlite else re.sub(r":(\w+)", r"%(\1)s", sql)


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
    engine = encrypted_sqlite.create_engine(
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
