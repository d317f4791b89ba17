"""The tracker store of endpoints.yml (clinic/rasa_runtime/tracker_store.py): SQLite with kept connections,
WAL and synchronous=NORMAL; other processes reading and writing the same file meanwhile."""

import asyncio
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Dict, List

import pytest
import sqlalchemy as sa
import yaml
from rasa.core.tracker_store import TrackerStore
from rasa.core.utils import AvailableEndpoints
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, Event, SessionStarted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from clinic.storage import backup
from clinic.rasa_runtime import tracker_store as clinic_store
from clinic.console.app import tracker_reader

from tests import encrypted_db

ROOT = Path(__file__).resolve().parent.parent
DOMAIN = Domain.from_yaml("version: '3.1'\nslots:\n  topic:\n    type: any\n    mappings: [{type: custom}]\n")


def run(coro: Any) -> Any:
    return asyncio.new_event_loop().run_until_complete(coro)


def endpoints_store(tmp_path: Path) -> TrackerStore:
    """The tracker store as `rasa run --endpoints endpoints.yml` makes it, on a file in tmp_path."""
    config = yaml.safe_load((ROOT / "endpoints.yml").read_text())
    config["tracker_store"]["db"] = str(tmp_path / "tracker.db")
    del config["action_endpoint"]  # its secret is the launcher's (clinic.rasa_runtime.rasa_launch); not needed here
    path = tmp_path / "endpoints.yml"
    path.write_text(yaml.safe_dump(config))
    endpoints = AvailableEndpoints.read_endpoints(str(path))
    return TrackerStore.create(endpoints.tracker_store, domain=DOMAIN)


def store_on(path: Path) -> clinic_store.SQLTrackerStore:
    return clinic_store.SQLTrackerStore(domain=DOMAIN, dialect="sqlite", db=str(path))


def turn(tracker: DialogueStateTracker, text: str) -> None:
    tracker.update(UserUttered(text, {"name": "faq"}))
    tracker.update(SlotSet("topic", text))
    tracker.update(ActionExecuted("action_listen"))


def user_texts(tracker: DialogueStateTracker) -> List[str]:
    return [e.text for e in tracker.events if isinstance(e, UserUttered)]


def test_endpoints_yml_gives_the_clinic_store_on_sqlite_in_wal_mode(tmp_path):
    store = endpoints_store(tmp_path)
    # (Rasa silently falls back to a store in memory when the class named fails to load)
    assert type(store) is clinic_store.SQLTrackerStore
    tracker = DialogueStateTracker.from_events("c-1", [ActionExecuted("action_session_start"), SessionStarted()])
    turn(tracker, "hello")
    run(store.save(tracker))
    with encrypted_db.connect(tmp_path / "tracker.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT count(*) FROM events WHERE sender_id = 'c-1'").fetchone()[0] == 5
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL


def test_reads_and_saves_reuse_one_connection(tmp_path):
    store = store_on(tmp_path / "tracker.db")
    opened = []
    sa.event.listen(store.engine, "connect", lambda *args: opened.append(1))
    tracker = DialogueStateTracker.from_events("c-1", [ActionExecuted("action_session_start"), SessionStarted()])
    for i in range(20):
        turn(tracker, f"message {i}")
        run(store.save(tracker))
        tracker = run(store.retrieve("c-1"))
    assert user_texts(tracker) == [f"message {i}" for i in range(20)]
    assert tracker.get_slot("topic") == "message 19"
    assert len(opened) == 1


def test_another_process_sees_each_save_and_its_saves_are_seen(tmp_path):
    """Two stores on one file (two Rasa processes, or Rasa and a restarted Rasa), both keeping
    their connection: each reads what the other committed."""
    first, second = store_on(tmp_path / "tracker.db"), store_on(tmp_path / "tracker.db")
    tracker = DialogueStateTracker.from_events("c-1", [ActionExecuted("action_session_start"), SessionStarted()])
    turn(tracker, "one")
    run(first.save(tracker))
    seen = run(second.retrieve("c-1"))
    assert user_texts(seen) == ["one"]
    turn(seen, "two")
    run(second.save(seen))
    assert user_texts(run(first.retrieve("c-1"))) == ["one", "two"]
    # nothing saved twice: each store counts what is already in the file
    with encrypted_db.connect(tmp_path / "tracker.db") as conn:
        assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 8


