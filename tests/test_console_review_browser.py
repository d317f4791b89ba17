"""The review loop in a real browser (Playwright driving Debian's Chromium), against the session's
stack and console: a visitor's question the assistant was unsure of is opened in its transcript,
marked with what it should have been, found on the Review page in its group with that suggestion,
and accepted; the text is then training data (the stack's console writes to a folder of its own,
never the project's data/).

Screenshots go to test-artifacts/console-review*.png (docs/console-review.png is one of them)."""

from typing import Any
from urllib.parse import quote

import pytest
import requests
import yaml

pytest.importorskip("playwright", reason="pip install -r requirements.txt brings Playwright")

from playwright.sync_api import Page, expect  # noqa: E402

from tests import console_driver as cd  # noqa: E402
from tests.stack import conversation_id, say  # noqa: E402
from tests.widget_driver import ARTIFACTS  # noqa: E402

# Slang the release model is unsure of ("did you mean"); tests/test_review_loop_training.py trains on it.
QUESTION = "will this break the bank"
ALIKE = "Will this break the bank?"  # another visitor, the same words: one training example
OTHERS = ["will my boss find out", "can i do this on my lunch break"]


@pytest.fixture(scope="module")
def console_url(stack: Any) -> str:
    url = stack.start_console()
    cd.make_staff(stack)
    return url


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"console-{name}.png"), full_page=True)


def visitor_asks(stack: Any, text: str) -> str:
    s = requests.Session()
    r = say(s, stack, text)
    assert r.status_code == 200, r.text
    return conversation_id(s, stack)


def test_mark_a_message_then_accept_it_on_the_review_page(stack: Any, console_url: str, new_page: Any) -> None:
    cid = visitor_asks(stack, QUESTION)
    visitor_asks(stack, ALIKE)
    for other in OTHERS:  # more the assistant was unsure of: groups of their own
        visitor_asks(stack, other)
    page = new_page()
    cd.sign_in(page, console_url, "clinician")
    page.goto(f"{console_url}/conversations/{quote(cid, safe='')}")
    message = page.locator("li.msg-visitor").filter(has_text=QUESTION)
    expect(message).to_have_count(1)
    message.locator("summary").click()
    message.get_by_label("What it should have been").select_option("faq/pricing")
    message.get_by_role("button", name="Mark").click()
    expect(page.get_by_role("status")).to_contain_text("Correction proposed")
    marked = page.locator("li.msg-visitor").filter(has_text=QUESTION).locator(".correction")
    expect(marked).to_contain_text("Should have been Cost")
    expect(marked).to_have_attribute("data-status", "proposed")

    page.get_by_role("navigation", name="Console").get_by_role("link", name="Review").click()
    expect(page.get_by_role("heading", name="Review what the assistant misunderstood")).to_be_visible()
    group = page.locator("section.review-group").filter(has=page.locator(f"textarea:text-is('{QUESTION}')"))
    expect(group).to_have_count(1)
    expect(group.locator("[data-suggested]")).to_have_attribute("data-suggested", "faq/pricing")
    expect(group.locator(f"textarea:text-is('{ALIKE}')")).to_have_count(1)  # in the same group
    expect(group).to_contain_text("marked by cleo.clinician")
    expect(group.get_by_label("Should have been")).to_have_value("faq/pricing")
    for other in OTHERS:  # on the page, not in this group
        expect(page.locator(f"textarea:text-is('{other}')")).to_have_count(1)
        expect(group.locator(f"textarea:text-is('{other}')")).to_have_count(0)
    # "Select all" unticks and ticks the whole group
    boxes = group.locator("input[name='item']")
    group.get_by_label("Select all in this group").uncheck()
    assert all(not b.is_checked() for b in boxes.all())
    group.get_by_label("Select all in this group").check()
    assert all(b.is_checked() for b in boxes.all())
    shot(page, "review")

    group.get_by_role("button", name="Accept selected").click()
    expect(page.get_by_role("status")).to_contain_text("Accepted.")
    expect(page.get_by_role("status")).to_contain_text("1 example written to the training data, 1 already there")
    expect(page.locator("section.review-group").filter(has=page.locator(f"textarea:text-is('{QUESTION}')"))).to_have_count(0)
    written = yaml.safe_load((stack.training_data_dir / "reviewed" / "faq_pricing.yml").read_text())
    examples = written["nlu"][0]["examples"]
    assert examples.lower().count("will this break the bank") == 1  # the two visitors' words, once
    page.goto(f"{console_url}/conversations/{quote(cid, safe='')}")
    expect(page.locator("li.msg-visitor").filter(has_text=QUESTION).locator(".correction")).to_have_attribute(
        "data-status", "accepted")
    assert page.errors == []
