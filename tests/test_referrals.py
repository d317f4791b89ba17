"""Referrals and waitlist storage: encrypted at rest, one per conversation, key handling."""

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from clinic.storage import referrals
from clinic import settings
from clinic.storage.crypto import DecryptionError, decrypt_json, encrypt_json
from clinic.storage.db import get_engine

CONTACT = {"name": "Rosalind Quimby", "email": "rosalind.quimby@example.org", "phone": "+1 512 555 0187"}
ANSWERS = {
    "age": 37,
    "state": "TX",
    "main_concern": "ptsd",
    "treatments_tried": "sertraline and talk therapy",
    "phq2": [2, 3],
    "support_person": "my sister Marguerite",
}
ROOT = Path(__file__).resolve().parent.parent

REASONS = ["reported uncontrolled hypertension"]


@pytest.fixture
def env(clinic_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("CLINIC_ENCRYPTION_KEY", raising=False)
    settings.get_settings.cache_clear()
    return clinic_env


@pytest.fixture
def engine(env: Path):
    return get_engine(settings.get_settings().clinic_db_url)


@pytest.fixture
def key(env: Path) -> bytes:
    return settings.get_settings().encryption_key


def raw_rows(engine, table: str) -> str:
    with engine.connect() as conn:
        return repr([tuple(r) for r in conn.execute(text(f"SELECT * FROM {table}"))])


def test_reference_format():
    seen = {referrals.new_reference() for _ in range(2000)}
    assert len(seen) > 1990  # random: a rare repeat is possible, many are not
    for ref in seen:
        assert re.fullmatch(r"[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{3}-[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{3}", ref)
        assert not set(ref) & set("01OIL")
        assert referrals.REFERENCE_RE.match(ref)


def test_normalize_reference():
    assert referrals.normalize_reference(" k7q-4m2 ") == "K7Q-4M2"
    assert referrals.normalize_reference("k7q4m2") == "K7Q-4M2"
    assert referrals.normalize_reference("K0Q-4M2") is None
    assert referrals.normalize_reference("K7Q-4M") is None


def test_referral_is_stored_encrypted_and_decrypts(engine, key):
    ref = referrals.create_referral(engine, key, "conv-1", "clinician_review", REASONS, ANSWERS, CONTACT, urgent=True)
    assert referrals.REFERENCE_RE.match(ref)

    raw = raw_rows(engine, "referrals")
    for secret in list(CONTACT.values()) + ["sertraline", "Marguerite", "hypertension"]:
        assert secret not in raw
    row = referrals.get_referral(engine, ref)
    assert row["status"] == "new"
    assert row["outcome"] == "clinician_review"
    assert row["urgent"] is True
    assert row["notified_at"] is None
    assert row["notify_attempts"] == 0
    assert row["last_notify_error"] is None

    plain = referrals.decrypt_referral(row, key)
    assert plain["contact"] == CONTACT
    assert plain["answers"] == ANSWERS
    assert plain["reasons"] == REASONS
    assert plain["reference"] == ref
    assert plain["conversation_id"] == "conv-1"
    assert "contact_encrypted" not in plain and "answers_encrypted" not in plain


def test_one_referral_per_conversation(engine, key):
    first = referrals.create_referral(engine, key, "conv-1", "eligible", [], ANSWERS, CONTACT)
    again = referrals.create_referral(engine, key, "conv-1", "eligible", [], {"age": 50}, {"name": "Other"})
    other = referrals.create_referral(engine, key, "conv-2", "eligible", [], ANSWERS, CONTACT)
    assert again == first
    assert other != first
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM referrals")).scalar() == 2
    # the first referral's data stands
    assert referrals.decrypt_referral(referrals.get_referral(engine, first), key)["contact"] == CONTACT


def test_reference_collision_is_retried(engine, key, monkeypatch: pytest.MonkeyPatch):
    codes = iter(["AAA-AAA", "AAA-AAA", "BBB-BBB"])
    monkeypatch.setattr(referrals, "new_reference", lambda: next(codes))
    assert referrals.create_referral(engine, key, "conv-1", "eligible", [], ANSWERS, CONTACT) == "AAA-AAA"
    assert referrals.create_referral(engine, key, "conv-2", "eligible", [], ANSWERS, CONTACT) == "BBB-BBB"


def test_only_referral_outcomes_are_accepted(engine, key):
    for outcome in ("not_eligible", "out_of_area", "crisis"):
        with pytest.raises(ValueError):
            referrals.create_referral(engine, key, "conv-1", outcome, [], ANSWERS, CONTACT)
    assert referrals.pending_notifications(engine) == []


def test_pending_notifications_lists_unsent_oldest_first(engine, key):
    a = referrals.create_referral(engine, key, "conv-a", "eligible", [], ANSWERS, CONTACT)
    b = referrals.create_referral(engine, key, "conv-b", "eligible", [], ANSWERS, CONTACT)
    c = referrals.create_referral(engine, key, "conv-c", "eligible", [], ANSWERS, CONTACT)
    referrals.mark_notified(engine, b)
    assert [r["reference"] for r in referrals.pending_notifications(engine)] == [a, c]
    referrals.record_notify_failure(engine, a, "ConnectionRefusedError")
    row = referrals.get_referral(engine, a)
    assert (row["notify_attempts"], row["last_notify_error"]) == (1, "ConnectionRefusedError")


def test_waitlist_is_encrypted_and_one_per_conversation(engine, key):
    entry = referrals.join_waitlist(engine, key, "conv-9", "or", CONTACT)
    assert referrals.join_waitlist(engine, key, "conv-9", "OR", {"name": "Other"}) == entry
    raw = raw_rows(engine, "waitlist")
    for secret in CONTACT.values():
        assert secret not in raw
    row = referrals.waitlist_entry_for(engine, "conv-9")
    assert row["state"] == "OR"
    plain = referrals.decrypt_waitlist_entry(row, key)
    assert plain["contact"] == CONTACT
    assert "contact_encrypted" not in plain
    with pytest.raises(ValueError):
        referrals.join_waitlist(engine, key, "conv-10", "Oregon", CONTACT)


def test_wrong_key_fails_clearly(engine, key):
    ref = referrals.create_referral(engine, key, "conv-1", "eligible", [], ANSWERS, CONTACT)
    row = referrals.get_referral(engine, ref)
    with pytest.raises(DecryptionError, match="encryption key does not match"):
        referrals.decrypt_referral(row, Fernet.generate_key())
    with pytest.raises(DecryptionError):
        decrypt_json(key, "not-a-token")
    with pytest.raises(ValueError, match="not a valid Fernet key"):
        encrypt_json(b"short", {"a": 1})


def test_crypto_round_trip():
    key = Fernet.generate_key()
    value = {"name": "Zoë", "n": [1, 2.5, None, True]}
    token = encrypt_json(key, value)
    assert decrypt_json(key, token) == value
    assert decrypt_json(key.decode(), token) == value
    assert encrypt_json(key, value) != token  # fresh IV each time


def test_key_file_generated_0600_and_reused(env: Path):
    path = env / "var" / "encryption_key"
    assert not path.exists()
    key = settings.get_settings().encryption_key
    assert path.exists()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    Fernet(key)  # a valid key
    settings.get_settings.cache_clear()
    assert settings.get_settings().encryption_key == key
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".")] == []