def test_a_save_waits_for_another_writer_instead_of_failing(tmp_path):
    store = store_on(tmp_path / "tracker.db")
    tracker = DialogueStateTracker.from_events("c-1", [ActionExecuted("action_session_start"), SessionStarted()])
    run(store.save(tracker))
    other = encrypted_db.connect(tmp_path / "tracker.db", isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # another process writing: the file's one write lock
    other.execute("INSERT INTO events (sender_id, type_name, timestamp, data) VALUES ('c-2', 'x', 0, '{}')")
    release = threading.Timer(0.8, lambda: other.execute("COMMIT"))
    release.start()
    started = time.monotonic()
    turn(tracker, "while another writes")
    run(store.save(tracker))
    waited = time.monotonic() - started
    release.join()
    other.close()
    assert waited >= 0.5  # it waited for the lock (the busy timeout), then saved
    assert user_texts(run(store.retrieve("c-1"))) == ["while another writes"]


def test_the_console_reads_and_a_backup_is_made_while_the_store_keeps_its_connection(tmp_path, monkeypatch):
    var = tmp_path / "var"
    var.mkdir()
    with encrypted_db.connect(var / "clinic.db") as conn:
        conn.execute("CREATE TABLE t (x)")
    store = store_on(var / "tracker.db")
    tracker = DialogueStateTracker.from_events("c-1", [ActionExecuted("action_session_start"), SessionStarted()])
    for i in range(3):
        turn(tracker, f"message {i}")
        run(store.save(tracker))
        tracker = run(store.retrieve("c-1"))  # as Rasa does each turn
    reader = tracker_reader(f"sqlite:///{var / 'tracker.db'}")  # the staff console's read-only engine
    with reader.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM events WHERE sender_id = 'c-1'").scalar() == 11
    monkeypatch.setattr(backup, "stores", lambda: {"tracker.db": var / "tracker.db", "clinic.db": var / "clinic.db"})
    folder = backup.create(tmp_path / "backup")
    with encrypted_db.connect(folder / "tracker.db") as conn:  # the committed turns are in the copy
        assert conn.execute("SELECT count(*) FROM events WHERE sender_id = 'c-1'").fetchone()[0] == 11
    turn(tracker, "after the backup")  # and the store goes on
    run(store.save(tracker))
    with reader.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM events WHERE sender_id = 'c-1'").scalar() == 14


def test_postgresql_connections_are_still_checked_before_use():
    engine = clinic_store.create_engine(sa.engine.make_url("postgresql://u:p@127.0.0.1:1/db"))
    assert engine.pool._pre_ping is True
    assert isinstance(engine.pool, sa.pool.QueuePool)


def test_a_sqlite_store_in_memory_is_refused():
    with pytest.raises(ValueError, match="needs a file"):
        clinic_store.create_engine(sa.engine.make_url("sqlite://"))


# --- the same rows and the same trackers as Rasa's own SQLTrackerStore --------------------------

def conversations() -> Dict[str, List[List[Event]]]:
    """Conversations turn by turn: one with a second session, one without any session_started
    (as stored before Rasa had sessions), events at the very moment their session started."""
    return {
        "two-sessions": [
            [ActionExecuted("action_session_start", timestamp=1.0), SessionStarted(timestamp=1.0),
             ActionExecuted("action_listen", timestamp=1.5)],
            [UserUttered("hi", {"name": "greet"}, timestamp=2.0), SlotSet("topic", "fees", timestamp=2.0),
             ActionExecuted("utter_fees", timestamp=2.1)],
            [ActionExecuted("action_session_start", timestamp=10.0), SessionStarted(timestamp=10.0),
             SlotSet("topic", "fees", timestamp=10.0), ActionExecuted("action_listen", timestamp=10.0)],
            [UserUttered("again", {"name": "faq"}, timestamp=11.0)],
        ],
        "no-session": [[ActionExecuted("action_listen", timestamp=3.0)], [UserUttered("old", {"name": "faq"}, timestamp=3.5)]],
    }


def as_dicts(tracker: DialogueStateTracker) -> List[dict]:
    return [e.as_dict() for e in tracker.events] if tracker is not None else None


def rows(store: clinic_store.SQLTrackerStore) -> List[tuple]:
    with store.engine.connect() as conn:
        return [tuple(r) for r in conn.exec_driver_sql(
            "SELECT sender_id, type_name, timestamp, intent_name, action_name, data FROM events ORDER BY id")]


def stores_to_compare(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> tuple:
    if backend == "sqlite":
        return store_on(tmp_path / "ours.db"), store_on(tmp_path / "rasa.db")
    server = request.getfixturevalue("postgres")
    return tuple(clinic_store.SQLTrackerStore(domain=DOMAIN, host=server.new_database()) for _ in range(2))


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_saves_write_the_rows_rasa_writes_and_reads_give_the_trackers_rasa_gives(backend, tmp_path, request):
    ours, rasas = stores_to_compare(backend, tmp_path, request)  # Rasa's own methods on the second
    rasa_save = clinic_store.rasa_tracker_store.SQLTrackerStore.save
    rasa_retrieve = clinic_store.rasa_tracker_store.SQLTrackerStore._retrieve
    for sender, turns in conversations().items():
        for events in turns:  # each turn as Rasa has it: the stored session read, events added, saved
            for store, retrieve, save in ((ours, clinic_store.SQLTrackerStore._retrieve, clinic_store.SQLTrackerStore.save),
                                          (rasas, rasa_retrieve, rasa_save)):
                tracker = run(retrieve(store, sender, False)) or DialogueStateTracker(sender, DOMAIN.slots)
                for event in events:
                    tracker.update(event)
                run(save(store, tracker))
    assert rows(ours) == rows(rasas)
    assert len(rows(ours)) == 13
    for sender in ("two-sessions", "no-session", "nobody"):
        for all_sessions in (False, True):
            got = run(ours._retrieve(sender, all_sessions))
            assert as_dicts(got) == as_dicts(run(rasa_retrieve(rasas, sender, all_sessions)))
    assert [e.get("text") for e in as_dicts(run(ours.retrieve("two-sessions"))) if e["event"] == "user"] == ["again"]
    assert len(run(ours.retrieve_full_tracker("two-sessions")).events) == 11


# --- the tracker a turn saved, kept for the next turn (clinic/rasa_runtime/tracker_store.py's docstring) -------

def started(sender: str = "c-1") -> DialogueStateTracker:
    tracker = DialogueStateTracker(sender, DOMAIN.slots)
    for event in (ActionExecuted("action_session_start"), SessionStarted(), ActionExecuted("action_listen")):
        tracker.update(event)
    return tracker


def kept_after_two_turns(store: clinic_store.SQLTrackerStore, sender: str = "c-1") -> DialogueStateTracker:
    """A conversation as Rasa has it: read (nothing yet), created, saved; read, a turn, saved."""
    assert run(store.retrieve(sender)) is None
    tracker = started(sender)
    run(store.save(tracker))
    tracker = run(store.retrieve(sender))
    turn(tracker, "one")
    tracker.model_id, tracker.assistant_id = "model", "assistant"  # as the processor sets them
    run(store.save(tracker))
    assert store._known[sender].servable
    return tracker


def test_the_next_turn_gets_the_tracker_the_last_one_saved_once_and_as_a_read_gives_it(tmp_path):
    store = store_on(tmp_path / "tracker.db")
    kept = kept_after_two_turns(store)
    served = run(store.retrieve("c-1"))
    assert served is kept
    assert served.model_id is None and served.assistant_id is None  # as read from the file
    assert as_dicts(served) == as_dicts(run(clinic_store.rasa_tracker_store.SQLTrackerStore._retrieve(store, "c-1", False)))
    again = run(store.retrieve("c-1"))  # handed out once: the holder may change it
    assert again is not kept and as_dicts(again) == as_dicts(kept)


def test_a_turn_that_fails_half_way_leaves_nothing_behind(tmp_path):
    store = store_on(tmp_path / "tracker.db")
    kept_after_two_turns(store)
    tracker = run(store.retrieve("c-1"))
    turn(tracker, "never saved")  # the turn fails before its save
    assert user_texts(run(store.retrieve("c-1"))) == ["one"]
    tracker = run(store.retrieve("c-1"))
    turn(tracker, "two")
    tracker.update(SlotSet("topic", object()))  # fails in the save itself: nothing written
    with pytest.raises(TypeError):
        run(store.save(tracker))
    read = run(store.retrieve("c-1"))
    assert read is not tracker and user_texts(read) == ["one"] and read.get_slot("topic") == "one"
    turn(read, "three")
    run(store.save(read))
    turn(read, "after its save")  # changed after the save, never saved again
    assert user_texts(run(store.retrieve("c-1"))) == ["one", "three"]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_kept_tracker_catches_up_with_another_servers_save(backend, tmp_path, request):
    if backend == "sqlite":
        first, second = store_on(tmp_path / "tracker.db"), store_on(tmp_path / "tracker.db")
    else:
        ours, _ = stores_to_compare(backend, tmp_path, request)
        first, second = ours, clinic_store.SQLTrackerStore(domain=DOMAIN, host=str(ours.engine.url))
    kept = kept_after_two_turns(first)
    other = run(second.retrieve("c-1"))
    turn(other, "on the other server")
    run(second.save(other))
    read = run(first.retrieve("c-1"))  # the other server's events applied to the kept tracker
    assert read is kept and user_texts(read) == ["one", "on the other server"]
    assert read.get_slot("topic") == "on the other server"
    turn(read, "back on the first")
    run(first.save(read))
    assert user_texts(run(second.retrieve("c-1"))) == ["one", "on the other server", "back on the first"]
    assert first._known["c-1"].tracker is read and second._known["c-1"].tracker is other  # caught up too


def test_a_conversation_deleted_meanwhile_is_read_as_gone(tmp_path):
    store = store_on(tmp_path / "tracker.db")
    kept_after_two_turns(store)
    with encrypted_db.connect(tmp_path / "tracker.db") as conn:  # as the staff console's delete and purge
        conn.execute("DELETE FROM events WHERE sender_id = 'c-1'")
    assert run(store.retrieve("c-1")) is None


def test_ids_given_again_after_a_deletion_are_not_taken_for_the_rows_kept(tmp_path):
    first, second = store_on(tmp_path / "tracker.db"), store_on(tmp_path / "tracker.db")
    kept_after_two_turns(first)
    kept_last_id = first._known["c-1"].last[0]
    with encrypted_db.connect(tmp_path / "tracker.db") as conn:
        conn.execute("DELETE FROM events WHERE sender_id = 'c-1'")
    anew = started()
    turn(anew, "uno")  # as many events as the kept tracker: SQLite hands out the same ids again
    run(second.save(anew))
    with encrypted_db.connect(tmp_path / "tracker.db") as conn:
        assert conn.execute("SELECT max(id) FROM events WHERE sender_id = 'c-1'").fetchone()[0] == kept_last_id
    assert user_texts(run(first.retrieve("c-1"))) == ["uno"]


def test_a_turn_that_starts_a_new_session_is_not_kept_a_read_gives_the_new_session(tmp_path):
    store = store_on(tmp_path / "tracker.db")
    tracker = kept_after_two_turns(store)
    assert run(store.retrieve("c-1")) is tracker
    time.sleep(0.01)
    for event in (ActionExecuted("action_session_start"), SessionStarted(), ActionExecuted("action_listen")):
        tracker.update(event)
    turn(tracker, "new session")
    run(store.save(tracker))
    read = run(store.retrieve("c-1"))
    assert read is not tracker and user_texts(read) == ["new session"]
    assert as_dicts(read) == as_dicts(run(clinic_store.rasa_tracker_store.SQLTrackerStore._retrieve(store, "c-1", False)))


def test_a_tracker_the_store_did_not_read_is_saved_and_not_kept(tmp_path):
    store = store_on(tmp_path / "tracker.db")
    kept = kept_after_two_turns(store)
    replaced = DialogueStateTracker.from_events("c-1", list(kept.events), DOMAIN.slots)  # e.g. Rasa's HTTP API
    turn(replaced, "two")
    run(store.save(replaced))
    read = run(store.retrieve("c-1"))
    assert read is not kept and read is not replaced and user_texts(read) == ["one", "two"]


def test_reads_of_all_sessions_come_from_the_file_and_leave_the_kept_tracker(tmp_path):
    store = store_on(tmp_path / "tracker.db")
    kept = kept_after_two_turns(store)
    full = run(store.retrieve_full_tracker("c-1"))
    assert full is not kept and as_dicts(full)[1:] == as_dicts(kept)  # and the action_session_start before it
    assert run(store.retrieve("c-1")) is kept


def test_a_new_domain_forgets_the_kept_trackers(tmp_path):
    store = store_on(tmp_path / "tracker.db")
    kept = kept_after_two_turns(store)
    store.domain = Domain.from_yaml("version: '3.1'\nslots:\n  topic:\n    type: any\n    mappings: [{type: custom}]\n")
    read = run(store.retrieve("c-1"))
    assert read is not kept and user_texts(read) == ["one"]


def test_the_trackers_kept_are_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(clinic_store, "KEPT_TRACKERS", 3)
    store = store_on(tmp_path / "tracker.db")
    kept = [kept_after_two_turns(store, f"c-{i}") for i in range(5)]
    assert list(store._known) == ["c-2", "c-3", "c-4"]
    assert run(store.retrieve("c-0")) is not kept[0] and run(store.retrieve("c-4")) is kept[4]
