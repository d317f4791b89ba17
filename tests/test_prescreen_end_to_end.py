"""A visitor goes from "am I eligible?" to a referral through the web app's chat
endpoint, buttons pressed as the widget does; the referral is stored encrypted
and a clinician's notice arrives by SMTP with nothing of the visitor in it."""

import sqlite3
import time

import requests

from clinic import db, referrals
from clinic.settings import load_encryption_key
from tests import encrypted_db
from tests.stack import button, conversation_id, press, say

FREQUENCY_QUESTIONS = 4


def texts(response: requests.Response) -> str:
    assert response.status_code == 200, response.text
    return " ".join(m["text"] for m in response.json()["messages"])


def wait_for(predicate, timeout_s: float = 20.0):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    return predicate()


def test_eligible_visitor_gets_a_reference_and_a_clinician_is_notified(stack, smtp):
    s = requests.Session()
    intro = say(s, stack, "am i eligible for this?")
    assert "not a diagnosis" in texts(intro)
    r = press(s, stack, button(intro, "Yes, let's start"))
    assert "How old are you?" in texts(r)
    r = say(s, stack, "twenty five")
    assert "Which US state" in texts(r)
    r = say(s, stack, "TX")
    r = press(s, stack, button(r, "Depression"))
    r = press(s, stack, button(r, "Both"))
    for _ in range(FREQUENCY_QUESTIONS):
        assert "Over the last 2 weeks" in texts(r)
        r = press(s, stack, button(r, "More than half the days"))
    assert "thoughts of ending your life" in texts(r)
    r = press(s, stack, button(r, "No"))
    for _ in range(4):  # pregnancy, psychosis, heart, substances
        r = say(s, stack, "nope")
    assert "trusted adult" in texts(r)
    r = press(s, stack, button(r, "Yes"))
    assert "good next step" in texts(r) and "What name" in texts(r)
    r = say(s, stack, "Jane Example")
    r = say(s, stack, "jane@example")  # a bad address is asked again
    assert "doesn't look like an email" in texts(r)
    r = say(s, stack, "jane.example@example.com")
    r = say(s, stack, "(212) 555-0199")
    r = press(s, stack, button(r, "Evenings"))
    r = press(s, stack, button(r, "Yes, contact me"))
    done = texts(r)
    assert "Your reference is" in done

    cid = conversation_id(s, stack)
    with encrypted_db.connect(stack.var_dir / "clinic.db") as conn:
        reference, outcome, status, contact_cipher = conn.execute(
            "select reference, outcome, status, contact_encrypted from referrals where conversation_id = ?", (cid,)
        ).fetchone()
    assert reference in done
    assert (outcome, status) == ("eligible", "new")
    assert "Jane" not in contact_cipher and "212" not in contact_cipher  # encrypted at rest
    row = referrals.referral_for_conversation(stack.clinic_engine(), cid)
    clear = referrals.decrypt_referral(row, load_encryption_key(stack.var_dir))
    assert clear["contact"]["email"] == "jane.example@example.com"
    assert clear["answers"]["age"] == 25 and clear["answers"]["state"] == "TX"

    mail = wait_for(lambda: [m for m in smtp.messages if reference in m])
    assert mail, "the clinician's notice did not arrive"
    body = mail[0]
    assert f"http://console.test/referrals/{reference}" in body
    without_reference = body.replace(reference, "<reference>")  # a random code may hold "TX"
    for private in ("Jane", "jane.example", "(212)", "555-0199", "Texas", "TX", "depress", "eligible"):
        assert private not in without_reference, private

    # nothing the visitor typed reaches any process's log
    logs = "\n".join(p.read_text(errors="replace") for p in stack.workdir.glob("*.log"))
    for private in ("Jane Example", "jane.example@", "555-0199", "twenty five", "nope"):
        assert private not in logs, private


def test_a_page_reload_mid_form_continues_where_the_visitor_was(stack):
    s = requests.Session()
    intro = say(s, stack, "sign me up")
    press(s, stack, button(intro, "Yes, let's start"))
    say(s, stack, "40")
    # the page reloads: a new page, the same cookie, the next answer goes on
    reloaded = requests.Session()
    reloaded.cookies.update(s.cookies)
    r = say(reloaded, stack, "florida")
    assert "What would you most like help with?" in texts(r)


def test_crisis_answer_mid_form_gets_resources_at_once(stack):
    s = requests.Session()
    intro = say(s, stack, "can i do this")
    press(s, stack, button(intro, "Yes, let's start"))
    r = say(s, stack, "i don't want to be alive anymore")
    assert "988" in texts(r) and "741741" in texts(r)
    r = say(s, stack, "30")  # the form has stopped: no question is waiting for this
    assert "How old" not in texts(r) and "Which US state" not in texts(r)
