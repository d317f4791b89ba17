"""Backup of the embedded store while the assistant runs, and a tested restore (clinic.storage.backup)."""

import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests

from clinic.storage import backup, db
from clinic.rules import handoff
from clinic.settings import get_settings
from tests import encrypted_db
from tests.stack import ROOT, conversation_id, say


def tracker_rows(path: Path, sender: str = None, var_dir: Path = None) -> int:
    with encrypted_db.connect(path, var_dir) as conn:
        if sender is None:
            return conn.execute("select count(*) from events").fetchone()[0]
        return conn.execute("select count(*) from events where sender_id = ?", (sender,)).fetchone()[0]


@pytest.fixture
def store(clinic_env):
    """A var/ folder with a clinic DB and a tracker store shaped like Rasa's."""
    var = clinic_env / "var"
    engine = db.get_engine(get_settings().clinic_db_url)
    handoff.request_live(engine, "c-1", "visitor_request", False)
    engine.dispose()  # its kept connection would hold the file (as a running web app does)
    with encrypted_db.connect(var / "tracker.db") as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("create table events (id integer primary key, sender_id text, type_name text, data text)")
        conn.executemany(
            "insert into events (sender_id, type_name, data) values (?, 'user', ?)",
            [("c-1", f'{{"text": "message {n}"}}') for n in range(200)],
        )
    return var


def test_a_backup_taken_while_writers_go_on_is_consistent_and_restores(store):
    stop = threading.Event()
    written = []

    def writer() -> None:  # Rasa writing events all along
        conn = encrypted_db.connect(store / "tracker.db", timeout=30)
        n = 0
        while not stop.is_set():
            conn.execute("insert into events (sender_id, type_name, data) values ('c-2', 'user', '{}')")
            conn.commit()
            n += 1
        written.append(n)
        conn.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        folder = backup.create(store / "backups" / "b1")
    finally:
        stop.set()
        thread.join()
    assert written[0] > 0
    files = backup.verify(folder)
    assert set(files) == {"tracker.db", "clinic.db"}
    assert oct((folder / "tracker.db").stat().st_mode & 0o777) == "0o600"
    in_backup = tracker_rows(folder / "tracker.db")
    assert 200 <= in_backup <= 200 + written[0]

    # the live store moves on (and loses a conversation); the restore brings back the backup
    with encrypted_db.connect(store / "tracker.db") as conn:
        conn.execute("delete from events where sender_id = 'c-1'")
    engine = db.get_engine(get_settings().clinic_db_url)
    with engine.begin() as conn:
        conn.execute(db.handoff_requests.delete())
    engine.dispose()
    assert backup.restore(folder) == ["tracker.db", "clinic.db"]
    assert tracker_rows(store / "tracker.db", "c-1") == 200
    assert tracker_rows(store / "tracker.db") == in_backup
    assert handoff.active(db.get_engine(get_settings().clinic_db_url), "c-1") is not None
    assert (store / "tracker.db.before-restore").exists() and tracker_rows(store / "tracker.db.before-restore", "c-1") == 0


def test_a_restore_is_refused_while_the_assistant_holds_the_database(store):
    folder = backup.create(store / "backups" / "b1")
    holder = encrypted_db.connect(store / "tracker.db")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(backup.BackupError, match="in use: stop the assistant"):
            backup.restore(folder)
    finally:
        holder.rollback()
        holder.close()
    assert not (store / "tracker.db.before-restore").exists()


@pytest.mark.parametrize("name", ["tracker.db", "clinic.db"])
def test_a_restore_is_refused_while_a_process_keeps_an_idle_connection(store, name):
    """Rasa's tracker store and the web app keep their SQLite connections (WAL) open between
    turns, holding no lock then: an exclusive transaction alone would not see them."""
    folder = backup.create(store / "backups" / "b1")
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys; from tests import encrypted_db; c = encrypted_db.connect(sys.argv[1]);"
         " c.execute('PRAGMA journal_mode=WAL');"
         " c.execute('select count(*) from sqlite_master').fetchone(); print('ready', flush=True); sys.stdin.read()",
         str(store / name)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"  # connected, read once, now idle
        with pytest.raises(backup.BackupError, match="in use: stop the assistant"):
            backup.restore(folder)
        assert not (store / f"{name}.before-restore").exists()
    finally:
        holder.stdin.close()
        holder.wait(timeout=10)
    assert backup.restore(folder)  # nobody holds it any more


def test_a_damaged_or_foreign_backup_is_refused(store, tmp_path):
    folder = backup.create(store / "backups" / "b1")
    data = bytearray((folder / "clinic.db").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / "clinic.db").write_bytes(bytes(data))
    with pytest.raises(backup.BackupError, match="checksum differs"):
        backup.restore(folder)
    with pytest.raises(backup.BackupError, match="not a backup"):
        backup.verify(tmp_path)
    with pytest.raises(FileExistsError):
        backup.create(folder)  # never over an earlier backup


