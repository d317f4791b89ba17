"""The visitor's handoff state of every turn (``clinic.rules.handoff.visitor_state``: one statement on
the database driver's own cursor) gives what the two SQLAlchemy reads it replaced gave, on SQLite
and on PostgreSQL, for tables of every kind of row; and how it reads (never waiting for a
writer on SQLite, reconnected after a PostgreSQL restart)."""

import asyncio
import datetime as dt
import random
import sqlite3
import threading
from pathlib import Path
from typing import Any, Dict, List

import pytest
from sqlalchemy import bindparam, insert, or_, select

from clinic.storage import db
from clinic.rules import handoff
from clinic.storage.db import handoff_requests
from clinic.rules.handoff import ACTIVE, LIVE, LIVE_KIND, WAITING

from tests import encrypted_db

STATUSES = ("waiting", "live", "handed_back", "closed", "cancelled", "new", "in_progress")
KINDS = ("live", "live", "live", "callback", None)


# --- the reads it replaced (clinic/rules/handoff.py before), the reference ------------------------

_ACTIVE_STATE = (
    select(handoff_requests.c.id, handoff_requests.c.status, handoff_requests.c.staff_name, handoff_requests.c.version)
    .where(
        handoff_requests.c.conversation_id == bindparam("conversation_id"),
        handoff_requests.c.kind == LIVE_KIND,
        or_(*(handoff_requests.c.status == status for status in ACTIVE)),
    )
    .order_by(handoff_requests.c.id.desc())
    .limit(1)
)
_QUEUE_IDS = (
    select(handoff_requests.c.id)
    .where(handoff_requests.c.kind == LIVE_KIND, handoff_requests.c.status == WAITING)
    .order_by(handoff_requests.c.urgent.desc(), handoff_requests.c.created_at, handoff_requests.c.id)
)


def reference_state(engine: Any, conversation_id: str) -> Dict[str, Any]:
    with engine.begin() as conn:
        found = conn.execute(_ACTIVE_STATE, {"conversation_id": conversation_id}).first()
        if found is None:
            return {"mode": "assistant", "agent": None, "position": None, "version": 0}
        row = dict(found._mapping)
        if row["status"] == LIVE:
            return {"mode": "person", "agent": row["staff_name"], "position": None, "version": row["version"], "request": row["id"]}
        ids = [r.id for r in conn.execute(_QUEUE_IDS)]
    return {"mode": "waiting", "agent": None, "position": ids.index(row["id"]) + 1, "version": row["version"], "request": row["id"]}


# --- tables of every kind of row ---------------------------------------------------------------


def random_rows(seed: int, count: int) -> List[Dict[str, Any]]:
    """Rows as the web app, the action server and the console leave them, and more: several
    requests per conversation (ended ones, and now and then two active ones), callbacks, rows of
    before live chat (kind NULL), urgent ones, and creation times shared by several rows."""
    rng = random.Random(seed)
    base = dt.datetime(2026, 11, 27, 9, 0, 0, 123456)
    times = [base + dt.timedelta(seconds=rng.randrange(0, 40), microseconds=rng.choice((0, 1, 500000))) for _ in range(12)]
    rows = []
    for _ in range(count):
        status = rng.choice(STATUSES)
        rows.append({
            "conversation_id": f"c{rng.randrange(25)}", "reason": rng.choice(("visitor_request", "crisis")),
            "urgent": rng.random() < 0.3, "status": status, "created_at": rng.choice(times),
            "kind": rng.choice(KINDS), "staff_id": 3 if status == LIVE else None,
            "staff_name": rng.choice(("Dana", "Lee", None)) if status in (LIVE, "handed_back", "closed") else None,
            "version": rng.randrange(0, 9),
        })
    return rows


def assert_same_states(engine: Any, seeds: range, count: int) -> None:
    modes = set()
    for seed in seeds:
        with engine.begin() as conn:
            conn.execute(handoff_requests.delete())
            conn.execute(insert(handoff_requests), random_rows(seed, count))
        for cid in [f"c{n}" for n in range(25)] + ["nobody", "", "c1' OR 1=1 --"]:
            state = handoff.visitor_state(engine, cid)
            assert state == reference_state(engine, cid), (seed, cid)
            modes.add(state["mode"])
    assert modes == {"assistant", "waiting", "person"}  # each kind of answer was compared


@pytest.fixture
def engine(clinic_env: Path) -> Any:
    from clinic.settings import get_settings

    return db.get_engine(get_settings().clinic_db_url)


