"""The clinic DB's SQLite engine (clinic.storage.db.get_engine): connections kept open between reads,
shared safely by threads and by processes made by fork(), with the busy timeout."""

import multiprocessing
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, List

import pytest
from sqlalchemy import event, func, select

from clinic.storage import db
from clinic.rules import handoff

from tests import encrypted_db


@pytest.fixture
def engine(clinic_env: Path) -> Any:
    from clinic.settings import get_settings

    engine = db.get_engine(get_settings().clinic_db_url)
    yield engine
    engine.dispose()


def count_connects(engine: Any) -> List[int]:
    """The pids of the SQLite connections opened from now on."""
    opened: List[int] = []
    event.listen(engine, "connect", lambda _conn, _record: opened.append(os.getpid()))
    return opened


def db_file(clinic_env: Path) -> Path:
    return clinic_env / "var" / "clinic.db"


def test_reads_reuse_a_kept_connection(engine: Any) -> None:
    engine.dispose()
    opened = count_connects(engine)
    for i in range(50):
        assert handoff.visitor_state(engine, f"c{i}")["mode"] == "assistant"
    assert len(opened) == 1


def test_a_kept_connection_sees_what_another_process_wrote(engine: Any, clinic_env: Path) -> None:
    assert handoff.visitor_state(engine, "c1")["mode"] == "assistant"  # a connection is kept now
    with encrypted_db.connect(str(db_file(clinic_env))) as other:  # another process's write, as the action server's
        other.execute(
            "INSERT INTO handoff_requests (conversation_id, reason, urgent, status, created_at, kind, version) "
            "VALUES ('c1', 'visitor_request', 0, 'waiting', '2026-11-27 05:00:00', 'live', 1)"
        )
    assert handoff.visitor_state(engine, "c1")["mode"] == "waiting"


def test_the_busy_timeout_and_wal_are_set_on_kept_connections(engine: Any) -> None:
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 15_000
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_a_write_waits_for_another_process_holding_the_lock(engine: Any, clinic_env: Path) -> None:
    db.flag_conversation(engine, "c0", "crisis")  # the pool holds a connection
    holder = encrypted_db.connect(str(db_file(clinic_env)), isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # the write lock, as a long write elsewhere
    released = threading.Timer(1.0, lambda: holder.execute("COMMIT"))
    started = time.monotonic()
    released.start()
    try:
        db.flag_conversation(engine, "c1", "crisis")  # waits, then succeeds (no "database is locked")
    finally:
        released.join()
        holder.close()
    assert time.monotonic() - started >= 0.9
    assert [f["conversation_id"] for f in db.flags_for(engine, "c1")] == ["c1"]


def test_threads_read_and_write_at_once(engine: Any) -> None:
    errors: List[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(25):
                db.flag_conversation(engine, f"t{n}", "crisis")
                assert len(db.flags_for(engine, f"t{n}")) == i + 1
                handoff.visitor_state(engine, f"t{n}")
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(12)]  # more threads than kept connections
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(db.conversation_flags)).scalar() == 12 * 25
    assert engine.pool.checkedout() == 0


def _child_work(engine: Any, queue: Any) -> None:
    try:
        opened = count_connects(engine)
        db.flag_conversation(engine, "child", "crisis")
        queue.put((len(db.flags_for(engine, "child")), opened))
    except BaseException as exc:  # noqa: BLE001
        queue.put(repr(exc))


def test_a_forked_process_opens_its_own_connections_and_leaves_the_parents(engine: Any) -> None:
    db.flag_conversation(engine, "parent", "crisis")  # the parent's kept connection
    opened = count_connects(engine)
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child_work, args=(engine, queue))
    child.start()
    result = queue.get(timeout=60)
    child.join(timeout=60)
    assert child.exitcode == 0
    flags, child_opened = result
    assert flags == 1
    assert child_opened == [child.pid]  # the child opened its own, not the parent's
    # the parent's kept connection still works, and was not closed by the child
    db.flag_conversation(engine, "parent", "crisis")
    assert len(db.flags_for(engine, "parent")) == 2 and len(db.flags_for(engine, "child")) == 1
    assert opened == []
