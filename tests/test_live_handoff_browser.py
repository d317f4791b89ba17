"""Live handoff in two real browsers: a visitor in the widget, a staff member in the console.

request -> consent -> the live queue -> claim -> two messages each way -> hand back ->
the assistant answers an FAQ; a web app restart mid-handoff (the widget reconnects and
nothing is lost); the out-of-hours callback. Debian's Chromium, the real stack (Rasa, action
server, web app, console).
"""

import re
from typing import Any, Iterator, List

import pytest
import requests
from playwright.sync_api import Browser, Page, expect

from clinic.storage import db
from clinic.rules import handoff
from clinic.console import auth
from tests.stack import conversation_id
from tests.widget_driver import ARTIFACTS, Widget

STAFF = {"username": "dana.live", "password": "dana-live-pass-phrase", "display_name": "Dana"}
# Long enough for a loaded CI machine; the widget's own poll answers within a second or so
# (measured by scripts/bench_handoff.py, not here).
SEEN_MS = 10_000


@pytest.fixture(scope="module")
def console_url(stack: Any) -> str:
    url = stack.start_console()
    engine = stack.clinic_engine()
    try:
        auth.create_user(engine, STAFF["username"], STAFF["password"], "support", display_name=STAFF["display_name"])
    except auth.StaffError as exc:
        assert "exists already" in str(exc)
    return url


@pytest.fixture
def pages(browser: Browser) -> Iterator[Any]:
    contexts: List[Any] = []

    def make() -> Page:
        ctx = browser.new_context(viewport={"width": 1280, "height": 900})
        ctx.set_default_timeout(20_000)
        contexts.append(ctx)
        page = ctx.new_page()
        errors: List[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.errors = errors
        return page

    yield make
    for ctx in contexts:
        ctx.close()


@pytest.fixture
def staffed(stack: Any) -> Iterator[None]:
    stack.set_staffed(True)
    yield
    stack.set_staffed(True)


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"handoff-{name}.png"), full_page=True)


def sign_in(page: Page, console_url: str) -> None:
    page.goto(console_url + "/login")
    page.get_by_label("Username").fill(STAFF["username"])
    page.get_by_label("Password").fill(STAFF["password"])
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".who")).to_contain_text(STAFF["username"])


def visitor_page(make: Any, stack: Any) -> Widget:
    page = make()
    page.goto(stack.web_url + "/")
    w = Widget(page)
    w.open()
    return w


def cid_of(page: Page, stack: Any) -> str:
    session = requests.Session()
    for c in page.context.cookies():
        if c["name"] == "cid":
            session.cookies.set("cid", c["value"])
    return conversation_id(session, stack)


def staff_texts(w: Widget) -> List[str]:
    return [t.strip() for t in w.page.locator(".ccw-msg.ccw-staff .ccw-body").all_inner_texts()]


def ask_for_a_person(w: Widget) -> str:
    answer = w.say("can I talk to a real person please")
    assert "Would you like that?" in answer and "connect you with a person" in answer, answer
    return w.choose("Yes")


def claim_from_the_queue(staff: Page, console_url: str, request_id: int) -> None:
    staff.goto(console_url + "/live")
    row = staff.locator(f"#waiting tr[data-request='{request_id}']")
    expect(row).to_be_visible()
    row.locator("button[data-action=claim]").click()
    expect(staff.locator("#state")).to_have_attribute("data-state", "live")


def staff_ends(staff: Page, action: str, request_id: int, engine, status: str) -> None:
    """Hand back or close: the console goes back to the live queue, the chat no longer held."""
    staff.locator(f"button[data-action={action}]").click()
    expect(staff.locator(f"#held tr[data-request='{request_id}']")).to_have_count(0)
    assert handoff.get(engine, request_id)["status"] == status


def staff_says(staff: Page, text: str) -> None:
    staff.locator("#reply-text").fill(text)
    staff.locator("button[data-action=send]").click()
    expect(staff.locator("#messages li.msg-staff p.msg-text", has_text=text)).to_be_visible()