def test_key_from_env_is_used_and_no_file_written(env: Path, monkeypatch: pytest.MonkeyPatch):
    key = Fernet.generate_key()
    monkeypatch.setenv("CLINIC_ENCRYPTION_KEY", key.decode())
    settings.get_settings.cache_clear()
    assert settings.get_settings().encryption_key == key
    assert not (env / "var" / "encryption_key").exists()
    monkeypatch.setenv("CLINIC_ENCRYPTION_KEY", "not-a-key")
    with pytest.raises(ValueError, match="CLINIC_ENCRYPTION_KEY: not a valid Fernet key"):
        settings.get_settings().encryption_key


def test_no_key_file_or_database_at_import(tmp_path: Path):
    var = tmp_path / "var"
    env = dict(os.environ, PYTHONPATH=str(ROOT), CLINIC_VAR_DIR=str(var),
               CLINIC_DB_URL=f"sqlite:///{var / 'clinic.db'}")
    env.pop("CLINIC_ENCRYPTION_KEY", None)
    code = ("import clinic.storage.crypto, clinic.storage.referrals, clinic.mail.notifier, clinic.storage.db\n"
            "from clinic.settings import get_settings\n"
            "get_settings()\n")
    subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, check=True)
    assert not var.exists()


def test_settings_defaults_and_env(env: Path, monkeypatch: pytest.MonkeyPatch):
    for name in ("SMTP_HOST", "SMTP_PORT", "SMTP_SENDER", "SMTP_RECIPIENTS", "SMTP_STARTTLS",
                 "SMTP_USERNAME", "SMTP_PASSWORD", "SMTP_TIMEOUT_S", "CONSOLE_URL", "NOTIFY_RETRY_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    settings.get_settings.cache_clear()
    s = settings.get_settings()
    assert (s.smtp_host, s.smtp_port, s.smtp_sender, s.smtp_recipients) == (
        "127.0.0.1", 1025, "assistant@localhost", ("clinicians@localhost",))
    assert (s.smtp_starttls, s.smtp_username, s.smtp_password, s.smtp_timeout_s) == (False, None, None, 10.0)
    assert (s.console_url, s.notify_retry_seconds) == ("http://127.0.0.1:8001", 60.0)

    monkeypatch.setenv("SMTP_RECIPIENTS", " a@clinic.test, b@clinic.test ,")
    monkeypatch.setenv("SMTP_STARTTLS", "true")
    monkeypatch.setenv("SMTP_USERNAME", "mailer")
    monkeypatch.setenv("SMTP_PASSWORD", "hunter2-secret")
    monkeypatch.setenv("CONSOLE_URL", "https://staff.clinic.test/")
    settings.get_settings.cache_clear()
    s = settings.get_settings()
    assert s.smtp_recipients == ("a@clinic.test", "b@clinic.test")
    assert s.smtp_starttls is True
    assert s.smtp_username == "mailer" and s.smtp_password == "hunter2-secret"
    assert s.console_url == "https://staff.clinic.test"
    assert "hunter2-secret" not in repr(s)