def test_a_backup_is_encrypted_and_verify_opens_it_with_the_clinics_key(store, monkeypatch):
    folder = backup.create(store / "backups" / "b1")
    for name in ("tracker.db", "clinic.db"):
        data = (folder / name).read_bytes()
        assert not data.startswith(b"SQLite format 3")
        assert b"message 1" not in data and b"c-1" not in data
    assert set(backup.verify(folder)) == {"tracker.db", "clinic.db"}
    assert subprocess.run([sys.executable, "-m", "clinic.storage.backup", "verify", str(folder)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60).returncode == 0

    # another clinic's key does not open it: verify says so
    from cryptography.fernet import Fernet
    monkeypatch.setenv("CLINIC_ENCRYPTION_KEY", Fernet.generate_key().decode())
    get_settings.cache_clear()
    with pytest.raises(backup.BackupError, match="cannot be opened with the clinic's key"):
        backup.verify(folder)
    monkeypatch.delenv("CLINIC_ENCRYPTION_KEY")
    get_settings.cache_clear()

    # a plain SQLite file passed off as a backup (checksums made to match) is refused
    import hashlib
    import json
    plain = sqlite3.connect(folder / "plain.db")
    plain.execute("create table events (id integer primary key, data text)")
    plain.commit()
    plain.close()
    os.replace(folder / "plain.db", folder / "clinic.db")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"]["clinic.db"]["sha256"] = hashlib.sha256((folder / "clinic.db").read_bytes()).hexdigest()
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(backup.BackupError, match="plain .unencrypted. SQLite file"):
        backup.verify(folder)


def test_postgresql_is_backed_up_with_pg_dump(clinic_env, monkeypatch):
    monkeypatch.setenv("CLINIC_DB_URL", "postgresql://clinic@127.0.0.1/clinic")
    get_settings.cache_clear()
    with pytest.raises(backup.BackupError, match="pg_dump"):
        backup.stores()


def test_the_command_backs_up_the_running_assistant_and_the_copy_restores_elsewhere(stack, tmp_path):
    """While visitors chat with the real stack, `python -m clinic.storage.backup create` takes a copy; restored into
    an empty var/ folder, it holds the conversations that were there."""
    s = requests.Session()
    assert say(s, stack, "hello there").status_code == 200
    cid = conversation_id(s, stack)
    assert say(s, stack, "can i talk to a person please").status_code == 200

    chatting = threading.Event()
    errors = []

    def visitors() -> None:
        while not chatting.is_set():
            r = say(requests.Session(), stack, "what is ketamine therapy?")
            if r.status_code != 200:
                errors.append(r.status_code)

    thread = threading.Thread(target=visitors)
    thread.start()
    env = {**stack.env(), "PYTHONPATH": str(ROOT)}
    try:
        made = subprocess.run(
            [sys.executable, "-m", "clinic.storage.backup", "create", str(tmp_path / "backup")],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
        )
    finally:
        chatting.set()
        thread.join()
    assert made.returncode == 0, made.stderr
    assert "encryption key is not in it" in made.stdout
    assert errors == []  # the visitors were not held up into errors

    fresh = tmp_path / "fresh-var"
    fresh_env = {**env, "CLINIC_VAR_DIR": str(fresh), "CLINIC_DB_URL": f"sqlite:///{fresh / 'clinic.db'}"}
    fresh_env.pop("TRACKER_DB_URL", None)
    # without the clinic's key (a new one is made in the fresh var/) the backup does not open
    refused = subprocess.run(
        [sys.executable, "-m", "clinic.storage.backup", "restore", str(tmp_path / "backup")],
        cwd=ROOT, env=fresh_env, capture_output=True, text=True, timeout=120,
    )
    assert refused.returncode == 2 and "cannot be opened with the clinic's key" in refused.stderr
    assert not (fresh / "tracker.db").exists()
    # with it (kept apart from the backup, as SECURITY.md says) it does
    fresh_env["CLINIC_ENCRYPTION_KEY"] = (stack.var_dir / "encryption_key").read_text().strip()
    restored = subprocess.run(
        [sys.executable, "-m", "clinic.storage.backup", "restore", str(tmp_path / "backup")],
        cwd=ROOT, env=fresh_env, capture_output=True, text=True, timeout=120,
    )
    assert restored.returncode == 0, restored.stderr
    assert tracker_rows(fresh / "tracker.db", cid, stack.var_dir) >= 4
    with encrypted_db.connect(fresh / "clinic.db", var_dir=stack.var_dir) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert os.stat(fresh / "clinic.db").st_mode & 0o077 == 0
