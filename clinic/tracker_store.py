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

endpoints.yml::

    tracker_store:
      type: clinic.tracker_store.SQLTrackerStore
      dialect: "sqlite"
      db: "var/tracker.db"
"""

from typing import Any

import sqlalchemy as sa
from rasa.core import tracker_store as rasa_tracker_store

import clinic.rasa_speedups

clinic.rasa_speedups.install()

# how long a save waits for another process's write to end (Python's sqlite3 default, as before)
SQLITE_BUSY_TIMEOUT_S = 5.0
# connections kept open to the SQLite file; more are opened (and closed) only if ever needed at once
SQLITE_POOL_SIZE = 2


class SQLTrackerStore(rasa_tracker_store.SQLTrackerStore):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # connects (waiting for the database) and makes the table
        url = self.engine.url
        self.engine.dispose()
        self.engine = create_engine(url)
        self.sessionmaker = sa.orm.session.sessionmaker(bind=self.engine)


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
