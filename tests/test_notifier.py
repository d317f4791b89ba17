"""Clinician notices through a real SMTP server on loopback (aiosmtpd)."""

import email
import email.policy
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import List

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import create_engine

from clinic.mail import notifier
from clinic.storage import referrals
from clinic import settings
from clinic.storage.db import get_engine

ROOT = Path(__file__).resolve().parent.parent

CONTACT = {"name": "Rosalind Quimby", "email": "rosalind.quimby@example.org", "phone": "+1 512 555 0187"}
ANSWERS = {
    "age": 37,
    "state": "TX",
    "main_concern": "ptsd",
    "treatments_tried": "sertraline",
    "pregnant": "no",
    "support_person": "Marguerite",
}
REASONS = ["reported uncontrolled hypertension"]


class Collector:
    def __init__(self) -> None:
        self.messages: List[dict] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        self.messages.append(
            {"from": envelope.mail_from, "to": list(envelope.rcpt_tos), "data": envelope.content}
        )
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def smtp_env(clinic_env: Path, port: int, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("CLINIC_ENCRYPTION_KEY", raising=False)
    for name in ("SMTP_STARTTLS", "SMTP_USERNAME", "SMTP_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SMTP_PORT", str(port))
    monkeypatch.setenv("SMTP_SENDER", "assistant@clinic.test")
    monkeypatch.setenv("SMTP_RECIPIENTS", "intake@clinic.test,oncall@clinic.test")
    monkeypatch.setenv("SMTP_TIMEOUT_S", "5")
    monkeypatch.setenv("CONSOLE_URL", "https://staff.clinic.test/")
    settings.get_settings.cache_clear()
    return clinic_env


@pytest.fixture
def cfg(smtp_env: Path) -> settings.Settings:
    return settings.get_settings()


@pytest.fixture
def engine(cfg: settings.Settings):
    return get_engine(cfg.clinic_db_url)


@pytest.fixture
def mailbox(port: int):
    collector = Collector()
    controller = Controller(collector, hostname="127.0.0.1", port=port)
    controller.start()
    yield collector
    controller.stop()


def make_referral(engine, cfg, conversation_id: str = "conv-1", outcome: str = "clinician_review") -> str:
    return referrals.create_referral(
        engine, cfg.encryption_key, conversation_id, outcome, REASONS, ANSWERS, CONTACT, urgent=True
    )


def parse(data: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)


def assert_no_visitor_data(message: email.message.EmailMessage, reference: str) -> None:
    raw = message.as_string()
    for secret in list(CONTACT.values()) + ["Quimby", "rosalind", "555 0187", "sertraline", "Marguerite",
                                            "hypertension", "clinician_review"]:
        assert secret.lower() not in raw.lower()
    # short answer values and the outcome: checked as words in the subject and
    # body, once the (random) reference code is taken out
    visible = (message["Subject"] + "\n" + message.get_content()).replace(reference, "<ref>")
    for word in ["37", "TX", "Texas", "ptsd", "eligible", "review", "urgent"]:
        assert not re.search(rf"\b{re.escape(word)}\b", visible, re.I), word


def assert_quiet_logs(caplog, reference: str) -> None:
    """The notifier's own log lines hold no reference code and no visitor data."""
    text = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("clinic"))
    for secret in [reference] + list(CONTACT.values()) + ["sertraline", "hypertension"]:
        assert secret not in text


def test_compose_holds_only_the_reference_and_link():
    message = notifier.compose("K7Q-4M2", "https://staff.clinic.test/")
    assert message["Subject"] == "New pre-screen referral K7Q-4M2"
    assert message.get_content() == (
        "A new pre-screen referral is waiting in the staff console.\n"
        "\n"
        "Reference: K7Q-4M2\n"
        "Open it: https://staff.clinic.test/referrals/K7Q-4M2\n"
        "\n"
        "This message holds no personal details:\n"
        "sign in to the console to read the referral.\n"
    )
    assert message["Content-Transfer-Encoding"] == "7bit"
    with pytest.raises(ValueError):
        notifier.compose("K7Q-4M2\nBcc: x@evil.test", "https://staff.clinic.test")


