"""Data for the staff console's browser tests, made through the real assistant,
and a staff member's hands on the console (Playwright, Debian's Chromium).

Conversations are made the way a visitor makes them (the web app's chat
endpoint, buttons pressed by their signed payloads); staff accounts with
``clinic.console.auth.create_user`` on the stack's clinic DB.
"""

from dataclasses import dataclass, field
from typing import Dict, List, Optional

import requests
from playwright.sync_api import Locator, Page, expect

from tests.prescreen_walk import CONTACT, ELIGIBLE  # noqa: F401  (CONTACT: for the tests)
from tests.stack import Stack, button, conversation_id, say

# A word only these tests type (the stack is shared with the other end-to-end tests).
PLACE = "tuscaloosa"
GIBBERISH = "qwzx blorptang vrrk"
FORMULAS = ["=cmd|' /C calc'!A0 blorptang", "@SUM(1+1) blorptang", "+1 555 0100 blorptang", "-2+3 blorptang"]
XSS = [
    "<img src=x onerror=alert('img')> zebrafinch",
    "<script>alert('script')</script> zebrafinch",
    "<svg onload=alert('svg')></svg> zebrafinch",
    '<a href="javascript:alert(1)">click</a> zebrafinch',
]
PASSWORD = {"admin": "admin-pass-phrase-1", "clinician": "clinician-pass-phrase-2", "support": "support-pass-phrase-3"}
USERS = {"admin": "ada.admin", "clinician": "cleo.clinician", "support": "sam.support"}
# The names visitors see when these people answer a live chat.
DISPLAY_NAMES = {"admin": "Ada", "clinician": "Cleo", "support": "Sam"}


def press(session: requests.Session, stack: Stack, b: dict) -> requests.Response:
    """A button pressed as the widget presses it: its signed payload and its title."""
    body = {"button": {"payload": b["payload"], "sig": b["sig"], "title": b["title"]}}
    return session.post(f"{stack.web_url}/api/chat", json=body, timeout=60)


def texts(response: requests.Response) -> str:
    assert response.status_code == 200, response.text
    return " ".join(m["text"] for m in response.json()["messages"])


@dataclass
class Conversation:
    cid: str
    typed: List[str] = field(default_factory=list)
    reference: Optional[str] = None


@dataclass
class ConsoleData:
    referral: Conversation
    handoff: Conversation
    fallback: Conversation


def _typed(s: requests.Session, stack: Stack, convo: List[str], text: str) -> requests.Response:
    convo.append(text)
    return say(s, stack, text)


def make_referral(stack: Stack, greeting: str = f"hello from {PLACE.title()}") -> Conversation:
    """A greeting (with PLACE in it), an FAQ, then the whole pre-screen to a referral."""
    s = requests.Session()
    typed: List[str] = []
    assert "not a clinician" in texts(_typed(s, stack, typed, greeting))
    r = _typed(s, stack, typed, "what is ketamine therapy")
    for kind, value, expected in ELIGIBLE:  # tests/prescreen_walk.py
        r = _typed(s, stack, typed, value) if kind == "say" else press(s, stack, button(r, value))
        assert expected in texts(r), (value, texts(r))
    done = texts(r)
    cid = conversation_id(s, stack)
    from clinic.storage import db, referrals

    row = referrals.referral_for_conversation(stack.clinic_engine(), cid)
    assert row is not None and row["reference"] in done
    return Conversation(cid, typed, row["reference"])


def make_simple(stack: Stack, lines: List[str], expect_text: str = "") -> Conversation:
    s = requests.Session()
    last = None
    for line in lines:
        last = say(s, stack, line)
        assert last.status_code == 200, (line, last.text)
    if expect_text:
        assert expect_text in texts(last), texts(last)
    return Conversation(conversation_id(s, stack), list(lines))


def make_data(stack: Stack) -> ConsoleData:
    referral = make_referral(stack)
    handoff = make_simple(stack, [f"good morning from {PLACE}", "can i talk to a real person please"], "a person")
    fallback = make_simple(stack, [GIBBERISH, *FORMULAS])
    return ConsoleData(referral, handoff, fallback)


