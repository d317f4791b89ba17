"""Faults, with the real processes of the session ``stack``: each of Rasa, the action server and
the web app killed (SIGKILL) mid-conversation and mid-pre-screen and started again; the action
server down; the clinic DB locked by another process; the disk full (SQLite's own "database or
disk is full", in an action test). The visitor is told what happened, goes on where they were,
and no message or referral is lost or doubled.
"""

import asyncio
import csv
import io
import json
import re
import sqlite3
import threading
import time
from typing import Any, Dict, List

import pytest
import requests
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import event, func, select

from clinic.storage import db, referrals
from clinic.settings import load_clinic_info
from clinic.web.visitor_api import PART_UNAVAILABLE, UNAVAILABLE
from tests import encrypted_db
from tests import fault_tools as ft
from tests.stack import ROOT, Stack
from tests.stored_conversation import as_stored

FAQ = ("what is ketamine therapy", "ketamine")
MID = 8  # steps of the pre-screen taken before the fault: in the PHQ-2 / GAD-2 questions


def wait_for(predicate: Any, timeout_s: float = 30.0, every_s: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every_s)
    return predicate()


def notices_for(smtp: Any, reference: str) -> List[str]:
    return [m for m in smtp.messages if reference in m]


@pytest.fixture
def healthy(stack: Stack) -> Stack:
    """The shared stack, all up before and after the test (a failed test may leave one down)."""
    ft.ensure_running(stack)
    yield stack
    ft.ensure_running(stack)


def begin(stack: Stack) -> ft.Visitor:
    """A visitor who asked a question, then went half way through the pre-screen."""
    v = ft.Visitor(stack)
    r = v.say(FAQ[0])
    assert r.status_code == 200 and FAQ[1] in v.text().lower()
    ft.run_steps(v, ft.PRESCREEN[:MID])
    return v


def finish(stack: Stack, smtp: Any, v: ft.Visitor, sent_before_fault: int) -> str:
    """The rest of the pre-screen to the referral; the referral is stored once, notified once."""
    ft.run_steps(v, ft.PRESCREEN[sent_before_fault:])
    rows = ft.referral_rows(stack, v.cid)
    assert len(rows) == 1 and rows[0][1] == "eligible", rows
    reference = rows[0][0]
    assert reference in v.text()
    assert wait_for(lambda: notices_for(smtp, reference)), "the clinician's notice did not arrive"
    time.sleep(0.5)
    assert len(notices_for(smtp, reference)) == 1
    return reference


def sent_texts(steps: List[ft.Step]) -> List[str]:
    """What the tracker holds for these steps: typed text, or a button's payload."""
    return [value for kind, value, _ in steps]


def assert_each_message_once(stack: Stack, v: ft.Visitor) -> None:
    """Every visitor message is in the tracker once, in order (buttons as their payloads)."""
    stored = ft.user_texts(stack, v.cid)
    typed = [FAQ[0]] + [value for kind, value, _ in ft.PRESCREEN]
    assert len(stored) == len(typed), stored
    for s, (kind, value) in zip(stored, [("say", FAQ[0])] + [(k, val) for k, val, _ in ft.PRESCREEN]):
        if kind == "say":  # (a button is stored as its payload)
            assert s == value, (s, value)
    users = [e for e in ft.tracker_events(stack, v.cid) if e.get("event") == "user"]
    ids = [(e.get("metadata") or {}).get("message_id") for e in users]
    assert len(ids) == len(set(ids)), ids  # no message id twice


# --- a process killed and started again ---------------------------------------------------------


@pytest.mark.parametrize("name", ["web", "rasa"])
def test_a_process_killed_mid_prescreen_and_restarted_the_visitor_goes_on_and_nothing_is_doubled(
    healthy: Stack, smtp: Any, name: str
) -> None:
    stack = healthy
    v = begin(stack)
    step = ft.PRESCREEN[MID]
    message_id = v.next_id()
    ft.kill(stack, name)
    if name == "web":
        with pytest.raises(requests.ConnectionError):
            v.step(step, message_id)
    else:
        down = v.step(step, message_id)
        assert down.status_code == 503 and down.json()["detail"] == UNAVAILABLE
    took = ft.restart(stack, name)
    again = v.step(step, message_id)  # the widget's Retry: the same message id
    assert again.status_code == 200 and step[2] in v.text(), (took, v.text())
    finish(stack, smtp, v, MID + 1)
    assert_each_message_once(stack, v)
    # the history a reload shows: every message once
    history = v.session.get(f"{stack.web_url}/api/history", timeout=30).json()["messages"]
    said = [m["text"] for m in history if m["role"] == "visitor"]
    assert said.count(ft.CONTACT["email"]) == 1 and said[0] == FAQ[0]