def test_notice_arrives_without_visitor_data(engine, cfg, mailbox, caplog):
    caplog.set_level("DEBUG")
    ref = make_referral(engine, cfg)
    assert notifier.notify_referral(engine, cfg, ref) is True

    assert len(mailbox.messages) == 1
    got = mailbox.messages[0]
    assert got["from"] == "assistant@clinic.test"
    assert got["to"] == ["intake@clinic.test", "oncall@clinic.test"]
    message = parse(got["data"])
    assert message["Subject"] == f"New pre-screen referral {ref}"
    assert message["To"] == "intake@clinic.test, oncall@clinic.test"
    assert message["From"] == "assistant@clinic.test"
    body = message.get_content().replace("\r\n", "\n")
    assert body == (
        "A new pre-screen referral is waiting in the staff console.\n"
        "\n"
        f"Reference: {ref}\n"
        f"Open it: https://staff.clinic.test/referrals/{ref}\n"
        "\n"
        "This message holds no personal details:\n"
        "sign in to the console to read the referral.\n"
    )
    assert_no_visitor_data(message, ref)

    row = referrals.get_referral(engine, ref)
    assert row["notified_at"] is not None
    assert row["notify_attempts"] == 0
    # already sent: not sent twice
    assert notifier.notify_referral(engine, cfg, ref) is True
    assert notifier.retry_pending(engine, cfg) == 0
    assert len(mailbox.messages) == 1
    assert_quiet_logs(caplog, ref)


def test_server_down_keeps_referral_and_retry_sends_it(engine, cfg, port, caplog):
    caplog.set_level("DEBUG")
    ref = make_referral(engine, cfg)  # nothing listens on the port yet
    assert notifier.notify_referral(engine, cfg, ref) is False

    row = referrals.get_referral(engine, ref)
    assert row is not None
    assert row["notified_at"] is None
    assert row["notify_attempts"] == 1
    assert row["last_notify_error"] == "ConnectionRefusedError"
    assert row["status"] == "new"
    assert referrals.decrypt_referral(row, cfg.encryption_key)["contact"] == CONTACT

    assert notifier.retry_pending(engine, cfg) == 0
    assert referrals.get_referral(engine, ref)["notify_attempts"] == 2

    collector = Collector()
    controller = Controller(collector, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        assert notifier.retry_pending(engine, cfg) == 1
    finally:
        controller.stop()
    assert len(collector.messages) == 1
    assert parse(collector.messages[0]["data"])["Subject"] == f"New pre-screen referral {ref}"
    row = referrals.get_referral(engine, ref)
    assert row["notified_at"] is not None
    assert row["notify_attempts"] == 2
    assert row["last_notify_error"] is None
    assert referrals.pending_notifications(engine) == []
    assert_quiet_logs(caplog, ref)


def test_smtp_error_reply_counts_as_failure(engine, cfg, port):
    class Refuser(Collector):
        async def handle_DATA(self, server, session, envelope):  # noqa: N802
            return "554 Transaction failed"

    controller = Controller(Refuser(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        ref = make_referral(engine, cfg)
        assert notifier.notify_referral(engine, cfg, ref) is False
    finally:
        controller.stop()
    row = referrals.get_referral(engine, ref)
    assert (row["notified_at"], row["notify_attempts"], row["last_notify_error"]) == (
        None, 1, "SMTPDataError")


def test_unknown_reference_and_database_down_return_false(engine, cfg, mailbox):
    assert notifier.notify_referral(engine, cfg, "AAA-AAA") is False
    broken = create_engine("sqlite:////proc/no-such-dir/clinic.db")
    assert notifier.notify_referral(broken, cfg, "AAA-AAA") is False
    assert mailbox.messages == []


def test_retry_pending_sends_every_unsent_notice(engine, cfg, mailbox):
    refs = [make_referral(engine, cfg, f"conv-{i}", "eligible") for i in range(3)]
    referrals.mark_notified(engine, refs[1])
    assert notifier.retry_pending(engine, cfg) == 2
    subjects = sorted(parse(m["data"])["Subject"] for m in mailbox.messages)
    assert subjects == sorted(f"New pre-screen referral {r}" for r in (refs[0], refs[2]))


def test_main_once(engine, cfg, mailbox):
    make_referral(engine, cfg)
    assert notifier.main(["--once"]) == 0
    assert len(mailbox.messages) == 1
    assert notifier.main(["--once"]) == 0
    assert len(mailbox.messages) == 1


def test_main_once_reports_failure(engine, cfg):
    make_referral(engine, cfg)
    assert notifier.main(["--once"]) == 1


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_worker_sends_then_stops_cleanly_on_signal(smtp_env, cfg, engine, mailbox, sig):
    ref = make_referral(engine, cfg)
    env = dict(os.environ, PYTHONPATH=str(ROOT), NOTIFY_RETRY_SECONDS="60")
    proc = subprocess.Popen(
        [sys.executable, "-m", "clinic.mail.notifier"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while referrals.get_referral(engine, ref)["notified_at"] is None:
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "worker sent nothing"
            time.sleep(0.1)
        proc.send_signal(sig)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    output = proc.stdout.read()
    assert "notices sent: 1, still pending: 0" in output
    assert f"stopping on {sig.name}" in output
    assert "notifier stopped" in output
    for secret in [ref] + list(CONTACT.values()) + ["sertraline", "hypertension"]:
        assert secret not in output
    assert len(mailbox.messages) == 1
