"""A visitor goes from "am I eligible?" to each outcome through the web app's chat endpoint, buttons
pressed as the widget does, on the real Rasa server and action server: eligible (a referral stored
encrypted, a clinician's notice by SMTP with nothing of the visitor in it), clinician review, an
urgent clinician review for thoughts of ending one's life without a plan or an attempt, not
eligible, out of area and crisis. The steps are tests/prescreen_walk.py's."""

import time
from typing import List, Tuple

import requests

from clinic.storage import db, referrals
from clinic.settings import load_encryption_key
from tests.prescreen_walk import CONTACT_STEPS, ELIGIBLE, ELIGIBLE_ANSWERS, FREQUENCY, START, Step
from tests import encrypted_db
from tests.stack import button, conversation_id, press, say


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


def walk(s: requests.Session, stack, steps: List[Step], r: requests.Response = None) -> requests.Response:
    for kind, value, expected in steps:
        r = say(s, stack, value) if kind == "say" else press(s, stack, button(r, value))
        assert expected in texts(r), (value, expected, texts(r))
    return r


def until(step_text: str) -> Tuple[List[Step], List[Step]]:
    """ELIGIBLE_ANSWERS up to the step that answers with ``step_text`` (excluded), and from it on."""
    i = next(i for i, step in enumerate(ELIGIBLE_ANSWERS) if step[2] == step_text)
    return ELIGIBLE_ANSWERS[: i + 1], ELIGIBLE_ANSWERS[i + 1:]


def referral(stack, cid: str) -> dict:
    row = referrals.referral_for_conversation(stack.clinic_engine(), cid)
    assert row is not None
    return referrals.decrypt_referral(row, load_encryption_key(stack.var_dir))


def flags(stack, cid: str) -> List[str]:
    return [f["flag"] for f in db.flags_for(stack.clinic_engine(), cid)]


def test_eligible_visitor_gets_a_reference_and_a_clinician_is_notified(stack, smtp):
    s = requests.Session()
    intro = say(s, stack, "am i eligible for this?")
    assert "isn't a diagnosis" in texts(intro) and "stored encrypted for 365 days" in texts(intro)
    r = press(s, stack, button(intro, "Yes, let's start"))
    assert "Question 1 of 16\nHow old are you?" in texts(r)
    r = walk(s, stack, ELIGIBLE_ANSWERS[:1], r)
    assert "Question 2 of 16" in texts(r)
    r = walk(s, stack, ELIGIBLE_ANSWERS[1:], r)
    assert "good next step" in texts(r)
    r = say(s, stack, "Jane Example")
    r = say(s, stack, "jane@example")  # a bad address is asked again
    assert "doesn't look like an email" in texts(r)
    r = walk(s, stack, CONTACT_STEPS[1:], r)
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
    clear = referral(stack, cid)
    assert clear["contact"]["email"] == "jane.example@example.com"
    assert clear["answers"]["age"] == 25 and clear["answers"]["state"] == "TX"
    assert clear["answers"]["medications"] == "no" and clear["answers"]["substance_use"] == "no"
    assert clear["urgent"] is False and flags(stack, cid) == []

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


def test_a_medicine_and_a_condition_go_to_a_clinicians_review(stack):
    s = requests.Session()
    r = walk(s, stack, START)
    before, _ = until("Do you take any of these?")
    r = walk(s, stack, before, r)
    r = walk(s, stack, [
        ("say", "I take Lamictal", "Do any of these apply to you?"),
        ("press", "Not sure", "alcohol or drugs"),
        ("press", "Yes, but not now", "sober adult"),
        ("press", "Yes", "a clinician needs to look at"),
    ], r)
    assert "marked urgent" not in texts(r)
    r = walk(s, stack, CONTACT_STEPS, r)
    clear = referral(stack, conversation_id(s, stack))
    assert (clear["outcome"], clear["urgent"]) == ("clinician_review", False)
    assert clear["reasons"] == ["medications", "substance_use_past", "unsure_answer"]


