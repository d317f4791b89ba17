"""Health data unreadable at rest (issue 19, finding 1): after a visitor's whole pre-screen to a
referral, a callback request and a live chat through the real stack (Rasa, action server, web app,
console) and a backup, no file under var/ (databases, their WAL and SHM files, the backup, the
mailbox) holds the visitor's name, e-mail, phone or any answer as typed, and the console still
shows all of it; var/ is its owner's only; plain files from before are converted."""

import os
import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest
import requests

from clinic.storage import db
from clinic.rules import handoff
from clinic.console import auth
from tests.stack import ROOT, Stack, button, conversation_id, press, say
from tests.test_end_to_end_handoff import rasa

NAME = "Philomena Quarrington"
EMAIL = "philomena.quarrington@example.org"
PHONE_TYPED, PHONE_STORED = "(415) 555-0187", "+1 415-555-0187"
CALLBACK_NAME, CALLBACK_PHONE, CALLBACK_STORED = "Ignatius Vellacott", "(646) 555-0134", "+1 646-555-0134"
# typed answers: each one health data that must not be readable from the disk
ANSWERS = {
    "age": "twenty nine years old",
    "state": "Texas please",
    "pregnant": "nope not pregnant at all",
    "psychosis": "no psychosis history ever",
    "heart": "no heart trouble whatsoever",
    "substances": "nothing of that sort",
    "time": "weekday mornings before nine",
}
QUESTION = "does the zyrtaquine clinic take insurance"  # the visitor's own question: searchable in the console
LIVE_FROM_VISITOR = "my cat Bartholomew keeps me company during sessions"
LIVE_FROM_STAFF = "Thanks Philomena, noted about Bartholomew"
PASSWORD = "clinician-pass-phrase-2"