def test_the_state_on_sqlite_is_what_the_two_reads_gave(engine: Any) -> None:
    assert_same_states(engine, range(40), 60)


def test_the_state_of_a_queue_of_one_and_of_none(engine: Any) -> None:
    assert handoff.visitor_state(engine, "a") == reference_state(engine, "a")
    row = handoff.request_live(engine, "a", "visitor_request", False)
    assert handoff.visitor_state(engine, "a") == reference_state(engine, "a") == {
        "mode": "waiting", "agent": None, "position": 1, "version": 1, "request": row["id"]}


def test_a_sqlite_read_never_waits_for_a_writer_and_sees_what_is_committed(engine: Any, clinic_env: Path) -> None:
    """Why the web app reads the SQLite state on its event loop (clinic.web.live_chat): in WAL
    mode a reader does not wait for the lock another process's write holds (with the busy timeout
    of 15 s, a wait would show as a 15 s stall, then "database is locked")."""
    row = handoff.request_live(engine, "w", "visitor_request", False)
    writer = encrypted_db.connect(str(clinic_env / "var" / "clinic.db"), isolation_level=None)
    try:
        writer.execute("BEGIN EXCLUSIVE")  # the write lock, with a change not committed yet
        writer.execute("UPDATE handoff_requests SET status = 'live', staff_name = 'Dana', version = 2")
        writer.execute("PRAGMA busy_timeout = 0")
        for _ in range(3):
            assert handoff.visitor_state(engine, "w") == {
                "mode": "waiting", "agent": None, "position": 1, "version": 1, "request": row["id"]}
        writer.execute("COMMIT")
    finally:
        writer.close()
    assert handoff.visitor_state(engine, "w")["mode"] == "person"


# --- PostgreSQL -----------------------------------------------------------------------------


@pytest.fixture
def pg_engine(postgres: Any) -> Any:
    engine = db.get_engine(postgres.new_database())
    yield engine
    engine.dispose()
    db.get_engine.cache_clear()


def test_the_state_on_postgresql_is_what_the_two_reads_gave(pg_engine: Any) -> None:
    assert_same_states(pg_engine, range(15), 60)


def test_the_state_is_read_after_postgresql_restarts(pg_engine: Any, postgres: Any) -> None:
    row = handoff.request_live(pg_engine, "p", "visitor_request", True)
    assert handoff.visitor_state(pg_engine, "p")["request"] == row["id"]  # a connection is pooled now
    postgres.stop()  # the pooled connection is dead now
    postgres.start()
    assert handoff.visitor_state(pg_engine, "p") == {
        "mode": "waiting", "agent": None, "position": 1, "version": 1, "request": row["id"]}


def test_the_web_apps_state_read_on_postgresql_leaves_the_event_loop_free(pg_engine: Any, postgres: Any) -> None:
    """clinic.web.live_chat reads the state on PostgreSQL in a worker thread: while the read waits
    (here for a lock another session holds), the event loop goes on serving others."""
    import psycopg2

    from clinic.web import live_chat

    row = handoff.request_live(pg_engine, "p", "visitor_request", False)
    locker = psycopg2.connect(pg_engine.url.render_as_string(hide_password=False).replace("postgresql://", "postgres://"))
    locker.cursor().execute("LOCK TABLE handoff_requests IN ACCESS EXCLUSIVE MODE")
    release = threading.Timer(2.0, locker.rollback)  # a read on the loop itself would block it till then

    async def read_while_ticking() -> Any:
        ticks = 0
        read = asyncio.ensure_future(live_chat.full_state(pg_engine, "p"))
        while not read.done():
            await asyncio.sleep(0.02)
            ticks += 1
        return ticks, read.result()

    release.start()
    try:
        ticks, state = asyncio.run(read_while_ticking())
    finally:
        release.join()
        locker.close()
    assert state == {"mode": "waiting", "agent": None, "position": 1, "version": 1, "request": row["id"]}
    assert ticks >= 20


def test_the_web_apps_state_read_is_the_handoff_state_on_both_databases(engine: Any, pg_engine: Any) -> None:
    from clinic.web import live_chat

    for each in (engine, pg_engine):
        handoff.request_live(each, "a", "visitor_request", False)
        handoff.change(each, handoff.request_live(each, "b", "crisis", True)["id"], "claim", WAITING, 4, "Lee")
        for cid in ("a", "b", "c", None):
            expected = handoff.visitor_state(each, cid) if cid else live_chat.ASSISTANT
            assert asyncio.run(live_chat.full_state(each, cid)) == expected
