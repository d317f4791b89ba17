"""The referral spool (clinic.storage.referral_spool): a referral or waitlist entry that the clinic DB would
not take (locked, full) waits in an encrypted file and is stored later, by another process if the
action server stopped meanwhile: once, with the right contact, and with one clinician notice.

The lock is real (another process holds an exclusive lock on the SQLite file, tests/fault_tools.py);
only its busy timeout is shortened here, so that the action gives up in a fraction of a second.
The same through the real action server, killed and started again: tests/test_faults.py.
"""

import asyncio
import errno
import json
import logging
import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Dict, List

import pytest
from cryptography.fernet import Fernet
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import event, func, select

from clinic.storage import db, referral_spool, referrals
from clinic.settings import get_settings
from tests import fault_tools as ft
from tests.stored_conversation import as_stored

ROOT = Path(__file__).resolve().parent.parent
SENDER = "5b001ed0" * 4
CONTACT_SLOTS = {
    "contact_name": "Philippa Wendover", "contact_email": "philippa.wendover@example.org",
    "contact_phone": "+1 512-555-0143", "contact_time": "Weekday evenings", "contact_consent": "yes",
}
ANSWER_SLOTS = {
    "age": 41, "state": "TX", "concern": "ptsd", "treatments_tried": "sertraline",
    "phq2_interest": 2, "phq2_mood": 2, "gad2_nervous": 1, "gad2_worry": 1,
    "suicidal_thoughts": "no", "pregnant_or_breastfeeding": "no", "psychosis_history": "no",
    "cardiovascular": "no", "medications": "no", "medical_conditions": "no", "substance_use": "no",
    "support_person": "yes",
}
# none of these may be readable in a spool file or a log line
IN_CLEAR = ["Philippa", "Wendover", "philippa", "example.org", "555-0143", "0143", "evenings",
            "ptsd", "sertraline", SENDER, "eligible", "Oregon"]


def tracker(slots: Dict[str, Any], sender: str = SENDER) -> Tracker:
    return Tracker(sender_id=sender, slots=slots, latest_message={"text": "yes", "intent": {"name": "affirm"}},
                   events=[], paused=False, followup_action=None, active_loop={}, latest_action_name="action_listen")


def referral_tracker(sender: str = SENDER) -> Tracker:
    """The referral action's call, on a conversation stored as Rasa would have stored it."""
    return as_stored(tracker(dict(ANSWER_SLOTS, **CONTACT_SLOTS), sender))


def waitlist_tracker(sender: str = SENDER) -> Tracker:
    return tracker({"age": 30, "state": "OR", "waitlist_email": "philippa.wendover@example.org",
                    "waitlist_consent": "yes"}, sender)