def test_thoughts_without_a_plan_or_an_attempt_end_in_an_urgent_review_not_a_dead_end(stack):
    s = requests.Session()
    r = walk(s, stack, START)
    before, _ = until("thoughts of ending your life")
    r = walk(s, stack, before, r)
    asked = texts(r)
    assert "Question 9 of 16" in asked and "call 988" in asked
    r = say(s, stack, "on and off")  # the model took this for the medications FAQ once
    if "are you safe right now?" in texts(r):
        # the safety layer unsure of the words: it checks in first; "I'm safe" brings the question back
        r = press(s, stack, button(r, "I'm safe"))
        assert "Thank you for letting me know" in texts(r) and "thoughts of ending your life" in texts(r)
        r = press(s, stack, button(r, "Yes"))
    assert "Two more questions" in texts(r) and "Question 10 of 18" in texts(r) and "a plan" in texts(r)
    r = press(s, stack, button(r, "No"))
    assert "Question 11 of 18" in texts(r) and "In the past year, have you tried" in texts(r)
    r = say(s, stack, "never tried")
    assert "you don't have to carry them alone" in texts(r) and "Question 12 of 18" in texts(r)
    # the pre-screen goes on; even pregnancy, an exclusion, still ends in a review
    r = walk(s, stack, [
        ("press", "Yes", "psychosis"),
        ("press", "No", "blood pressure"),
        ("press", "No", "Do you take any of these?"),
        ("press", "None of these", "Do any of these apply to you?"),
        ("press", "None of these", "alcohol or drugs"),
        ("press", "No", "Question 18 of 18"),
        ("press", "Yes", "marked urgent"),
    ], r)
    assert "Maternal Mental Health Hotline" in texts(r) and "What name" in texts(r)
    r = walk(s, stack, CONTACT_STEPS, r)
    cid = conversation_id(s, stack)
    clear = referral(stack, cid)
    assert (clear["outcome"], clear["urgent"]) == ("clinician_review", True)
    assert clear["reasons"] == ["suicidal_thoughts", "pregnant_or_breastfeeding"]
    assert (clear["answers"]["suicidal_thoughts"], clear["answers"]["suicide_plan"],
            clear["answers"]["suicide_attempt"]) == ("yes", "no", "no")
    assert flags(stack, cid) == ["crisis"]  # flagged for staff when the visitor said it


def test_not_eligible_offers_a_person_and_a_clinicians_review(stack):
    s = requests.Session()
    r = walk(s, stack, START)
    before, _ = until("alcohol or drugs")
    r = walk(s, stack, before, r)
    r = press(s, stack, button(r, "Yes, still now"))
    said = texts(r)
    assert "isn't something" in said and "current alcohol or drug problems" in said
    assert "a clinician can review it" in said and "SAMHSA" in said
    r = press(s, stack, button(r, "Talk to a person"))
    assert "see our conversation so far" in texts(r) or "callback request" in texts(r)
    assert referrals.referral_for_conversation(stack.clinic_engine(), conversation_id(s, stack)) is None


def test_out_of_area_offers_the_waitlist_and_988(stack):
    s = requests.Session()
    r = walk(s, stack, START + [("say", "40", "Which US state will you be in")])
    r = say(s, stack, "Ohio")
    assert "waitlist for Ohio" in texts(r) and "call or text 988" in texts(r)


def test_a_plan_gives_the_crisis_response_at_once_and_no_referral_follows(stack):
    s = requests.Session()
    r = walk(s, stack, START)
    before, _ = until("thoughts of ending your life")
    r = walk(s, stack, before, r)
    r = press(s, stack, button(r, "Yes"))
    assert "a plan, or any intention" in texts(r)
    r = press(s, stack, button(r, "Yes"))
    said = texts(r)
    assert "Your safety comes first" in said and "988" in said and "741741" in said
    assert "pregnant" not in said  # no more questions
    cid = conversation_id(s, stack)
    assert "crisis" in flags(stack, cid)
    # starting the pre-screen again ends where it ended: no questions, no at-home referral
    r = press(s, stack, button(say(s, stack, "am i eligible?"), "Yes, let's start"))
    assert "Your safety comes first" in texts(r) and "Question" not in texts(r)
    assert referrals.referral_for_conversation(stack.clinic_engine(), cid) is None


def test_a_frequency_typed_as_days_and_a_number_on_the_buttons(stack):
    s = requests.Session()
    r = walk(s, stack, START)
    before, _ = until("Over the last 2 weeks")
    r = walk(s, stack, before, r)
    for typed in ("3 days", "8 days", "2"):
        r = say(s, stack, typed)
        assert "Over the last 2 weeks" in texts(r) and "Sorry" not in texts(r), (typed, texts(r))
    r = press(s, stack, button(r, FREQUENCY))
    assert "thoughts of ending your life" in texts(r)


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


def test_the_whole_walk_is_the_one_the_other_tests_play():
    assert ELIGIBLE == START + ELIGIBLE_ANSWERS + CONTACT_STEPS
    assert [s for s in ELIGIBLE if s[1] == "Yes, contact me"][0][2] == "Your reference is"
