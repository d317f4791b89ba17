"""The clinic database: what staff act on (handoff requests, urgent flags,
referrals and the waitlist).

Contact details and answers are stored only encrypted (``*_encrypted``
columns hold Fernet tokens, see ``clinic.storage.crypto``); the functions that read
and write referrals live in ``clinic.storage.referrals``.

SQLAlchemy 1.4 Core, one URL setting (``CLINIC_DB_URL``, or ``DATABASE_URL``): a
SQLite file under ``var/`` by default, encrypted whole with SQLCipher (``clinic.storage.encrypted_sqlite``:
the conversation index and its search table included; connections kept open per process, WAL,
a busy timeout of 15 s), PostgreSQL in a larger deployment (a pool of ``DB_POOL_SIZE`` +
``DB_MAX_OVERFLOW`` connections per process). Engines are made on first use, never at
import.
"""

import contextlib
import datetime as dt
import os
import re
import time
import weakref
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    insert,
    select,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import QueuePool

from clinic.storage import encrypted_sqlite

metadata = MetaData()

handoff_requests = Table(
    "handoff_requests",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("conversation_id", String(64), nullable=False, index=True),
    # why a person is wanted: "visitor_request" or "crisis"
    Column("reason", String(32), nullable=False),
    Column("urgent", Boolean, nullable=False, default=False),
    # kind "live": waiting -> live -> handed_back / closed, or cancelled (clinic.rules.handoff);
    # kind "callback" (and the requests of before live chat, kind NULL): new -> in_progress -> closed
    Column("status", String(16), nullable=False, default="new"),
    Column("created_at", DateTime, nullable=False),
    Column("kind", String(16), nullable=True),
    Column("staff_id", Integer, nullable=True),  # who holds a live chat (staff_users.id)
    Column("staff_name", String(64), nullable=True),  # the name the visitor sees
    Column("claimed_at", DateTime, nullable=True),
    Column("ended_at", DateTime, nullable=True),
    Column("updated_at", DateTime, nullable=True),
    # bumped on every change and every message of a live chat: what the visitor's long poll waits on
    Column("version", Integer, nullable=False, default=0, server_default="0"),
    Column("contact_encrypted", Text, nullable=True),  # a callback's name, contact and best time
    Index("ix_handoff_requests_kind_status", "kind", "status", "urgent", "created_at"),
)

conversation_flags = Table(
    "conversation_flags",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("conversation_id", String(64), nullable=False, index=True),
    Column("flag", String(32), nullable=False),  # "crisis": urgent staff review
    Column("created_at", DateTime, nullable=False),
    Column("reviewed", Boolean, nullable=False, default=False),
)

# The console's Urgent view: an item (an urgent flag, or a callback asked after a crisis) marked
# handled by a staff member, with their note (clinic.console.urgent). One row per item.
urgent_handled = Table(
    "urgent_handled",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("item_type", String(16), nullable=False),  # "flag" (conversation_flags) or "callback" (handoff_requests)
    Column("item_id", Integer, nullable=False),
    Column("conversation_id", String(64), nullable=False, index=True),
    Column("handled_at", DateTime, nullable=False),
    Column("user_id", Integer, nullable=True),
    Column("username", String(64), nullable=True),  # kept if the account goes later
    Column("note", Text, nullable=False),
    UniqueConstraint("item_type", "item_id", name="uq_urgent_handled_item"),
)

# A visitor's thumbs up (+1) or down (-1) on the assistant's answer to one of their messages
# (message_id: the id the widget gave that message, kept in the tracker's user event), with what
# was wrong if they said (clinic.storage.ratings). One per answer: a second tap changes it.
answer_ratings = Table(
    "answer_ratings",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("conversation_id", String(64), nullable=False, index=True),
    Column("message_id", String(64), nullable=False),
    Column("rating", Integer, nullable=False),
    Column("comment", Text, nullable=True),
    Column("created_at", DateTime, nullable=False, index=True),
    Column("updated_at", DateTime, nullable=False),
    UniqueConstraint("conversation_id", "message_id", name="uq_answer_rating"),
)