@pytest.fixture
def env(clinic_env: Path, monkeypatch: pytest.MonkeyPatch) -> Dict[str, Any]:
    """A fresh var/ and clinic DB whose SQLite busy timeout is 0.2 s (a lock is given up on quickly)."""
    monkeypatch.delenv("CLINIC_ENCRYPTION_KEY", raising=False)
    settings = get_settings()
    engine = db.get_engine(settings.clinic_db_url)

    @event.listens_for(engine, "connect")
    def short_wait(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA busy_timeout = 200")

    engine.dispose()
    return {"settings": settings, "engine": engine, "key": settings.encryption_key,
            "spool": referral_spool.spool_dir(settings.var_dir), "db_file": clinic_env / "var" / "clinic.db",
            "var": clinic_env / "var"}


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """The log as the action server writes it: through settings/logging.yml's PrivacyFilter."""
    from clinic.log_privacy import PrivacyFilter

    caplog.set_level(logging.INFO)
    caplog.handler.addFilter(PrivacyFilter())
    return caplog


@pytest.fixture
def notices(monkeypatch: pytest.MonkeyPatch) -> List[str]:
    """References the action server hands to the notifier (no SMTP in the action's process)."""
    import actions.referral as referral_actions

    sent: List[str] = []
    monkeypatch.setattr(referral_actions.notifier, "notify_referral", lambda _e, _s, ref: sent.append(ref) or True)
    return sent


def run_action(action: Any, t: Tracker, linger_s: float = 0.0) -> List[str]:
    """The action in a loop of its own; when it ends its background tasks end with it (as a killed
    action server's do)."""
    dispatcher = CollectingDispatcher()

    async def go() -> None:
        await action.run(dispatcher, t, {})
        await asyncio.sleep(linger_s)

    asyncio.run(go())
    return [m.get("response") for m in dispatcher.messages]


def entries(directory: Path) -> List[Path]:
    return sorted(p for p in directory.glob("*.json"))


def drain_in_new_process(env: Dict[str, Any], smtp: Any) -> subprocess.CompletedProcess:
    """`python -m clinic.storage.referral_spool --drain`: what a restarted action server does first."""
    proc_env = dict(os.environ, PYTHONPATH=str(ROOT), CLINIC_VAR_DIR=str(env["var"]),
                    CLINIC_DB_URL=env["settings"].clinic_db_url, SMTP_HOST="127.0.0.1", SMTP_PORT=str(smtp.port),
                    CONSOLE_URL="http://console.test")
    proc_env.pop("CLINIC_ENCRYPTION_KEY", None)
    return subprocess.run([sys.executable, "-m", "clinic.storage.referral_spool", "--drain"], env=proc_env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def count(engine: Any, table: Any) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar()


# --- through the actions: locked DB, the process gone, stored by another -----------------------------


def test_a_referral_the_locked_db_refused_is_spooled_and_stored_once_by_a_new_process(
    env: Dict[str, Any], notices: List[str], smtp: Any, logs: pytest.LogCaptureFixture
) -> None:
    from actions.referral import ActionSubmitReferral

    with ft.write_lock_held(env["db_file"]):
        responses = run_action(ActionSubmitReferral(), referral_tracker())
    # the visitor was told; the process (its loop and retries) is gone; nothing is in the DB
    assert responses == ["utter_referral_not_stored"]
    assert referrals.referral_for_conversation(env["engine"], SENDER) is None
    assert notices == []
    [entry] = entries(env["spool"])

    # the file: private, and nothing of the visitor readable in it
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600
    assert stat.S_IMODE(env["spool"].stat().st_mode) == 0o700
    raw = entry.read_bytes()
    for clear in IN_CLEAR:
        assert clear.encode() not in raw, clear
    assert list(json.loads(raw)) == ["version", "kind", "record"]

    # the DB is free again; another process drains the spool
    done = drain_in_new_process(env, smtp)
    assert done.returncode == 0, done.stderr
    assert "stored: 1, set aside: 0" in done.stdout and "waiting: 0" in done.stdout
    assert entries(env["spool"]) == []
    row = referrals.referral_for_conversation(env["engine"], SENDER)
    assert count(env["engine"], db.referrals) == 1
    plain = referrals.decrypt_referral(row, env["key"])
    assert plain["contact"] == {"name": "Philippa Wendover", "email": "philippa.wendover@example.org",
                                "phone": "+1 512-555-0143", "preferred_time": "Weekday evenings"}
    assert plain["answers"]["concern"] == "ptsd" and plain["outcome"] == "eligible" and plain["urgent"] is False
    assert row["notified_at"] is not None
    assert len([m for m in smtp.messages if row["reference"] in m]) == 1

    # draining again (another restart) stores nothing more and sends no second notice
    again = drain_in_new_process(env, smtp)
    assert again.returncode == 0 and "stored: 0" in again.stdout
    assert count(env["engine"], db.referrals) == 1
    assert len([m for m in smtp.messages if row["reference"] in m]) == 1
    for clear in IN_CLEAR + [row["reference"]]:
        assert clear not in logs.text + done.stderr + again.stderr, clear


def test_a_waitlist_entry_the_locked_db_refused_is_spooled_and_stored_once_by_a_new_process(
    env: Dict[str, Any], smtp: Any
) -> None:
    from actions.referral import ActionJoinWaitlist

    with ft.write_lock_held(env["db_file"]):
        assert run_action(ActionJoinWaitlist(), waitlist_tracker()) == ["utter_referral_not_stored"]
    [entry] = entries(env["spool"])
    assert entry.name.startswith("waitlist-")
    for clear in IN_CLEAR + ['"OR"']:
        assert clear.encode() not in entry.read_bytes(), clear
    assert referrals.waitlist_entry_for(env["engine"], SENDER) is None

    done = drain_in_new_process(env, smtp)
    assert done.returncode == 0, done.stderr
    assert entries(env["spool"]) == []
    row = referrals.waitlist_entry_for(env["engine"], SENDER)
    assert count(env["engine"], db.waitlist) == 1 and row["state"] == "OR"
    assert referrals.decrypt_waitlist_entry(row, env["key"])["contact"] == {"email": "philippa.wendover@example.org"}
    assert drain_in_new_process(env, smtp).returncode == 0
    assert count(env["engine"], db.waitlist) == 1


def test_the_running_action_server_drains_the_spool_itself_once_the_lock_is_gone(
    env: Dict[str, Any], notices: List[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import actions.referral as referral_actions

    monkeypatch.setattr(referral_actions, "RETRY_EVERY_S", 0.2)
    dispatcher = CollectingDispatcher()

    async def scenario() -> None:
        with ft.write_lock_held(env["db_file"]):
            await referral_actions.ActionSubmitReferral().run(dispatcher, referral_tracker(), {})
            await referral_actions.ActionJoinWaitlist().run(CollectingDispatcher(), waitlist_tracker("w" * 32), {})
            assert len(entries(env["spool"])) == 2
            await asyncio.sleep(1.0)  # the drainer tries, and fails: the lock is still held
            assert referrals.referral_for_conversation(env["engine"], SENDER) is None
            assert len(entries(env["spool"])) == 2
        for _ in range(100):
            if not entries(env["spool"]) and notices:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)

    asyncio.run(scenario())
    assert [m.get("response") for m in dispatcher.messages] == ["utter_referral_not_stored"]
    assert entries(env["spool"]) == []
    row = referrals.referral_for_conversation(env["engine"], SENDER)
    assert row is not None and notices == [row["reference"]]
    assert referrals.waitlist_entry_for(env["engine"], "w" * 32) is not None
    assert (count(env["engine"], db.referrals), count(env["engine"], db.waitlist)) == (1, 1)


def test_when_the_spool_cannot_be_written_either_it_is_logged_without_personal_data_and_retried_in_memory(
    env: Dict[str, Any], notices: List[str], monkeypatch: pytest.MonkeyPatch, logs: pytest.LogCaptureFixture
) -> None:
    """The disk full: fsync fails with ENOSPC (the database is locked, so the first store failed too)."""
    import actions.referral as referral_actions

    monkeypatch.setattr(referral_actions, "RETRY_EVERY_S", 0.2)

    def no_space(_fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    async def scenario() -> None:
        with ft.write_lock_held(env["db_file"]):
            with monkeypatch.context() as m:
                m.setattr(referral_spool.os, "fsync", no_space)
                await referral_actions.ActionSubmitReferral().run(CollectingDispatcher(), referral_tracker(), {})
        for _ in range(100):
            if notices:
                break
            await asyncio.sleep(0.1)

    asyncio.run(scenario())
    assert list(env["spool"].iterdir()) == []  # no entry, and no temporary file left behind
    errors = [r.getMessage() for r in logs.records if r.levelno >= logging.ERROR]
    assert any("could not spool a referral" in e and "OSError" in e for e in errors), errors
    for clear in IN_CLEAR:
        assert clear not in logs.text, clear
    row = referrals.referral_for_conversation(env["engine"], SENDER)  # the in-memory retry, as before
    assert row is not None and notices == [row["reference"]]


# --- the spool itself -----------------------------------------------------------------------------------


def sealed(env: Dict[str, Any], cid: str, name: str = "Philippa Wendover") -> Dict[str, Any]:
    return referrals.seal_referral(env["key"], cid, "eligible", [], {"concern": "ptsd"}, {"name": name})


def test_one_entry_per_conversation_the_first_stands_and_a_referral_already_stored_is_not_doubled(
    env: Dict[str, Any]
) -> None:
    engine, key, spool = env["engine"], env["key"], env["spool"]
    referral_spool.put(spool, key, "referral", sealed(env, "c-1", "First"))
    referral_spool.put(spool, key, "referral", sealed(env, "c-1", "Second"))
    reference = referrals.create_referral(engine, key, "c-2", "eligible", [], {}, {"name": "Stored already"})
    referral_spool.put(spool, key, "referral", sealed(env, "c-2", "Spooled too"))
    assert len(entries(spool)) == 2
    result = referral_spool.drain(spool, engine, key)
    assert sorted(k for k, _ in result.stored) == ["referral", "referral"] and result.waiting == 0
    assert count(engine, db.referrals) == 2
    first = referrals.referral_for_conversation(engine, "c-1")
    assert referrals.decrypt_referral(first, key)["contact"] == {"name": "First"}
    assert ("referral", reference) in result.stored  # the one stored already: its reference, nothing new
    assert referrals.decrypt_referral(referrals.get_referral(engine, reference), key)["contact"] == {
        "name": "Stored already"}


def test_a_corrupt_entry_or_one_sealed_with_another_key_is_reported_and_kept_aside_not_lost(
    env: Dict[str, Any], logs: pytest.LogCaptureFixture
) -> None:
    engine, key, spool = env["engine"], env["key"], env["spool"]
    referral_spool.put(spool, key, "referral", sealed(env, "c-good"))
    referral_spool.put(spool, Fernet.generate_key(), "referral", sealed(env, "c-other-key"))
    torn = spool / referral_spool.entry_name("referral", "c-torn")
    torn.write_bytes(b'{"version": 1, "kind": "referral", "rec')
    wrong = spool / referral_spool.entry_name("waitlist", "c-wrong")
    wrong.write_text(json.dumps({"version": 1, "kind": "waitlist", "record": "not a token"}))
    before = {p.name: p.read_bytes() for p in entries(spool)}

    result = referral_spool.drain(spool, engine, key)
    assert (len(result.stored), result.set_aside, result.waiting) == (1, 3, 0)
    assert entries(spool) == []
    kept = {p.name.rsplit(".", 1)[0]: p.read_bytes() for p in (spool / "corrupt").iterdir()}
    assert kept == {name: data for name, data in before.items()
                    if name != referral_spool.entry_name("referral", "c-good")}
    assert referral_spool.counts(spool) == (0, 3)
    reported = [r.getMessage() for r in logs.records if r.levelno == logging.ERROR]
    assert len(reported) == 3 and all("set aside" in m for m in reported)
    assert torn.name in " ".join(reported)
    assert count(engine, db.referrals) == 1
    # the next pass does not touch what was set aside
    assert referral_spool.drain(spool, engine, key).set_aside == 0 and referral_spool.counts(spool) == (0, 3)


def test_drainers_at_once_store_and_report_each_entry_once(env: Dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Two action-server workers (or a worker and `--drain`): an entry is stored and notified by one."""
    engine, key, spool = env["engine"], env["key"], env["spool"]
    fields, store = referral_spool.KINDS["referral"]
    together = threading.Barrier(3, timeout=10)
    first = threading.local()

    def store_together(e: Any, record: Any) -> Any:  # the three drainers' first stores at the same moment
        if not getattr(first, "done", False):
            first.done = True
            together.wait()
        return store(e, record)

    monkeypatch.setitem(referral_spool.KINDS, "referral", (fields, store_together))
    for i in range(20):
        referral_spool.put(spool, key, "referral", sealed(env, f"c-{i:02d}"))
    results: List[referral_spool.DrainResult] = []
    threads = [threading.Thread(target=lambda: results.append(referral_spool.drain(spool, engine, key)))
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    stored = [r for res in results for _, r in res.stored]
    assert len(results) == 3  # no drainer failed
    leftover = referral_spool.drain(spool, engine, key)  # what a drainer skipped while another held it
    stored += [r for _, r in leftover.stored]
    assert count(engine, db.referrals) == 20 and len(stored) == len(set(stored)) == 20  # each notified once
    assert entries(spool) == [] and leftover.waiting == 0


def test_a_locked_db_stops_the_pass_and_the_entries_wait_in_order(
    env: Dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, key, spool = env["engine"], env["key"], env["spool"]
    for i in (2, 0, 1):  # oldest first: c-0, c-1, c-2
        path = referral_spool.put(spool, key, "referral", sealed(env, f"c-{i}"))
        os.utime(path, (time.time() - 100 + i, time.time() - 100 + i))
    fields, store = referral_spool.KINDS["referral"]
    tried: List[str] = []

    def counted(e: Any, record: Any) -> Any:
        tried.append(record["conversation_id"])
        return store(e, record)

    monkeypatch.setitem(referral_spool.KINDS, "referral", (fields, counted))
    with ft.write_lock_held(env["db_file"]):
        result = referral_spool.drain(spool, engine, key)
    assert result.stored == [] and result.waiting == 3 and result.error == "OperationalError"
    assert tried == ["c-0"]  # one wait on the lock, not one per entry
    assert len(entries(spool)) == 3
    result = referral_spool.drain(spool, engine, key)
    assert tried == ["c-0", "c-0", "c-1", "c-2"]
    assert [r for _, r in result.stored] == [
        referrals.referral_for_conversation(engine, f"c-{i}")["reference"] for i in range(3)]


def test_a_temporary_file_a_dead_writer_left_is_stored_once_it_is_old_and_not_while_it_may_be_written(
    env: Dict[str, Any]
) -> None:
    engine, key, spool = env["engine"], env["key"], env["spool"]
    path = referral_spool.put(spool, key, "referral", sealed(env, "c-tmp"))
    tmp = spool / f".tmp-{path.name}.4242.abcd"
    os.rename(path, tmp)  # as if the writer died after fsync, before linking it into place
    assert referral_spool.drain(spool, engine, key).stored == []
    old = time.time() - referral_spool.STALE_TMP_S - 5
    os.utime(tmp, (old, old))
    result = referral_spool.drain(spool, engine, key)
    assert len(result.stored) == 1 and not tmp.exists()
    assert referrals.referral_for_conversation(engine, "c-tmp") is not None


def test_put_refuses_what_is_not_a_sealed_record(env: Dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        referral_spool.put(env["spool"], env["key"], "referral", {"conversation_id": "c", "contact": {"name": "x"}})
    assert not env["spool"].exists() or entries(env["spool"]) == []


def test_the_notifier_worker_says_how_many_wait_and_how_many_were_set_aside(
    env: Dict[str, Any], logs: pytest.LogCaptureFixture
) -> None:
    from clinic.mail import notifier

    spool = env["spool"]
    notifier._pass(env["engine"], env["settings"])
    assert "spool" not in logs.text  # nothing waits: nothing said
    referral_spool.put(spool, env["key"], "referral", sealed(env, "c-1"))
    referral_spool.put(spool, env["key"], "referral", sealed(env, "c-2"))
    (spool / referral_spool.entry_name("referral", "c-3")).write_bytes(b"torn")
    referral_spool.drain(spool, env["engine"], env["key"])  # c-3 set aside; c-1, c-2 stored
    referral_spool.put(spool, env["key"], "waitlist",
                       referrals.seal_waitlist_entry(env["key"], "c-4", "OR", {"email": "x@example.org"}))
    logs.clear()
    notifier._pass(env["engine"], env["settings"])
    lines = [r.getMessage() for r in logs.records]
    assert any("waiting in the spool" in m and m.endswith(": 1") for m in lines), lines
    assert any("set aside" in m and m.endswith(": 1") for m in lines), lines


def test_an_action_server_starting_with_nothing_spooled_does_not_open_the_database(
    env: Dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """(A server database down at start is no reason for errors every few seconds.)"""
    import actions.referral as referral_actions

    def no_database(_url: str) -> Any:
        raise AssertionError("the database was opened")

    monkeypatch.setattr(referral_actions, "db", SimpleNamespace(get_engine=no_database))

    async def start() -> bool:
        referral_actions._drain_soon()
        drainer = referral_actions._drainer
        await asyncio.wait_for(drainer, timeout=10)
        return drainer.done()

    assert asyncio.run(start())


def test_an_entry_the_store_fails_on_for_its_own_reasons_waits_and_holds_up_no_other(
    env: Dict[str, Any], monkeypatch: pytest.MonkeyPatch, logs: pytest.LogCaptureFixture
) -> None:
    engine, key, spool = env["engine"], env["key"], env["spool"]
    for i in range(3):
        path = referral_spool.put(spool, key, "referral", sealed(env, f"c-{i}"))
        os.utime(path, (time.time() - 100 + i, time.time() - 100 + i))  # c-0 first
    fields, store = referral_spool.KINDS["referral"]

    def fails_on_the_first(e: Any, record: Any) -> Any:
        if record["conversation_id"] == "c-0":
            raise RuntimeError("no free reference code")
        return store(e, record)

    monkeypatch.setitem(referral_spool.KINDS, "referral", (fields, fails_on_the_first))
    result = referral_spool.drain(spool, engine, key)
    assert (len(result.stored), result.waiting, result.set_aside, result.error) == (2, 1, 0, None)
    assert [p.name for p in entries(spool)] == [referral_spool.entry_name("referral", "c-0")]
    assert any("not stored (RuntimeError): it waits" in r.getMessage() for r in logs.records)
    monkeypatch.setitem(referral_spool.KINDS, "referral", (fields, store))
    assert len(referral_spool.drain(spool, engine, key).stored) == 1 and entries(spool) == []
    assert count(engine, db.referrals) == 3


def test_a_deleted_conversation_leaves_nothing_waiting_in_the_spool(env: Dict[str, Any]) -> None:
    engine, key, spool = env["engine"], env["key"], env["spool"]
    referral_spool.put(spool, key, "referral", sealed(env, "c-gone"))
    referral_spool.put(spool, key, "waitlist", referrals.seal_waitlist_entry(key, "c-gone", "OR", {"email": "x@y.org"}))
    referral_spool.put(spool, key, "referral", sealed(env, "c-kept"))
    assert referral_spool.discard(spool, "c-gone") == 2
    assert referral_spool.discard(spool, "c-gone") == 0
    assert referral_spool.discard(spool / "nowhere", "c-gone") == 0
    result = referral_spool.drain(spool, engine, key)
    assert len(result.stored) == 1 and referrals.referral_for_conversation(engine, "c-gone") is None
    assert referrals.waitlist_entry_for(engine, "c-gone") is None
    assert referrals.referral_for_conversation(engine, "c-kept") is not None


def test_deleting_a_conversation_in_the_console_empties_its_spool_entries(env: Dict[str, Any]) -> None:
    """An admin's delete (and the retention purge) go through purge.delete_conversations: a referral
    waiting in the spool for a deleted conversation must not come back once the database takes it."""
    from clinic.console import purge

    engine, key, spool, settings = env["engine"], env["key"], env["spool"], env["settings"]
    referral_spool.put(spool, key, "referral", sealed(env, "c-gone"))
    referral_spool.put(spool, key, "referral", sealed(env, "c-kept"))
    counts = purge.delete_conversations(engine, settings.tracker_db_url, ["c-gone"])  # the settings' spool
    assert counts["spooled"] == 1 and "spooled=1" in purge.describe(counts)
    assert len(referral_spool.drain(spool, engine, key).stored) == 1
    assert referrals.referral_for_conversation(engine, "c-gone") is None
    assert referrals.referral_for_conversation(engine, "c-kept") is not None