def test_a_web_app_killed_after_rasa_took_the_message_answers_the_retry_without_a_second_message(
    healthy: Stack, smtp: Any
) -> None:
    """The answer is lost with the process; the widget retries with the same id on the new process,
    whose reply cache is empty: the tracker says the message was answered, and that answer is given."""
    stack = healthy
    v = begin(stack)
    step = ft.PRESCREEN[MID]
    message_id = v.next_id()
    outcome: Dict[str, Any] = {}

    def send() -> None:
        try:
            outcome["response"] = v.step(step, message_id)
        except requests.RequestException as exc:
            outcome["error"] = exc

    sender = threading.Thread(target=send)
    sender.start()

    def rasa_has_it() -> bool:
        return any((e.get("metadata") or {}).get("message_id") == message_id
                   for e in ft.tracker_events(stack, v.cid) if e.get("event") == "user")

    assert wait_for(rasa_has_it, timeout_s=30, every_s=0.005)
    ft.kill(stack, "web")
    sender.join()
    ft.restart(stack, "web")
    again = v.step(step, message_id)
    assert again.status_code == 200 and step[2] in v.text(), v.text()
    finish(stack, smtp, v, MID + 1)
    assert_each_message_once(stack, v)


# --- the action server down ---------------------------------------------------------------------------


def test_the_action_server_down_is_said_honestly_and_the_prescreen_resumes_when_it_is_back(
    healthy: Stack, smtp: Any
) -> None:
    stack = healthy
    v = begin(stack)
    calm = ft.Visitor(stack)
    assert calm.say("hello").status_code == 200
    step = ft.PRESCREEN[MID]
    message_id = v.next_id()
    ft.kill(stack, "actions")

    # mid-form: Rasa answers nothing of its own, the visitor is told and can retry
    down = v.step(step, message_id)
    assert down.status_code == 503, down.text
    assert down.json() == {"error": "assistant_unavailable", "detail": PART_UNAVAILABLE}
    assert "988" in PART_UNAVAILABLE and "911" in PART_UNAVAILABLE

    # a crisis while the action server is down (its answer is a custom action) still gets where to turn
    r = calm.say("i want to kill myself")
    assert r.status_code == 503 and "988" in r.json()["detail"] and "911" in r.json()["detail"]

    # a new visitor: the session cannot start; no cookie, so that the retry starts afresh
    newcomer = ft.Visitor(stack)
    r = newcomer.say("hello")
    assert r.status_code == 503 and r.json()["detail"] == PART_UNAVAILABLE
    assert "cid" not in newcomer.session.cookies

    took = ft.restart(stack, "actions")

    again = v.step(step, message_id)  # Retry
    assert again.status_code == 200 and step[2] in v.text(), (took, v.text())
    reference = finish(stack, smtp, v, MID + 1)
    assert reference
    # Rasa's tracker holds the message sent while the action server was down twice (once
    # unanswered, once answered after Retry, both with its id: the store only appends)...
    retried = [e for e in ft.tracker_events(stack, v.cid)
               if e.get("event") == "user" and (e.get("metadata") or {}).get("message_id") == message_id]
    assert len(retried) == 2
    # ...and every transcript shows it once, answered: the widget's history after a reload, the
    # console's conversation page and its exports
    said = [FAQ[0]] + [value for _kind, value, _ in ft.PRESCREEN]
    history = v.session.get(f"{stack.web_url}/api/history", timeout=30).json()["messages"]
    assert [m["text"] for m in history if m["role"] == "visitor"] == said
    answered_try = history[[m["ts"] for m in history].index(retried[1]["timestamp"]) + 1]
    assert answered_try["role"] == "bot" and step[2] in answered_try["text"]
    console = signed_in_console(stack)
    page = console.get(f"{stack.console_url}/conversations/{v.cid}", timeout=30)
    assert page.status_code == 200
    assert page.text.count('class="msg msg-visitor') == len(said)
    first, answered = tries_of(stack, v.cid, message_id)
    assert f'data-event-id="{first}"' not in page.text and f'data-event-id="{answered}"' in page.text
    exported = console.get(f"{stack.console_url}/conversations/{v.cid}/export.json", timeout=30).json()
    assert [m["text"] for m in exported["conversations"][0]["messages"] if m["speaker"] == "visitor"] == said
    rows = list(csv.reader(io.StringIO(console.get(f"{stack.console_url}/conversations/{v.cid}/export.csv", timeout=30).text)))
    assert [r[3] for r in rows[1:] if r[2] == "visitor"] == said

    # the new visitor, once it is back: a conversation that starts properly (the clinic's facts set)
    clinic = load_clinic_info(ROOT / "settings")
    hello = newcomer.say("hello")
    assert hello.status_code == 200 and clinic.name in newcomer.text()
    assert any(e.get("event") == "session_started" for e in ft.tracker_events(stack, newcomer.cid))