def in_a_live_chat(stack: Any, console_url: str, pages: Any) -> tuple:
    """A visitor who asked for a person, and Dana who took the chat: (widget, staff page, request, engine)."""
    w = visitor_page(pages, stack)
    ask_for_a_person(w)
    engine = stack.clinic_engine()
    request = handoff.active(engine, cid_of(w.page, stack))
    staff = pages()
    sign_in(staff, console_url)
    claim_from_the_queue(staff, console_url, request["id"])
    expect(w.page.locator(".ccw-who-name")).to_have_text(re.compile("Dana"), timeout=SEEN_MS)
    return w, staff, request, engine


def test_a_person_takes_over_the_chat_and_hands_back_to_the_assistant(stack, console_url, pages, staffed):
    w = visitor_page(pages, stack)
    queued = ask_for_a_person(w)
    assert re.search(r"You're (next|number \d+) in line", queued), queued
    expect(w.page.locator(".ccw-waiting")).to_be_visible()
    expect(w.page.locator(".ccw-waiting-text")).to_contain_text("in line")
    cid = cid_of(w.page, stack)
    engine = stack.clinic_engine()
    request = handoff.active(engine, cid)
    assert request is not None and request["status"] == "waiting"

    # While waiting, the assistant still answers.
    assert "988" in w.say("is ketamine therapy safe?") or w.bot_texts()

    staff = pages()
    sign_in(staff, console_url)
    claim_from_the_queue(staff, console_url, request["id"])
    # the staff member sees the transcript so far
    expect(staff.locator("#messages li.msg-visitor", has_text="can I talk to a real person please")).to_be_visible()
    shot(staff, "staff-claimed")

    # The visitor sees who answers now.
    expect(w.page.locator(".ccw-who-name")).to_have_text(re.compile("Dana"), timeout=SEEN_MS)
    expect(w.page.locator(".ccw-waiting")).to_be_hidden()
    expect(w.page.locator(".ccw-log")).to_contain_text("Dana from the", timeout=SEEN_MS)

    # Two messages each way.
    staff_says(staff, "Hi, I'm Dana. How can I help you today?")
    expect(w.page.locator(".ccw-msg.ccw-staff .ccw-body", has_text="How can I help you today?")).to_be_visible(timeout=SEEN_MS)
    bots_before = w.bots().count()
    w.input.fill("I wanted to ask about the cost of the program")
    w.input.press("Enter")
    expect(staff.locator("#messages li.msg-visitor", has_text="cost of the program")).to_be_visible(timeout=SEEN_MS)
    staff_says(staff, "Sure. The free evaluation costs nothing; a clinician explains the plan and its price.")
    expect(w.page.locator(".ccw-msg.ccw-staff .ccw-body", has_text="free evaluation costs nothing")).to_be_visible(timeout=SEEN_MS)
    w.input.fill("thanks, that helps")
    w.input.press("Enter")
    expect(staff.locator("#messages li.msg-visitor", has_text="thanks, that helps")).to_be_visible(timeout=SEEN_MS)
    # the assistant said nothing while the person held the chat
    assert w.bots().count() == bots_before
    assert staff_texts(w)[-2:] == [
        "Hi, I'm Dana. How can I help you today?",
        "Sure. The free evaluation costs nothing; a clinician explains the plan and its price.",
    ]
    shot(w.page, "visitor-live")

    # Hand back: the assistant says it is back and answers an FAQ.
    staff_ends(staff, "hand_back", request["id"], engine, "handed_back")
    expect(w.page.locator(".ccw-log")).to_contain_text("handed the chat back", timeout=SEEN_MS)
    expect(w.page.locator(".ccw-who-name")).to_have_text(re.compile("Assistant"), timeout=SEEN_MS)
    answer = w.say("what are the side effects of ketamine?")
    assert re.search(r"side effect|nausea|dissociat", answer, re.I), answer
    shot(w.page, "visitor-handed-back")

    # The whole conversation is in the transcript: staff messages as bot events naming Dana.
    events = requests.get(f"{stack.rasa_url}/conversations/{cid}/tracker",
                          params={"include_events": "ALL", **stack.rasa_params}, timeout=10).json()["events"]
    kinds = [e["event"] for e in events]
    assert "pause" in kinds and "resume" in kinds and kinds.index("pause") < kinds.index("resume")
    staff_events = [e for e in events if e["event"] == "bot" and (e.get("metadata") or {}).get("staff")]
    assert [e["text"] for e in staff_events][1:] == staff_texts(w)[-2:]
    assert {e["metadata"]["staff"]["name"] for e in staff_events} == {"Dana"}
    visitor_texts = [e.get("text") for e in events if e["event"] == "user"]
    assert "I wanted to ask about the cost of the program" in visitor_texts and "thanks, that helps" in visitor_texts
    assert w.page.errors == [] and staff.errors == []