# "Did you mean...?": the topics offered for a message the assistant was unsure about, and the
# one the visitor picked ("something_else" when none fitted). The message itself stays in the
# tracker store (message_id); staff review these picks in the console.
topic_picks = Table(
    "topic_picks",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("conversation_id", String(64), nullable=False, index=True),
    Column("message_id", String(64), nullable=True),  # the visitor's message the offer answered
    Column("offered", String(256), nullable=False),  # the topics offered, space-separated, likeliest first
    Column("picked", String(64), nullable=False),
    Column("created_at", DateTime, nullable=False),
)

# What a visitor message should have been understood as, marked by staff on a transcript or
# proposed from a visitor's "did you mean" pick (clinic.console.corrections): proposed -> accepted (then
# written as training data, clinic.nlu.reviewed_data) or rejected. One per message (event_id: the
# tracker's events.id of the visitor message). The text is the visitor's words, so only sealed
# (Fernet, clinic.storage.crypto), as a person confirmed or edited it on accepting.
corrections = Table(
    "corrections",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("conversation_id", String(255), nullable=False, index=True),
    Column("event_id", BigInteger, nullable=False, unique=True),
    Column("message_id", String(64), nullable=True),  # Rasa's id of the message (what topic_picks names)
    Column("label", String(80), nullable=False),  # faq/<topic>, an intent, crisis, urgent_medical, not_crisis, new_topic
    Column("understood", String(80), nullable=True),  # what the assistant understood (intent or faq/<topic>)
    Column("source", String(16), nullable=False),  # "staff" (marked on a transcript) or "pick" (a visitor's pick)
    Column("status", String(16), nullable=False),  # proposed | accepted | rejected
    Column("text_encrypted", Text, nullable=False),
    Column("proposed_by", String(64), nullable=True),
    Column("proposed_at", DateTime, nullable=False),
    Column("decided_by", String(64), nullable=True),
    Column("decided_at", DateTime, nullable=True),
    Column("written_to", String(255), nullable=True),  # the training data files written on accepting
    Index("ix_corrections_status", "status", "proposed_at"),
)

# One per conversation (unique conversation_id): a reloaded page or a retried
# action finds the referral already made instead of making a second one.
referrals = Table(
    "referrals",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("reference", String(16), nullable=False, unique=True),  # e.g. "K7Q-4M2"
    Column("conversation_id", String(64), nullable=False, index=True, unique=True),
    Column("outcome", String(32), nullable=False),  # "eligible" or "clinician_review"
    Column("urgent", Boolean, nullable=False, default=False),
    Column("status", String(16), nullable=False, default="new"),
    Column("contact_encrypted", Text, nullable=False),
    Column("answers_encrypted", Text, nullable=False),  # {"answers": ..., "reasons": [...]}
    Column("created_at", DateTime, nullable=False),
    Column("notified_at", DateTime, nullable=True),
    Column("notify_attempts", Integer, nullable=False, default=0),
    # the exception class name of the last failed notice, never its message
    Column("last_notify_error", String(64), nullable=True),
)

waitlist = Table(
    "waitlist",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("conversation_id", String(64), nullable=False, index=True, unique=True),
    Column("state", String(2), nullable=False),  # US state code, e.g. "OR"
    Column("contact_encrypted", Text, nullable=False),
    Column("created_at", DateTime, nullable=False),
)


# --- staff console -----------------------------------------------------------

staff_users = Table(
    "staff_users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),
    Column("role", String(16), nullable=False),  # support | clinician | admin
    Column("display_name", String(64), nullable=True),  # shown to visitors in a live chat
    Column("active", Boolean, nullable=False, default=True),
    Column("failed_logins", Integer, nullable=False, default=0),
    Column("locked_until", DateTime, nullable=True),
    Column("created_at", DateTime, nullable=False),
)

staff_sessions = Table(
    "staff_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", Integer, nullable=False, index=True),
    Column("created_at", DateTime, nullable=False),
    Column("last_seen", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", DateTime, nullable=False, index=True),
    Column("user_id", Integer, nullable=True),
    Column("username", String(64), nullable=True),
    Column("action", String(48), nullable=False),  # e.g. view_transcript, view_contact, export, delete
    Column("target_type", String(32), nullable=True),
    Column("target_id", String(128), nullable=True),
    Column("detail", String(255), nullable=True),  # never visitor text
)