def signed_in_console(stack: Stack, role: str = "clinician") -> requests.Session:
    """A staff member signed in to the console (started if it is not), as a browser does it."""
    from tests import console_driver as cd

    stack.start_console()
    cd.make_staff(stack)
    s = requests.Session()
    form = s.get(f"{stack.console_url}/login", timeout=30)
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    signed = s.post(f"{stack.console_url}/login", timeout=30, allow_redirects=False,
                    data={"csrf": csrf, "next": "/", "username": cd.USERS[role], "password": cd.PASSWORD[role]})
    assert signed.status_code in (302, 303), signed.status_code
    return s


def tries_of(stack: Stack, conversation_id: str, message_id: str) -> List[int]:
    """The tracker store's ids of the user events with this message id."""
    with encrypted_db.connect(str(stack.var_dir / "tracker.db")) as conn:
        rows = conn.execute(
            "SELECT id, data FROM events WHERE sender_id = ? AND type_name = 'user' ORDER BY id", (conversation_id,)
        ).fetchall()
    return [event_id for event_id, data in rows if (json.loads(data).get("metadata") or {}).get("message_id") == message_id]


# --- the clinic DB locked, the disk full ---------------------------------------------------------------


def test_a_locked_clinic_db_gives_a_clear_error_and_the_referral_is_made_once_it_is_free(
    healthy: Stack, smtp: Any
) -> None:
    """Another process holds an exclusive lock longer than the busy timeout (15 s)."""
    stack = healthy
    v = ft.Visitor(stack)
    ft.run_steps(v, ft.PRESCREEN[:-1])
    other = ft.Visitor(stack)
    ft.run_steps(other, ft.PRESCREEN[:2])
    clinic = load_clinic_info(ROOT / "settings")
    results: Dict[str, Any] = {}

    with ft.write_lock_held(stack.var_dir / "clinic.db"):
        def consent() -> None:
            started = time.monotonic()
            results["response"] = v.step(ft.PRESCREEN[-1])
            results["took"] = time.monotonic() - started

        t = threading.Thread(target=consent)
        t.start()
        time.sleep(1)
        # meanwhile another visitor's pre-screen goes on: the action server is not stuck on the lock
        started = time.monotonic()
        r = other.step(ft.PRESCREEN[2])
        assert r.status_code == 200 and ft.PRESCREEN[2][2] in other.text()
        assert time.monotonic() - started < 5
        t.join(timeout=60)
        assert ft.referral_rows(stack, v.cid) == []  # not yet: the lock is still held

    response = results["response"]
    assert response.status_code == 200
    said = v.text()
    assert "couldn't pass your details" in said and clinic.phone in said and clinic.email in said
    assert "Your reference is" not in said
    assert ft.integrity_check(stack.var_dir / "clinic.db") == "ok"
    # the lock is gone: the referral is made in the background, once, and the clinician notified
    rows = wait_for(lambda: ft.referral_rows(stack, v.cid), timeout_s=30)
    assert len(rows) == 1 and rows[0][1] == "eligible"
    assert wait_for(lambda: notices_for(smtp, rows[0][0]))
    time.sleep(0.5)
    assert len(notices_for(smtp, rows[0][0])) == 1
    assert ft.integrity_check(stack.var_dir / "clinic.db") == "ok"


def test_a_referral_the_locked_db_refused_survives_an_action_server_killed_meanwhile(
    healthy: Stack, smtp: Any
) -> None:
    """The referral waits in the spool (var/spool/referrals), not in the killed process's memory: the
    action server started again stores it by itself, once, with the visitor's contact, one notice."""
    from clinic.storage import referral_spool
    from clinic.storage.crypto import decrypt_json
    from clinic.settings import load_encryption_key

    stack = healthy
    v = ft.Visitor(stack)
    ft.run_steps(v, ft.PRESCREEN[:-1])
    spool = referral_spool.spool_dir(stack.var_dir)
    with ft.write_lock_held(stack.var_dir / "clinic.db"):
        response = v.step(ft.PRESCREEN[-1])
        assert response.status_code == 200 and "couldn't pass your details" in v.text()
        entry = spool / referral_spool.entry_name("referral", v.cid)
        assert entry.exists()
        for clear in ft.CONTACT.values():
            assert clear.encode() not in entry.read_bytes()
        ft.kill(stack, "actions")  # and with it whatever it was retrying in memory
    assert ft.referral_rows(stack, v.cid) == []
    ft.restart(stack, "actions")
    rows = wait_for(lambda: ft.referral_rows(stack, v.cid), timeout_s=60)
    assert len(rows) == 1 and rows[0][1] == "eligible", rows
    assert not entry.exists()
    assert wait_for(lambda: notices_for(smtp, rows[0][0])), "the clinician's notice did not arrive"
    time.sleep(0.5)
    assert len(notices_for(smtp, rows[0][0])) == 1
    with encrypted_db.connect(stack.var_dir / "clinic.db") as conn:
        token = conn.execute("select contact_encrypted from referrals where conversation_id = ?", (v.cid,)).fetchone()[0]
    contact = decrypt_json(load_encryption_key(stack.var_dir), token)
    assert (contact["name"], contact["email"]) == (ft.CONTACT["name"], ft.CONTACT["email"])
    assert ft.integrity_check(stack.var_dir / "clinic.db") == "ok"