def test_the_widget_reconnects_after_a_web_app_restart_mid_handoff(stack, console_url, pages, staffed):
    w, staff, request, engine = in_a_live_chat(stack, console_url, pages)

    stack.stop("web")
    staff_says(staff, "Are you still there? I'm here to help.")
    stack.start("web")
    stack.wait_ready()
    # the widget's poll reconnects by itself and shows what was said meanwhile, once
    message = w.page.locator(".ccw-msg.ccw-staff .ccw-body", has_text="Are you still there?")
    expect(message).to_be_visible(timeout=30_000)
    w.input.fill("yes, still here")
    w.input.press("Enter")
    expect(staff.locator("#messages li.msg-visitor", has_text="yes, still here")).to_be_visible(timeout=SEEN_MS)
    expect(message).to_have_count(1)

    # a reload restores the conversation with the person's messages and who answers
    w.page.reload()
    w.open()
    expect(w.page.locator(".ccw-who-name")).to_have_text(re.compile("Dana"))
    expect(w.page.locator(".ccw-msg.ccw-staff .ccw-body", has_text="Are you still there?")).to_have_count(1)
    staff_ends(staff, "close", request["id"], engine, "closed")
    expect(w.page.locator(".ccw-log")).to_contain_text("closed this chat", timeout=SEEN_MS)


def test_a_crisis_during_a_live_chat_gets_the_resources_and_an_urgent_banner(stack, console_url, pages, staffed):
    w, staff, request, engine = in_a_live_chat(stack, console_url, pages)

    answer = w.say("honestly I just want to end my life")
    assert "988" in answer and "741741" in answer, answer
    assert handoff.get(engine, request["id"])["urgent"] is True
    expect(staff.locator(".crisis-banner, [data-crisis]").first).to_be_visible(timeout=SEEN_MS)
    # still the person's chat: the assistant steps back again
    assert handoff.get(engine, request["id"])["status"] == "live"
    before = w.bots().count()
    w.input.fill("ok")
    w.input.press("Enter")
    expect(staff.locator("#messages li.msg-visitor p.msg-text", has_text=re.compile(r"^\s*ok\s*$"))).to_have_count(1, timeout=SEEN_MS)
    assert w.bots().count() == before
    staff_ends(staff, "close", request["id"], engine, "closed")


def test_out_of_hours_a_callback_request_is_taken(stack, console_url, pages, staffed):
    stack.set_staffed(False)
    w = visitor_page(pages, stack)
    offer = w.say("can I talk to a real person please")
    assert "isn't in right now" in offer and "callback" in offer, offer
    assert "What name" in w.choose("Yes")
    assert "phone number or email" in w.say("Jamie")
    assert "US phone number or an email" in w.say("call me maybe")
    assert "best time" in w.say("jamie@example.com")
    done = w.choose("Evenings")
    assert "Your callback request is with" in done and "jamie@example.com" in done, done
    cid = cid_of(w.page, stack)
    rows = db.handoff_requests_for(stack.clinic_engine(), cid)
    assert [(r["kind"], r["status"]) for r in rows] == [("callback", "new")]
    assert "jamie" not in rows[0]["contact_encrypted"].lower()
    # nobody is put in the live queue outside staffed hours
    assert handoff.active(stack.clinic_engine(), cid) is None
