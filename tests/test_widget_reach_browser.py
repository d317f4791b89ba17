"""The widget's reach, in a real browser (Playwright driving Debian's Chromium) on the session's stack:
starter buttons the moment the chat opens, phone numbers, e-mail addresses and 988 as tap targets
(and the Crisis Text Line's "text HOME to 741741" link), a lower header on a 375 px phone, "Start
over" away from the close button and confirmed first, and the expected wait in the live queue.

Screenshots go to test-artifacts/widget-*.png.
"""

import datetime as dt
import json
import math
import re
from typing import Any, Iterator, List

import pytest
import requests

pytest.importorskip("playwright", reason="pip install -r requirements.txt brings Playwright")

from playwright.sync_api import Page, Route, expect  # noqa: E402
from sqlalchemy import insert  # noqa: E402

from clinic.rules import handoff  # noqa: E402
from clinic.storage.db import handoff_requests, utcnow  # noqa: E402
from clinic.web import starters  # noqa: E402
from tests.widget_driver import ARTIFACTS, Widget  # noqa: E402

PHONE = {"width": 375, "height": 667}
DESKTOP = {"width": 1280, "height": 800}

expect.set_options(timeout=20_000)


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"widget-{name}.png"))


def opened(page: Page, stack: Any) -> Widget:
    page.goto(stack.web_url + "/")
    w = Widget(page)
    w.open()
    return w


def hrefs(locator: Any) -> List[str]:
    return locator.locator("a").evaluate_all("as => as.map(a => a.getAttribute('href'))")


def test_starter_buttons_before_anything_is_typed(new_page: Any, stack: Any) -> None:
    page = new_page()
    w = opened(page, stack)
    titles = [s["title"] for s in starters.for_browser()]
    row = page.locator(".ccw-starters")
    expect(row.locator("button.ccw-starter")).to_have_text(titles)
    expect(row.locator("button:enabled")).to_have_count(len(titles))
    assert [c["name"] for c in page.context.cookies()] == []  # nothing sent yet: no conversation
    shot(page, "starters")

    before = w.bots().count()
    row.get_by_role("button", name="How much does it cost?").click()
    answer = w.wait_reply(before)
    assert "$" in answer or "cost" in answer.lower(), answer
    assert w.visitor_texts() == ["How much does it cost?"]
    expect(row.locator("button:enabled")).to_have_count(0)  # spent
    expect(row.locator(".ccw-chosen")).to_have_text("How much does it cost?")

    page.reload()  # the conversation has begun: no starters again
    w = Widget(page)
    w.wait_ready()
    expect(page.locator(".ccw-starters")).to_have_count(0)
    assert w.visitor_texts() == ["How much does it cost?"]

    # a starter that is an intent, not a question: the pre-screen's first step
    other = new_page()
    w2 = opened(other, stack)
    before = w2.bots().count()
    other.locator(".ccw-starters").get_by_role("button", name="Am I eligible?").click()
    intro = w2.wait_reply(before)
    assert "Yes, let's start" in other.locator(".ccw-choice:enabled").all_inner_texts(), intro
    assert page.errors == [] and other.errors == []


def test_numbers_addresses_and_988_in_answers_are_tap_targets(new_page: Any, stack: Any) -> None:
    crafted = (
        "Call us at (555) 010-4477 or write to care@daytryprx.example. Poison Control: 1-800-222-1222.\n\n"
        "If you're in crisis, call or text 988. Crisis Text Line: [text HOME to 741741](sms:741741?&body=HOME).\n\n"
        "It costs $299 for 12 sessions, order 19880, ref 555-0100-22, v1.988.2, not@an address."
    )

    def fake_chat(route: Route) -> None:
        body = {"messages": [{"text": crafted, "buttons": [], "ts": 1_700_000_000.0}],
                "handoff": {"mode": "assistant", "agent": None, "position": None, "version": 0}}
        route.fulfill(status=200, content_type="application/json", body=json.dumps(body))

    page = new_page()
    page.route("**/api/chat", fake_chat)
    w = opened(page, stack)
    w.say("how do I reach you")
    msg = page.locator(".ccw-bot").last
    assert hrefs(msg) == ["tel:+15550104477", "mailto:care@daytryprx.example", "tel:+18002221222", "tel:988",
                          "sms:741741?&body=HOME"]
    assert msg.locator("a").all_inner_texts() == [
        "(555) 010-4477", "care@daytryprx.example", "1-800-222-1222", "988", "text HOME to 741741"]
    expect(msg.locator(".ccw-body")).to_contain_text("$299 for 12 sessions, order 19880, ref 555-0100-22, v1.988.2")
    assert page.errors == []