SENDER = "d15cf011" * 4


def _contact_tracker() -> Tracker:
    slots: Dict[str, Any] = {
        "age": 30, "state": "TX", "concern": "depression", "treatments_tried": "medication",
        "phq2_interest": 2, "phq2_mood": 2, "gad2_nervous": 1, "gad2_worry": 1,
        "suicidal_thoughts": "no", "pregnant_or_breastfeeding": "no", "psychosis_history": "no",
        "cardiovascular": "no", "medications": "no", "medical_conditions": "no", "substance_use": "no",
        "support_person": "yes",
        "contact_name": "Jane Doe", "contact_email": "jane@example.com", "contact_phone": "+1 212-555-0199",
        "contact_time": "Mornings", "contact_consent": "yes",
    }
    return as_stored(Tracker(sender_id=SENDER, slots=slots, latest_message={"text": "yes", "intent": {"name": "affirm"}},
                             events=[], paused=False, followup_action=None, active_loop={}, latest_action_name="action_listen"))


def test_a_full_disk_gives_a_clear_error_no_corruption_and_the_referral_once_there_is_room(
    clinic_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite's own SQLITE_FULL ("database or disk is full"), with the database capped at the pages it
    has (PRAGMA max_page_count) and those pages filled: what a full disk does to a write."""
    import actions.referral as referral_actions
    from clinic.settings import get_settings

    settings = get_settings()
    engine = db.get_engine(settings.clinic_db_url)
    notices: List[str] = []
    monkeypatch.setattr(referral_actions.notifier, "notify_referral", lambda _e, _s, ref: notices.append(ref) or True)
    monkeypatch.setattr(referral_actions, "RETRY_EVERY_S", 0.2)
    room = {"pages": None}

    @event.listens_for(engine, "connect")
    def cap(dbapi_connection: Any, _record: Any) -> None:
        if room["pages"] is not None:
            dbapi_connection.execute(f"PRAGMA max_page_count = {room['pages']}")

    def full() -> None:
        """Caps the file at the pages it has, then fills them with other visitors' referrals."""
        with engine.connect() as conn:
            room["pages"] = conn.exec_driver_sql("PRAGMA page_count").scalar()
        engine.dispose()
        for i in range(10_000):
            try:
                referrals.create_referral(engine, settings.encryption_key, f"filler-{i:05d}", "eligible", [],
                                          {"age": 40}, {"name": "x" * 200})
            except Exception as exc:  # noqa: BLE001
                assert "full" in str(exc), exc
                return
        raise AssertionError("the database never filled up")

    full()
    with engine.connect() as conn:
        before = conn.execute(select(func.count()).select_from(db.referrals)).scalar()
    dispatcher = CollectingDispatcher()

    async def scenario() -> List[Any]:
        events = await referral_actions.ActionSubmitReferral().run(dispatcher, _contact_tracker(), {})
        assert [m.get("response") for m in dispatcher.messages] == ["utter_referral_not_stored"]
        assert events == []  # nothing forgotten: the answers and contact stay for the retry
        await asyncio.sleep(1.0)  # the background retries still fail: the disk is still full
        assert referrals.referral_for_conversation(engine, SENDER) is None
        with encrypted_db.connect(str(clinic_env / "var" / "clinic.db")) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        room["pages"] = None  # room again (a new connection has no cap)
        engine.dispose()
        for _ in range(100):
            if referrals.referral_for_conversation(engine, SENDER) is not None and notices:
                break
            await asyncio.sleep(0.1)
        return events

    asyncio.run(scenario())
    row = referrals.referral_for_conversation(engine, SENDER)
    assert row is not None and notices == [row["reference"]]
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(db.referrals)).scalar() == before + 1
    with encrypted_db.connect(str(clinic_env / "var" / "clinic.db")) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    plain = referrals.decrypt_referral(row, settings.encryption_key)
    assert plain["contact"]["email"] == "jane@example.com" and plain["outcome"] == "eligible"