def make_staff(stack: Stack) -> Dict[str, str]:
    from clinic.storage import db
    from clinic.console import auth

    engine = stack.clinic_engine()
    for role, username in USERS.items():
        try:
            auth.create_user(engine, username, PASSWORD[role], role, DISPLAY_NAMES[role])
        except auth.StaffError as exc:  # made by an earlier module of this session
            assert "exists already" in str(exc)
            auth.set_display_name(engine, username, DISPLAY_NAMES[role])
    return dict(USERS)


# --- the staff member's side ------------------------------------------------------


def sign_in(page: Page, console_url: str, role: str, next_path: str = "") -> None:
    page.goto(console_url + (next_path or "/login"))
    page.get_by_label("Username").fill(USERS[role])
    page.get_by_label("Password").fill(PASSWORD[role])
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".who")).to_have_text(f"{USERS[role]} ({role})")


def listed_ids(page: Page) -> List[str]:
    """The conversation ids of the rows on a conversations page (from their links; the crisis rows
    pinned above the list, shown again in their place, aside)."""
    hrefs = page.locator("table.conversations tbody:not(.pinned) a[href^='/conversations/']").evaluate_all(
        "as => as.map(a => a.getAttribute('href'))"
    )
    from urllib.parse import unquote

    return [unquote(h.split("/conversations/", 1)[1]) for h in hrefs]


def filter_conversations(page: Page, outcome: str = "", q: str = "") -> List[str]:
    form = page.get_by_role("search", name="Filter conversations")
    form.get_by_label("Outcome").select_option(outcome)
    form.get_by_label("Visitor said").fill(q)
    form.get_by_role("button", name="Filter").click()
    page.wait_for_load_state()
    return listed_ids(page)


def row_of(page: Page, cid: str) -> Locator:
    from urllib.parse import quote

    return page.locator("table.conversations tbody:not(.pinned) tr").filter(
        has=page.locator(f"a[href='/conversations/{quote(cid, safe='')}']")
    )


# --- the live chat (/live) ------------------------------------------------------------------
# Stable hooks of the pages: the queue's rows are `#waiting tr[data-request=<id>]` (with
# data-position, data-urgent) and `#held tr[data-request=<id>]`; `button[data-action=claim]`
# takes a chat; the chat page has `#state[data-state]` (waiting, live, handed_back, closed,
# cancelled; data-holder), `#messages li.msg` with `.visitor`, `.bot`, `.staff`, `.notice`
# (each with data-event-id; a staff message's `.speaker` reads "<name> (staff)", its text is
# `.msg-text`), `form#reply textarea[name=text]` and `button[data-action=send]`, and the
# buttons `[data-action=hand_back]`, `[data-action=close]`, `[data-action=release]`.
# `#live-count` in the menu holds the number of visitors waiting.


def open_live_queue(page: Page, console_url: str) -> None:
    page.goto(console_url + "/live")
    expect(page.get_by_role("heading", name="Live chat", exact=True)).to_be_visible()


def waiting_request(page: Page, timeout_ms: float = 5000) -> int:
    """The id of the first request in the live queue, once one shows (the page polls every 2 s)."""
    row = page.locator("#waiting tr[data-request]").first
    expect(row).to_be_visible(timeout=timeout_ms)
    return int(row.get_attribute("data-request") or 0)


def take_chat(page: Page, request_id: int) -> None:
    """Take a chat from the queue page; ends on its chat page with the chat live."""
    page.locator(f'#waiting button[data-action=claim][data-request="{request_id}"]').click()
    page.wait_for_url(f"**/live/{request_id}")
    expect(page.locator("#state")).to_have_attribute("data-state", "live")


def send_reply(page: Page, text: str) -> None:
    """Type and send a reply on a chat page (sent by fetch: the page does not reload)."""
    before = page.locator("#messages li.msg.staff").count()
    page.locator("form#reply textarea[name=text]").fill(text)
    page.locator("form#reply button[data-action=send]").click()
    expect(page.locator("#messages li.msg.staff")).to_have_count(before + 1)
    expect(page.locator("form#reply textarea[name=text]")).to_have_value("")


def visitor_messages(page: Page) -> Locator:
    return page.locator("#messages li.msg.visitor .msg-text")


def staff_messages(page: Page) -> Locator:
    return page.locator("#messages li.msg.staff .msg-text")


def end_chat(page: Page, action: str = "hand_back") -> None:
    """hand_back, close or release the chat open on the page; ends back on the queue."""
    page.locator(f"#actions button[data-action={action}]").click()
    page.wait_for_url("**/live?done=*")