# Staff work on a referral (the console's referral queue). Kept beside ``referrals``
# rather than as new columns of it, so that existing databases need no migration.
referral_workflow = Table(
    "referral_workflow",
    metadata,
    Column("reference", String(16), primary_key=True),
    Column("assignee_id", Integer, nullable=True),  # a staff_users.id (clinician or admin)
    Column("updated_at", DateTime, nullable=False),
)

referral_notes = Table(
    "referral_notes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("reference", String(16), nullable=False, index=True),
    Column("user_id", Integer, nullable=True),
    Column("username", String(64), nullable=True),  # kept if the account goes later
    Column("at", DateTime, nullable=False),
    Column("text", Text, nullable=False),
)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


# SQLite: connections kept open per process (opening one, with its pragmas, cost 0.78 ms of a
# 0.23 ms read); more are opened (and closed) only while more threads read or write at once.
SQLITE_POOL_SIZE = 4
SQLITE_MAX_OVERFLOW = 12
SQLITE_BUSY_TIMEOUT_S = 15

_sqlite_engines: "weakref.WeakSet[Engine]" = weakref.WeakSet()


@lru_cache(maxsize=None)
def get_engine(url: str, database_key: Optional[str] = None) -> Engine:
    """One engine per URL for the process, tables created on first use. A SQLite file is opened
    with ``database_key`` (``clinic.storage.encrypted_sqlite``), by default the clinic's."""
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        # a pool of kept connections, each used by one thread at a time (so any thread may take
        # one); a process made by fork() opens its own (see _after_fork)
        engine = encrypted_sqlite.create_engine(
            url,
            database_key,
            poolclass=QueuePool,
            pool_size=SQLITE_POOL_SIZE,
            max_overflow=SQLITE_MAX_OVERFLOW,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S},
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        _sqlite_engines.add(engine)
    else:  # a server database: connections checked before use (a restarted server is reconnected)
        from clinic.settings import get_settings

        settings = get_settings()
        engine = create_engine(
            url, pool_pre_ping=True, pool_size=settings.db_pool_size, max_overflow=settings.db_max_overflow
        )
    _create_tables(engine)
    return engine


SCHEMA_LOCK = 7_245_019  # a PostgreSQL advisory lock key: one process at a time creates tables


def _create_tables(engine: Engine) -> None:
    """Tables, columns and indexes made when missing. On PostgreSQL one process at a time
    (processes starting together on a new database would otherwise collide: "already exists")."""
    if engine.dialect.name != "postgresql":
        encrypted_sqlite.refuse_plain(engine.url)
        _create_sqlite_tables(engine)
        return
    from sqlalchemy.pool import NullPool

    lock_engine = create_engine(engine.url, poolclass=NullPool)
    try:
        with lock_engine.connect() as lock:  # the lock ends with its session at the latest
            lock.exec_driver_sql(f"SELECT pg_advisory_lock({SCHEMA_LOCK})")
            try:
                metadata.create_all(engine)
                add_missing_columns(engine)
            finally:
                lock.exec_driver_sql(f"SELECT pg_advisory_unlock({SCHEMA_LOCK})")
    finally:
        lock_engine.dispose()


# What another process making the same tables at the same moment answers (SQLite has no advisory lock).
CONCURRENT_SCHEMA_ERRORS = ("already exists", "duplicate column", "database is locked")


def _create_sqlite_tables(engine: Engine, attempts: int = 8) -> None:
    """Tables made on a SQLite file that the servers of ``make run``, starting together on a fresh
    machine, all open at once: one makes a table between another's check and its CREATE ("table
    handoff_requests already exists"). The loser tries again, and then finds what the other made."""
    for attempt in range(attempts):
        try:
            metadata.create_all(engine)
            add_missing_columns(engine)
            return
        except OperationalError as e:
            if attempt == attempts - 1 or not any(m in str(e.orig) for m in CONCURRENT_SCHEMA_ERRORS):
                raise
            time.sleep(0.05 * (attempt + 1))


