"""Clinician notices for new referrals, by SMTP, and the worker that retries them.

A notice holds the reference code and a link to the staff console, nothing
else: no name, contact detail, answer, outcome or reason. Staff read those in
the console, behind a login. A mail server that is down never loses a
referral: it stays stored with ``notified_at`` empty, and ``retry_pending``
(run by ``python -m clinic.mail.notifier``) sends it later.

    python -m clinic.mail.notifier          # retry every NOTIFY_RETRY_SECONDS until SIGTERM/SIGINT
    python -m clinic.mail.notifier --once   # one pass; exit status 1 if a notice failed

Logs hold counts and exception class names only: no reference codes, no contents.
"""

import argparse
import email.utils
import logging
import signal
import smtplib
import ssl
import sys
import threading
from email.message import EmailMessage
from typing import Any, List, Optional, Tuple

from sqlalchemy.engine import Engine

from clinic.storage import referral_spool
from clinic.storage.db import get_engine
from clinic.storage.referrals import (
    REFERENCE_RE,
    get_referral,
    mark_notified,
    pending_notifications,
    record_notify_failure,
)
from clinic.settings import Settings, get_settings

log = logging.getLogger(__name__)


def referral_link(reference: str, console_url: str) -> str:
    """The staff console page of a referral."""
    return f"{console_url.rstrip('/')}/referrals/{reference}"


def compose(reference: str, console_url: str) -> EmailMessage:
    """The notice for ``reference``: the code and the staff link, neutral wording.

    From and To are set by ``send`` from the settings.
    """
    if not REFERENCE_RE.match(reference):
        raise ValueError("not a referral reference code")
    link = referral_link(reference, console_url)
    message = EmailMessage()
    message["Subject"] = f"New pre-screen referral {reference}"
    message["Date"] = email.utils.formatdate(localtime=False, usegmt=True)
    message.set_content(
        "A new pre-screen referral is waiting in the staff console.\n"
        "\n"
        f"Reference: {reference}\n"
        f"Open it: {link}\n"
        "\n"
        "This message holds no personal details:\n"
        "sign in to the console to read the referral.\n",
        cte="7bit",
    )
    return message


def send(message: EmailMessage, settings: Settings) -> None:
    """Send ``message`` through the configured SMTP server; raises on any failure."""
    if "From" not in message:
        message["From"] = settings.smtp_sender
    if "To" not in message:
        message["To"] = ", ".join(settings.smtp_recipients)
    if "Message-ID" not in message:
        domain = settings.smtp_sender.rpartition("@")[2] or "localhost"
        message["Message-ID"] = email.utils.make_msgid(domain=domain)
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout_s) as smtp:
        if settings.smtp_starttls:
            smtp.starttls(context=ssl.create_default_context())
        if settings.smtp_username:
            smtp.login(settings.smtp_username, settings.smtp_password or "")
        smtp.send_message(message, from_addr=settings.smtp_sender, to_addrs=list(settings.smtp_recipients))


def notify_referral(engine: Engine, settings: Settings, reference: str) -> bool:
    """Send the notice for ``reference``; True once it has been sent.

    On success ``notified_at`` is set; on any failure ``notify_attempts`` goes
    up by one and ``last_notify_error`` keeps the exception class name. Never
    raises: the referral stays stored either way. A referral already notified
    is not sent again.
    """
    try:
        row = get_referral(engine, reference)
    except Exception as exc:  # the database itself is unavailable
        log.warning("notice not sent: database error %s", type(exc).__name__)
        return False
    if row is None:
        log.warning("notice not sent: no such referral")
        return False
    if row["notified_at"] is not None:
        return True
    try:
        send(compose(reference, settings.console_url), settings)
    except Exception as exc:
        error = type(exc).__name__
        log.warning("notice not sent (%s); will retry", error)
        try:
            record_notify_failure(engine, reference, error)
        except Exception as db_exc:
            log.warning("could not record the failed notice: %s", type(db_exc).__name__)
        return False
    try:
        mark_notified(engine, reference)
    except Exception as exc:
        # Sent, but not recorded: it will be sent again later, which is better than never.
        log.warning("notice sent but not recorded (%s)", type(exc).__name__)
        return False
    return True


def _retry(engine: Engine, settings: Settings) -> Tuple[int, int]:
    references = [row["reference"] for row in pending_notifications(engine)]
    sent = sum(1 for reference in references if notify_referral(engine, settings, reference))
    return sent, len(references) - sent


def retry_pending(engine: Engine, settings: Settings) -> int:
    """Send every notice not sent yet; return how many were sent now."""
    return _retry(engine, settings)[0]


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m clinic.mail.notifier", description=__doc__.split("\n")[0])
    parser.add_argument("--once", action="store_true", help="one pass, then exit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = get_settings()
    engine = get_engine(settings.clinic_db_url)

    if args.once:
        sent, failed = _pass(engine, settings)
        return 1 if failed else 0

    stop = threading.Event()

    def _stop(signum: int, _frame: Any) -> None:
        log.info("stopping on %s", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    log.info("notifier started: retrying every %ss", settings.notify_retry_seconds)
    while not stop.is_set():
        _pass(engine, settings)
        stop.wait(settings.notify_retry_seconds)
    log.info("notifier stopped")
    return 0


def _pass(engine: Engine, settings: Settings) -> Tuple[int, int]:
    _report_spool(settings)
    try:
        sent, failed = _retry(engine, settings)
    except Exception as exc:  # keep the worker alive through a database outage
        log.warning("retry pass failed: %s", type(exc).__name__)
        return 0, 1
    if sent or failed:
        log.info("notices sent: %d, still pending: %d", sent, failed)
    return sent, failed


def _report_spool(settings: Settings) -> None:
    """Referrals that wait in this machine's spool (clinic.storage.referral_spool), and any set aside there."""
    directory = referral_spool.spool_dir(settings.var_dir)
    try:
        waiting, set_aside = referral_spool.counts(directory)
    except OSError as exc:
        log.warning("cannot read the referral spool: %s", type(exc).__name__)
        return
    if waiting:
        log.warning("referrals or waitlist entries waiting in the spool for the clinic DB: %d", waiting)
    if set_aside:
        log.error("spool entries set aside as unreadable, to be looked at in %s: %d",
                  directory / referral_spool.CORRUPT_DIR, set_aside)


if __name__ == "__main__":
    sys.exit(main())
