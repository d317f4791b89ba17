"""Canned replies in a real browser (Debian's Chromium) on the session's stack: an admin edits them
on the console's page, and a staff member holding a live chat puts one in the reply box with one
click, edits it and sends it (the visitor's widget shows it).

Screenshot: test-artifacts/console-canned-replies.png.
"""

from typing import Any

import pytest

pytest.importorskip("playwright", reason="pip install -r requirements.txt brings Playwright")

from playwright.sync_api import expect  # noqa: E402

from clinic.rules import handoff  # noqa: E402
from tests import console_driver as cd  # noqa: E402
from tests.stack import conversation_id_of_page  # noqa: E402
from tests.widget_driver import ARTIFACTS, Widget  # noqa: E402

expect.set_options(timeout=20_000)


@pytest.fixture(scope="module")
def console_url(stack: Any) -> str:
    assert stack.extra_env.get("CANNED_REPLIES_FILE")  # a copy (tests/conftest.py), never the repository's file
    url = stack.start_console()
    cd.make_staff(stack)
    return url


def test_an_admin_edits_canned_replies_and_one_goes_out_in_a_live_chat(stack: Any, console_url: str,
                                                                        new_page: Any) -> None:
    stack.set_staffed(True)
    admin = new_page()
    cd.sign_in(admin, console_url, "admin", "/login?next=/replies")
    expect(admin.get_by_role("heading", name="Canned replies")).to_be_visible()
    new = admin.locator("fieldset[data-reply=new]")
    new.get_by_label("Title").fill("Booking")
    new.get_by_label("Text").fill("I can book your free evaluation now: which day suits you?")
    admin.get_by_role("button", name="Save the canned replies").click()
    expect(admin.get_by_text("Canned replies saved.")).to_be_visible()
    expect(admin.locator("fieldset[data-reply] input[name=title]").last).to_have_value("")  # a new empty row
    admin.screenshot(path=str(ARTIFACTS / "console-canned-replies.png"), full_page=True)

    visitor = new_page()
    visitor.goto(stack.web_url + "/")
    w = Widget(visitor)
    w.open()
    assert "connect you with a person" in w.say("can I talk to a real person please")
    w.choose("Yes")
    cid = conversation_id_of_page(visitor, stack)
    request_id = handoff.active(stack.clinic_engine(), cid)["id"]  # this visitor's (others may wait too)
    staff = new_page()
    cd.sign_in(staff, console_url, "support", "/login?next=/live")
    expect(staff.locator(f"#waiting tr[data-request='{request_id}']")).to_be_visible()
    cd.take_chat(staff, request_id)
    staff.locator('[data-action="canned"]', has_text="Booking").click()
    box = staff.locator("form#reply textarea[name=text]")
    expect(box).to_have_value("I can book your free evaluation now: which day suits you?")
    expect(box).to_be_focused()
    box.press("End")
    box.type(" Mornings or afternoons?")
    staff.locator("form#reply button[data-action=send]").click()
    expect(cd.staff_messages(staff).last).to_contain_text("which day suits you? Mornings or afternoons?")
    expect(visitor.locator(".ccw-msg.ccw-staff").last).to_contain_text("Mornings or afternoons?", timeout=15_000)
    cd.end_chat(staff, "close")
    assert admin.errors == [] and staff.errors == [] and visitor.errors == []