def add_missing_columns(engine: Engine) -> None:
    """Columns added to a table after its database was made (nullable ones, or ones with a
    server default) and new indexes are added in place, so that an existing clinic DB needs
    no manual step."""
    from sqlalchemy import inspect
    from sqlalchemy.schema import CreateColumn

    inspector = inspect(engine)
    with engine.begin() as conn:
        for table in metadata.sorted_tables:
            existing = {c["name"] for c in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name not in existing:
                    ddl = CreateColumn(column).compile(dialect=engine.dialect)
                    conn.exec_driver_sql(f"ALTER TABLE {table.name} ADD COLUMN {ddl}")
            for index in table.indexes:
                index.create(bind=conn, checkfirst=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _after_fork() -> None:
    """In a child made by fork(): the parent's kept SQLite connections are left to the parent,
    unused and unclosed here (SQLite forbids carrying a connection across a fork); the child
    opens its own."""
    for engine in list(_sqlite_engines):
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_after_fork)


# --- statements on the driver's own cursor ----------------------------------------
# For the reads of every visitor turn: SQLAlchemy's layer over a statement (compiled-cache
# lookup, parameters, result proxy) costs more CPU than SQLite's or PostgreSQL's work on it.


def driver_sql(engine: Engine, sql: str) -> str:
    """``sql`` with ``:name`` parameters in the engine's database driver's style (sqlite3 takes
    them as they are; psycopg2 wants ``%(name)s``). No ``%`` or ``:`` elsewhere in ``sql``."""
    return _in_paramstyle(engine.dialect.name, engine.dialect.paramstyle, sql)


@lru_cache(maxsize=64)
def _in_paramstyle(dialect: str, paramstyle: str, sql: str) -> str:
    if dialect == "sqlite":
        return sql
    if paramstyle == "pyformat":
        return re.sub(r":(\w+)", r"%(\1)s", sql)
    raise ValueError(f"no driver statements for {dialect} ({paramstyle} parameters)")


@contextlib.contextmanager
def driver_cursor(engine: Engine) -> Iterator[Any]:
    """A cursor of the driver's own on a connection of the engine's pool (checked before use on
    a database server, as every connection of the pool). The connection goes back to the pool
    rolled back: what is not committed is undone."""
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        try:
            yield cursor
        finally:
            cursor.close()
    finally:
        connection.close()


def record_handoff_request(engine: Engine, conversation_id: str, reason: str, urgent: bool) -> int:
    with engine.begin() as conn:
        result = conn.execute(
            insert(handoff_requests).values(
                conversation_id=conversation_id,
                reason=reason,
                urgent=urgent,
                status="new",
                created_at=utcnow(),
            )
        )
        return int(result.inserted_primary_key[0])


def flag_conversation(engine: Engine, conversation_id: str, flag: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(conversation_flags).values(
                conversation_id=conversation_id, flag=flag, created_at=utcnow(), reviewed=False
            )
        )


def flag_once(engine: Engine, conversation_id: str, flag: str) -> bool:
    """The flag, unless the conversation already has it waiting for review (a visitor who says
    it again gets the resources again, and staff one urgent entry). True if it was added."""
    with engine.begin() as conn:
        waiting = conn.execute(
            select(conversation_flags.c.id).where(
                (conversation_flags.c.conversation_id == conversation_id)
                & (conversation_flags.c.flag == flag)
                & (conversation_flags.c.reviewed == False)  # noqa: E712 (SQL)
            ).limit(1)
        ).first()
        if waiting is not None:
            return False
        conn.execute(
            insert(conversation_flags).values(
                conversation_id=conversation_id, flag=flag, created_at=utcnow(), reviewed=False
            )
        )
        return True


def record_topic_pick(engine: Engine, conversation_id: str, message_id: Optional[str], offered: List[str],
                      picked: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(topic_picks).values(
                conversation_id=conversation_id, message_id=message_id, offered=" ".join(offered)[:256],
                picked=picked[:64], created_at=utcnow(),
            )
        )


def topic_picks_for(engine: Engine, conversation_id: str) -> List[Dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(topic_picks).where(topic_picks.c.conversation_id == conversation_id).order_by(topic_picks.c.id)
        )
        return [dict(r._mapping) for r in rows]


def handoff_requests_for(engine: Engine, conversation_id: str) -> List[Dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(handoff_requests)
            .where(handoff_requests.c.conversation_id == conversation_id)
            .order_by(handoff_requests.c.id)
        )
        return [dict(r._mapping) for r in rows]


def flags_for(engine: Engine, conversation_id: str, flag: Optional[str] = None) -> List[Dict[str, Any]]:
    query = select(conversation_flags).where(conversation_flags.c.conversation_id == conversation_id)
    if flag:
        query = query.where(conversation_flags.c.flag == flag)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query.order_by(conversation_flags.c.id))]