def test_the_crisis_answer_links_text_home_to_741741(new_page: Any, stack: Any) -> None:
    page = new_page()
    w = opened(page, stack)
    w.say("i want to kill myself")
    msg = page.locator(".ccw-bot").filter(has_text="741741").last
    assert "sms:741741?&body=HOME" in hrefs(msg)
    assert "tel:988" in hrefs(msg) and "sms:988" in hrefs(msg)
    expect(msg.locator("a", has_text="741741")).to_have_text("text HOME to 741741")
    assert "](sms:" not in msg.inner_text()  # never shown as markdown source


def test_a_lower_header_on_a_375_px_phone(new_page: Any, stack: Any) -> None:
    page = new_page(PHONE)
    w = opened(page, stack)
    header = page.locator(".ccw-header").bounding_box()
    log = w.log.bounding_box()
    assert header["height"] <= 48.5, header  # 48 px, give or take the browser's sub-pixel rounding
    # everything above the conversation (title, who answers, emergency and privacy lines) fits in
    # under a quarter of the screen, so the conversation keeps most of it
    assert log["y"] <= PHONE["height"] * 0.25, log
    assert log["height"] >= PHONE["height"] * 0.5, log
    # the close button is still a comfortable target
    close = w.close_button.bounding_box()
    assert close["width"] >= 43.5 and close["height"] >= 43.5  # 44 px, give or take sub-pixel rounding
    shot(page, "phone")


def test_start_over_is_away_from_close_and_asks_first(new_page: Any, stack: Any) -> None:
    page = new_page()
    w = opened(page, stack)
    w.say("what is ketamine therapy")
    restart, close = w.restart.bounding_box(), w.close_button.bounding_box()
    assert restart["y"] > w.log.bounding_box()["y"] + w.log.bounding_box()["height"]  # under the conversation
    assert restart["y"] - (close["y"] + close["height"]) > 300  # nowhere near the close button
    expect(page.locator(".ccw-header .ccw-restart")).to_have_count(0)
    first = next(c["value"] for c in page.context.cookies() if c["name"] == "cid")

    w.restart.click()
    expect(page.get_by_role("group", name=re.compile("Start over\\?"))).to_be_visible()
    expect(w.cancel_restart).to_be_focused()  # the safe choice has the focus
    shot(page, "start-over")
    w.cancel_restart.click()
    expect(w.restart).to_be_focused()
    assert w.visitor_texts() == ["what is ketamine therapy"]
    assert next(c["value"] for c in page.context.cookies() if c["name"] == "cid") == first

    w.start_over()
    expect(page.locator(".ccw-visitor")).to_have_count(0)
    expect(page.locator(".ccw-starters button:enabled")).to_have_count(len(starters.for_browser()))
    assert next(c["value"] for c in page.context.cookies() if c["name"] == "cid") != first
    assert page.errors == []


@pytest.fixture
def recent_waits(stack: Any) -> Iterator[None]:
    """Three more visitors a person took lately, after 2, 4 and 9 minutes (the stack is shared: other
    tests' live chats count too)."""
    engine = stack.clinic_engine()
    now = utcnow()
    made = []
    with engine.begin() as conn:
        for i, minutes in enumerate((2, 4, 9)):
            created = now - dt.timedelta(hours=1, minutes=i)
            made.append(conn.execute(insert(handoff_requests).values(
                conversation_id=f"waited-{i}-{now.timestamp()}", reason="visitor_request", urgent=False,
                kind=handoff.LIVE_KIND, status=handoff.CLOSED, created_at=created, updated_at=created, version=3,
                claimed_at=created + dt.timedelta(minutes=minutes), ended_at=created + dt.timedelta(minutes=20),
            )).inserted_primary_key[0])
    assert handoff.typical_wait_s(engine) is not None
    yield
    with engine.begin() as conn:
        conn.execute(handoff_requests.delete().where(handoff_requests.c.id.in_(made)))


def test_the_live_queue_shows_the_expected_wait(new_page: Any, stack: Any, recent_waits: None) -> None:
    stack.set_staffed(True)
    page = new_page()
    w = opened(page, stack)
    answer = w.say("can I talk to a real person please")
    assert "connect you with a person" in answer, answer
    w.choose("Yes")
    wait = page.locator(".ccw-waiting-text")
    expect(wait).to_be_visible()
    text = wait.inner_text()
    position = int(re.search(r"You're number (\d+) in line", text).group(1))
    minutes = max(1, math.ceil(round(handoff.typical_wait_s(stack.clinic_engine()) * position) / 60))
    said = "about a minute" if minutes == 1 else f"about {minutes} minutes"
    assert f"The wait is usually {said}." in text, text
    shot(page, "expected-wait")
    page.locator(".ccw-leave").click()
    expect(wait).to_be_hidden()
    assert page.errors == []