def texts(response: requests.Response) -> str:
    assert response.status_code == 200, response.text
    return " ".join(m["text"] for m in response.json()["messages"])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dict[str, Any]]:
    """A stack of its own, a visitor's referral, callback request and live chat, a backup."""
    stack = Stack(tmp_path_factory.mktemp("at-rest"), extra_env={"SMTP_PORT": "1"})  # notices retried later
    try:
        stack.start_all()
        stack.start_console()
        found: Dict[str, Any] = {"stack": stack}
        found["referral"] = referral(stack)
        found["callback"] = callback(stack)
        found["live"] = live_chat(stack)
        made = subprocess.run([sys.executable, "-m", "clinic.storage.backup", "create"], cwd=ROOT,
                              env={**stack.env(), "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120)
        assert made.returncode == 0, made.stderr
        yield found
    finally:
        stack.stop_all()


def referral(stack: Stack) -> Dict[str, str]:
    s = requests.Session()
    assert say(s, stack, QUESTION).status_code == 200
    intro = say(s, stack, "am i eligible for this?")
    r = press(s, stack, button(intro, "Yes, let's start"))
    assert "How old are you?" in texts(r)
    r = say(s, stack, ANSWERS["age"])
    assert "Which US state" in texts(r), texts(r)
    r = say(s, stack, ANSWERS["state"])
    r = press(s, stack, button(r, "Depression"))
    r = press(s, stack, button(r, "Both"))
    for _ in range(4):
        r = press(s, stack, button(r, "More than half the days"))
    r = press(s, stack, button(r, "No"))
    for key in ("pregnant", "psychosis", "heart"):
        r = say(s, stack, ANSWERS[key])
    assert "Do you take any of these?" in texts(r), texts(r)
    r = press(s, stack, button(r, "None of these"))
    r = press(s, stack, button(r, "None of these"))
    assert "alcohol or drugs" in texts(r), texts(r)
    r = say(s, stack, ANSWERS["substances"])
    assert "sober adult" in texts(r), texts(r)
    r = press(s, stack, button(r, "Yes"))
    assert "What name" in texts(r)
    say(s, stack, NAME)
    say(s, stack, EMAIL)
    say(s, stack, PHONE_TYPED)
    r = say(s, stack, ANSWERS["time"])
    done = texts(press(s, stack, button(r, "Yes, contact me")))
    reference = re.search(r"\*\*([A-Z0-9]{3}-[A-Z0-9]{3})\*\*", done)
    assert reference, done
    return {"cid": conversation_id(s, stack), "reference": reference.group(1)}


def callback(stack: Stack) -> Dict[str, str]:
    stack.set_staffed(False)
    try:
        s = requests.Session()
        r = press(s, stack, button(say(s, stack, "can someone call me back"), "Yes"))
        assert "What name" in texts(r)
        say(s, stack, CALLBACK_NAME)
        r = say(s, stack, CALLBACK_PHONE)
        done = texts(press(s, stack, button(r, "Evenings")))
        assert CALLBACK_NAME in done
    finally:
        stack.set_staffed(True)
    return {"cid": conversation_id(s, stack)}


def live_chat(stack: Stack) -> Dict[str, str]:
    s = requests.Session()
    queued = texts(press(s, stack, button(say(s, stack, "can i talk to a person please"), "Yes")))
    assert "in line" in queued
    cid = conversation_id(s, stack)
    engine = stack.clinic_engine()
    row = handoff.active(engine, cid)
    handoff.change(engine, row["id"], "claim", handoff.WAITING, staff_id=7, staff_name="Ana")
    rasa(stack, lambda c: c.append_events(cid, handoff.joined_events(7, "Ana", "Daytryp RX")))
    assert say(s, stack, LIVE_FROM_VISITOR).status_code == 200  # to the person, through the web app
    rasa(stack, lambda c: c.append_events(cid, [handoff.staff_message_event(7, "Ana", LIVE_FROM_STAFF)]))
    return {"cid": cid, "request": str(row["id"])}


def needles() -> List[str]:
    digits = lambda phone: re.sub(r"\D", "", phone)  # noqa: E731
    return [NAME, EMAIL, PHONE_TYPED, PHONE_STORED, digits(PHONE_STORED)[1:], CALLBACK_NAME, CALLBACK_PHONE,
            CALLBACK_STORED, LIVE_FROM_VISITOR, LIVE_FROM_STAFF, QUESTION, *ANSWERS.values(),
            "Quarrington", "Vellacott", "Bartholomew", "zyrtaquine"]


def test_no_file_under_var_holds_the_visitors_words_or_contact_details(world: Dict[str, Any]) -> None:
    var = world["stack"].var_dir
    files = [p for p in var.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {"tracker.db", "clinic.db", "locks.db"} <= names
    assert any(n.endswith("-wal") for n in names)  # read while the processes run: their write-ahead logs too
    assert any(p.parent.parent.name == "backups" for p in files)
    found = []
    for path in files:
        data = path.read_bytes().lower()
        for needle in needles():
            for form in {needle.lower().encode(), needle.lower().encode("utf-16-le")}:
                if form in data:
                    found.append((str(path.relative_to(var)), needle))
    assert found == []
    for name in ("tracker.db", "clinic.db", "locks.db"):
        assert not (var / name).read_bytes().startswith(b"SQLite format 3")


def test_var_is_its_owners_only(world: Dict[str, Any]) -> None:
    var = world["stack"].var_dir
    assert stat.S_IMODE(var.stat().st_mode) == 0o700
    for path in var.rglob("*"):
        mode = stat.S_IMODE(path.lstat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), (str(path.relative_to(var)), oct(mode))


def console_session(stack: Stack) -> requests.Session:
    try:
        auth.create_user(stack.clinic_engine(), "cleo.rest", PASSWORD, "clinician")
    except auth.StaffError:
        pass
    s = requests.Session()
    page = s.get(f"{stack.console_url}/login", timeout=30)
    token = re.search(r'name="csrf" value="([^"]*)"', page.text).group(1)
    signed_in = s.post(f"{stack.console_url}/login", data={"username": "cleo.rest", "password": PASSWORD,
                                                          "csrf": token, "next": "/conversations"}, timeout=30)
    assert signed_in.status_code == 200 and "/login" not in signed_in.url
    return s


def test_the_console_still_shows_everything(world: Dict[str, Any]) -> None:
    stack = world["stack"]
    s = console_session(stack)
    url = stack.console_url
    cid = world["referral"]["cid"]
    found = s.get(f"{url}/conversations", params={"q": "zyrtaquine"}, timeout=30).text
    assert cid in found  # search over the encrypted clinic DB
    transcript = s.get(f"{url}/conversations/{cid}", timeout=30).text
    for answer in (ANSWERS["age"], ANSWERS["state"], ANSWERS["pregnant"], NAME, EMAIL):
        assert answer in transcript, answer
    referral = s.get(f"{url}/referrals/{world['referral']['reference']}", timeout=30).text
    assert NAME in referral and EMAIL in referral and PHONE_STORED in referral
    callbacks = s.get(f"{url}/handoffs", timeout=30).text
    assert CALLBACK_NAME in callbacks and CALLBACK_STORED in callbacks
    live = s.get(f"{url}/live/{world['live']['request']}", timeout=30).text
    assert LIVE_FROM_VISITOR in live and LIVE_FROM_STAFF in live


def test_plain_files_from_before_are_encrypted_in_place(tmp_path: Path) -> None:
    """`python -m clinic.storage.encrypt_existing` converts the plain files an earlier version left (with a
    search table, a WAL, a backup), refuses a file in use, and leaves encrypted ones alone."""
    import sqlite3

    var = tmp_path / "var"
    (var / "backups" / "old").mkdir(parents=True)
    for path in (var / "tracker.db", var / "clinic.db", var / "locks.db", var / "backups" / "old" / "tracker.db"):
        conn = sqlite3.connect(path)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, data TEXT)")
        conn.execute("CREATE VIRTUAL TABLE search USING fts5(data, content='events', content_rowid='id')")
        conn.execute("INSERT INTO events (data) VALUES (?)", (f"{EMAIL} {ANSWERS['pregnant']}",))
        conn.execute("INSERT INTO search (rowid, data) VALUES (1, ?)", (f"{EMAIL} {ANSWERS['pregnant']}",))
        conn.commit()
        conn.close()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CLINIC_VAR_DIR": str(var),
           "CLINIC_DB_URL": f"sqlite:///{var / 'clinic.db'}"}
    env.pop("CLINIC_ENCRYPTION_KEY", None)
    env.pop("TRACKER_DB_URL", None)
    command = [sys.executable, "-m", "clinic.storage.encrypt_existing"]

    holder = sqlite3.connect(var / "clinic.db")  # the assistant still running
    holder.execute("BEGIN EXCLUSIVE")
    busy = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    holder.rollback()
    holder.close()
    assert busy.returncode == 2 and "in use" in busy.stderr

    assert subprocess.run([*command, "--check"], cwd=ROOT, env=env, capture_output=True, timeout=60).returncode == 1
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    checked = subprocess.run([*command, "--check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0 and "every SQLite file is encrypted" in checked.stdout
    from tests import encrypted_db

    for path in (p for p in var.rglob("*") if p.is_file() and p.name != "encryption_key"):
        data = path.read_bytes()
        assert EMAIL.encode() not in data and b"pregnant" not in data, path
        assert not data.startswith(b"SQLite format 3"), path
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        with encrypted_db.connect(path, var) as conn:
            assert conn.execute("SELECT rowid FROM search WHERE search MATCH 'philomena*'").fetchall() == [(1,)]
    again = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and "nothing to do" in again.stdout


def test_a_plain_file_is_refused_with_what_to_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3

    from clinic.storage import encrypted_sqlite

    plain = tmp_path / "clinic.db"
    sqlite3.connect(plain).execute("CREATE TABLE t (x)").connection.commit()
    monkeypatch.setenv("CLINIC_VAR_DIR", str(tmp_path))
    from clinic.settings import get_settings

    get_settings.cache_clear()
    try:
        with pytest.raises(encrypted_sqlite.NotEncrypted, match="clinic.storage.encrypt_existing"):
            db.get_engine(f"sqlite:///{plain}")
    finally:
        get_settings.cache_clear()
        db.get_engine.cache_clear()


def test_every_process_of_the_assistant_creates_files_for_its_owner_only(tmp_path: Path) -> None:
    """The umask is set by the clinic package, which every process imports first (the launchers of
    Rasa and the action server, the web app, the console, the notifier, the scripts)."""
    for module in ("clinic.rasa_runtime.rasa_launch", "clinic.rasa_runtime.action_launch", "clinic.web.app", "clinic.console.app",
                   "clinic.mail.notifier", "clinic.storage.backup", "clinic.storage.encrypt_existing"):
        made = tmp_path / module
        code = f"import {module}, pathlib; pathlib.Path({str(made)!r}).write_text('x')"
        done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                              env={**os.environ, "PYTHONPATH": str(ROOT), "CLINIC_VAR_DIR": str(tmp_path / "var")})
        assert done.returncode == 0, done.stderr
        assert stat.S_IMODE(made.stat().st_mode) == 0o600, module
