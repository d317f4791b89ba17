"""Ratings end to end in real browsers (Debian's Chromium) on the session's stack: a visitor rates
the assistant's answers in the widget (thumbs up; thumbs down with what was wrong), the ratings
survive a reload, and a staff member finds them on the console's dashboard (satisfaction per
topic, the answers rated down linked to their transcripts).

Screenshots: test-artifacts/widget-rating.png, test-artifacts/console-satisfaction.png.
"""

from typing import Any, List
from urllib.parse import quote

import pytest
from sqlalchemy import select

pytest.importorskip("playwright", reason="pip install -r requirements.txt brings Playwright")

from playwright.sync_api import expect  # noqa: E402

from clinic.storage import db  # noqa: E402
from tests import console_driver as cd  # noqa: E402
from tests.stack import conversation_id_of_page  # noqa: E402
from tests.widget_driver import ARTIFACTS, Widget  # noqa: E402

expect.set_options(timeout=20_000)
WRONG = "it did not say the monthly price zebraquail"


@pytest.fixture(scope="module")
def console_url(stack: Any) -> str:
    url = stack.start_console()
    cd.make_staff(stack)
    return url


def ratings_of(stack: Any, cid: str) -> List[tuple]:
    with stack.clinic_engine().connect() as conn:
        return [(r.rating, r.comment) for r in conn.execute(
            select(db.answer_ratings).where(db.answer_ratings.c.conversation_id == cid).order_by(db.answer_ratings.c.id))]


def test_a_visitor_rates_answers_and_staff_see_it_on_the_dashboard(stack: Any, console_url: str, new_page: Any) -> None:
    page = new_page()
    page.goto(stack.web_url + "/")
    w = Widget(page)
    w.open()
    w.say("what is ketamine therapy")
    first = page.locator(".ccw-bot").last
    first.get_by_role("button", name="Helpful", exact=True).click()
    expect(first.get_by_role("button", name="Helpful", exact=True)).to_have_attribute("aria-pressed", "true")
    expect(first.locator(".ccw-rate-said")).to_have_text("Thanks!")

    w.say("how much does it cost")
    second = page.locator(".ccw-bot").last
    second.get_by_role("button", name="Not helpful", exact=True).click()
    why = second.get_by_label("What was wrong? (optional)")
    expect(why).to_be_focused()
    why.fill(WRONG)
    page.screenshot(path=str(ARTIFACTS / "widget-rating.png"))
    second.get_by_role("button", name="Send").click()
    expect(second.locator(".ccw-rate-said")).to_have_text("Thanks: that helps us improve.")
    cid = conversation_id_of_page(page, stack)
    assert ratings_of(stack, cid) == [(1, None), (-1, WRONG)]

    # one tap: no more than one rating per answer; a reload keeps a way to rate each answer
    page.reload()
    w = Widget(page)
    w.wait_ready()
    expect(page.locator(".ccw-bot .ccw-rate")).to_have_count(2)
    assert page.errors == []

    staff = new_page()
    cd.sign_in(staff, console_url, "support", "/login?next=/dashboard?days=7")
    expect(staff.get_by_role("heading", name="Satisfaction")).to_be_visible()
    expect(staff.locator("#table-satisfaction tr[data-topic]")).not_to_have_count(0)
    topics = staff.locator("#table-satisfaction tr[data-topic]").evaluate_all("rs => rs.map(r => r.dataset.topic)")
    assert "what_is_ketamine_therapy" in topics and "pricing" in topics, topics
    row = staff.locator("#table-worst tr").filter(has_text=WRONG)
    expect(row).to_have_count(1)
    expect(row).to_contain_text("pricing")
    expect(row.get_by_role("link", name="Transcript")).to_have_attribute("href", f"/conversations/{quote(cid, safe='')}")
    staff.locator("#satisfaction-h").scroll_into_view_if_needed()
    staff.screenshot(path=str(ARTIFACTS / "console-satisfaction.png"), full_page=True)
    row.get_by_role("link", name="Transcript").click()
    expect(staff.locator("main")).to_contain_text("how much does it cost")
    assert staff.errors == []