# --- staff console: the conversation list ------------------------------------
# An index of the tracker store's conversations (one row per sender_id), kept up
# to date incrementally by clinic.console.conversation_index, with the staff's
# tags, notes and reviewed mark. On SQLite a full-text table over visitor_text
# (conversation_fts, FTS5) is created beside it by that module.

conversation_index = Table(
    "conversation_index",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("conversation_id", String(255), nullable=False, unique=True),
    Column("first_ts", Float, nullable=False),  # epoch seconds, as in the tracker store
    Column("last_ts", Float, nullable=False),  # last activity
    Column("message_count", Integer, nullable=False, default=0),  # visitor + bot messages
    Column("visitor_messages", Integer, nullable=False, default=0),
    Column("outcome", String(32), nullable=True),  # last prescreen_outcome set
    Column("referral_reference", String(16), nullable=True),
    Column("referred", Boolean, nullable=False, default=False),
    Column("prescreen", Boolean, nullable=False, default=False),  # a pre-screen was started
    Column("crisis", Boolean, nullable=False, default=False),
    Column("handoff", Boolean, nullable=False, default=False),
    Column("fallback", Boolean, nullable=False, default=False),
    Column("reviewed", Boolean, nullable=False, default=False),
    Column("reviewed_at", DateTime, nullable=True),
    Column("reviewed_by", String(64), nullable=True),
    Column("active_form", String(64), nullable=True),  # the form active after the last event read
    Column("first_message", String(200), nullable=True),  # the visitor's first real question (shortened)
    Column("visitor_text", Text, nullable=False, default=""),  # searchable visitor text, lower case
    Column("last_event_id", Integer, nullable=False, default=0),  # the last tracker events.id applied
    # the visitor's last message while its turn's events may still show it filled a form slot
    # (an answer: never indexed); clinic.console.conversation_index
    Column("pending_text", Text, nullable=True),
    # whether pending_text may be the first question: typed, and not a greeting or a yes/no
    Column("pending_question", Boolean, nullable=True),
    Index("ix_conversation_index_recent", "last_ts", "id"),
    Index("ix_conversation_index_outcome", "outcome", "last_ts", "id"),
    Index("ix_conversation_index_referred", "referred", "last_ts", "id"),
    Index("ix_conversation_index_crisis", "crisis", "last_ts", "id"),
    Index("ix_conversation_index_handoff", "handoff", "last_ts", "id"),
    Index("ix_conversation_index_fallback", "fallback", "last_ts", "id"),
    Index("ix_conversation_index_reviewed", "reviewed", "last_ts", "id"),
)

# Where the index is in the tracker store: name "events" -> the last events.id read.
conversation_index_state = Table(
    "conversation_index_state",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("value", BigInteger, nullable=False, default=0),
)

conversation_tags = Table(
    "conversation_tags",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("conversation_id", String(255), nullable=False),
    Column("tag", String(40), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("created_by", String(64), nullable=True),
    UniqueConstraint("conversation_id", "tag", name="uq_conversation_tag"),
    Index("ix_conversation_tags_tag", "tag", "conversation_id"),
)

conversation_notes = Table(
    "conversation_notes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("conversation_id", String(255), nullable=False, index=True),
    Column("author_id", Integer, nullable=True),
    Column("author", String(64), nullable=True),  # kept if the account goes later
    Column("created_at", DateTime, nullable=False),
    Column("body", Text, nullable=False),
)
