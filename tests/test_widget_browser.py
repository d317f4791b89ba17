"""The chat widget in a real browser (Playwright driving Debian's Chromium),
on the page served by the real web app with the real Rasa and action servers
(the session ``stack``), and on a plain page of another site (cross-origin).

Screenshots of the desktop and mobile layouts go to test-artifacts/.
"""

import json
import re
from typing import Any, Dict, Iterator, List

import pytest

pytest.importorskip("playwright", reason="pip install -r requirements.txt brings Playwright")

from playwright.sync_api import Browser, BrowserContext, Page, Route, expect  # noqa: E402

from clinic.rules.answers import chosen, faq_responses, rendered  # noqa: E402
from clinic.settings import get_settings, load_clinic_info, public_facts  # noqa: E402
from tests.stack import ROOT  # noqa: E402
from tests.widget_driver import (  # noqa: E402
    ARTIFACTS,
    KeyboardWidget,
    Widget,
    embed_site,
    run_prescreen,
)

DESKTOP = {"width": 1280, "height": 800}
MOBILE = {"width": 360, "height": 740}
SMALLEST = {"width": 320, "height": 640}

expect.set_options(timeout=20_000)


def faq_answer(key: str, more: bool = False) -> str:
    """The answer (or its "Tell me more") as the settings make it (clinic.rules.answers)."""
    facts = public_facts(get_settings())
    (variation,) = chosen(faq_responses()[f"utter_faq_more_{key}" if more else f"utter_faq/{key}"], facts)
    return rendered(variation, facts)


@pytest.fixture
def new_context(browser: Browser) -> Iterator[Any]:
    """Fresh browser profiles (cookies, sessionStorage), closed after the test."""
    made: List[BrowserContext] = []

    def make(**kwargs: Any) -> BrowserContext:
        kwargs.setdefault("viewport", DESKTOP)
        ctx = browser.new_context(**kwargs)
        ctx.set_default_timeout(20_000)
        made.append(ctx)
        return ctx

    yield make
    for ctx in made:
        ctx.close()


class Watch:
    """What a page did that a visitor doesn't see: requests, errors, console."""

    def __init__(self, page: Page) -> None:
        self.requests: List[str] = []
        self.page_errors: List[str] = []
        self.console_errors: List[str] = []
        self.chat_bodies: List[Dict[str, Any]] = []
        self.dialogs: List[str] = []
        page.on("request", self._request)
        page.on("pageerror", lambda e: self.page_errors.append(str(e)))
        page.on("console", lambda m: self.console_errors.append(m.text) if m.type == "error" else None)
        page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))

    def _request(self, request: Any) -> None:
        self.requests.append(request.url)
        if request.url.endswith("/api/chat") and request.method == "POST":
            self.chat_bodies.append(json.loads(request.post_data or "{}"))


@pytest.fixture
def page(new_context: Any, stack: Any) -> Page:
    page = new_context().new_page()
    page.watch = Watch(page)
    return page


def visit(page: Page, url: str) -> Widget:
    page.goto(url)
    w = Widget(page)
    w.wait_ready()
    return w


def history(page: Page, base: str) -> List[Dict[str, Any]]:
    """The server's view of this browser's conversation (with its cookie)."""
    return page.evaluate(
        "async (base) => (await (await fetch(base + '/api/history', {credentials: 'include'})).json()).messages",
        base,
    )


def cookie(page: Page, name: str = "cid") -> str:
    return next((c["value"] for c in page.context.cookies() if c["name"] == name), "")


# --- the page and the widget on it ---------------------------------------------------


def test_the_clinic_page_carries_the_widget_by_one_script_tag(page: Page, stack: Any) -> None:
    w = visit(page, stack.web_url + "/")
    clinic = load_clinic_info(ROOT / "settings")
    assert clinic.name in page.title()
    scripts = page.locator("script")
    expect(scripts).to_have_count(1)
    assert scripts.get_attribute("src") == "/widget.js"
    expect(page.get_by_text("Not for emergencies").first).to_be_visible()
    expect(w.launcher).to_be_visible()
    expect(w.launcher).to_have_attribute("aria-expanded", "false")
    expect(w.panel).to_be_hidden()
    assert page.evaluate("() => !!document.getElementById('clinic-chat-widget').shadowRoot")
    assert not page.watch.page_errors and not page.watch.console_errors, page.watch.__dict__


def test_the_panel_is_an_accessible_labelled_dialog_with_a_live_log(page: Page, stack: Any) -> None:
    w = visit(page, stack.web_url + "/")
    w.open()
    expect(page.get_by_role("dialog", name=re.compile("assistant"))).to_be_visible()
    expect(w.log).to_have_attribute("role", "log")
    expect(w.log).to_have_attribute("aria-live", "polite")
    expect(page.get_by_role("textbox", name="Your message")).to_be_visible()
    expect(page.get_by_role("button", name="Send")).to_be_visible()
    line = page.locator(".ccw-emergency")
    expect(line).to_have_text("Not for emergencies: call or text 988")
    assert page.locator(".ccw-emergency a").evaluate_all("as => as.map(a => a.getAttribute('href'))") == [
        "tel:988",
        "sms:988",
    ]
    w.say("hi")
    choices = page.locator(".ccw-choice")
    assert choices.count() >= 2
    assert set(choices.evaluate_all("bs => bs.map(b => b.tagName + ':' + b.type)")) == {"BUTTON:button"}
    # every message carries its time
    assert page.locator(".ccw-msg time[datetime]").count() == page.locator(".ccw-msg").count() == 3


def test_the_privacy_line_at_the_top_of_the_panel_says_what_is_kept_and_links_the_policy(page: Page, stack: Any) -> None:
    w = visit(page, stack.web_url + "/")
    w.open()
    clinic = load_clinic_info(ROOT / "settings")
    line = page.locator(".ccw-privacy")
    expect(line).to_be_visible()
    expect(line).to_have_text(
        f"This chat is stored for {get_settings().retention_days} days and read by our care team; "
        "messages about safety are flagged for staff. Privacy policy"
    )
    assert page.locator(".ccw-privacy a").get_attribute("href") == clinic.privacy_url
    # above the conversation, not a dialog over it: the visitor can type at once
    assert line.bounding_box()["y"] < w.log.bounding_box()["y"]
    expect(page.get_by_role("textbox", name="Your message")).to_be_editable()
    assert not page.watch.dialogs


def test_tell_me_more_under_an_answer_gives_the_detail(page: Page, stack: Any) -> None:
    w = visit(page, stack.web_url + "/")
    w.open()
    answer = w.say("is ketamine therapy safe")
    assert faq_answer("safety")[:80] in answer
    detail = w.choose("Tell me more")
    assert faq_answer("safety", more=True)[:80] in detail
    assert w.visitor_texts()[-1] == "Tell me more"


def test_two_faqs_are_answered_with_nothing_from_third_parties(page: Page, stack: Any) -> None:
    w = visit(page, stack.web_url + "/")
    w.open()
    answer = w.say("what is ketamine therapy")
    assert faq_answer("what_is_ketamine_therapy")[:80] in answer
    answer = w.say("is it covered by insurance?")
    assert faq_answer("insurance")[:80] in answer
    assert w.visitor_texts() == ["what is ketamine therapy", "is it covered by insurance?"]
    outside = [u for u in page.watch.requests if not (u.startswith(stack.web_url + "/") or u.startswith("data:"))]
    assert outside == []
    assert not page.watch.page_errors and not page.watch.console_errors, page.watch.__dict__
    ids = [b["id"] for b in page.watch.chat_bodies]
    assert len(ids) == 2 and len(set(ids)) == 2  # a new id per new message


def test_a_prescreen_by_clicking_the_offered_buttons(page: Page, stack: Any) -> None:
    w = visit(page, stack.web_url + "/")
    w.open()
    done = run_prescreen(w)
    assert "Your reference is" in done
    reference = page.locator(".ccw-bot strong").last.inner_text()
    assert re.fullmatch(r"[A-Z0-9-]{4,}", reference), reference
    # each answered row was disabled; the chosen button stays marked
    chosen = page.locator(".ccw-choice.ccw-chosen")
    assert chosen.count() >= 14
    assert all(chosen.evaluate_all("bs => bs.map(b => b.disabled)"))
    expect(page.locator(".ccw-choice:enabled")).to_have_count(0)
    # button presses appear as the visitor's own words
    assert "Depression" in w.visitor_texts() and "Yes, contact me" in w.visitor_texts()
    assert not page.watch.page_errors and not page.watch.console_errors


def test_a_prescreen_by_keyboard_only(page: Page, stack: Any) -> None:
    page.goto(stack.web_url + "/")
    w = KeyboardWidget(page)
    w.open()  # Tab to the launcher, Enter
    done = run_prescreen(w)
    assert "Your reference is" in done
    # Escape closes and gives focus back to the launcher
    page.keyboard.press("Escape")
    expect(w.panel).to_be_hidden()
    assert "ccw-launcher" in str((w.focused() or {}).get("cls"))


def test_a_reload_mid_form_restores_the_conversation_and_the_form_goes_on(page: Page, stack: Any) -> None:
    w = visit(page, stack.web_url + "/")
    w.open()
    w.say("hello")
    w.choose("Am I eligible?")
    w.choose("Yes, let's start")
    assert "Which US state" in w.say("41")
    before = w.bot_texts()[1:]  # the widget's own greeting is not part of the conversation

    page.reload()
    w = Widget(page)
    w.wait_ready()
    expect(w.panel).to_be_visible()  # kept open across the reload (sessionStorage)
    assert w.visitor_texts() == ["hello", "Am I eligible?", "Yes, let's start", "41"]
    assert w.bot_texts()[1:] == before
    # only the last bot turn's buttons are active: the earlier ones are spent
    expect(page.locator(".ccw-choice:enabled")).to_have_count(0)
    expect(page.locator(".ccw-choice", has_text="Yes, let's start")).to_be_disabled()
    r = w.say("florida")
    assert "What would you most like help with?" in r
    r = w.choose("Anxiety")
    assert "What have you already tried" in r

    # a reload while buttons are waiting: they come back active, and work
    page.reload()
    w = Widget(page)
    w.wait_ready()
    expect(page.locator(".ccw-choice:enabled")).to_have_count(4)
    assert "Over the last 2 weeks" in w.choose("Medication")


# --- safety of what is shown ------------------------------------------------------------

XSS = [
    '<img src=x onerror="window.__xss=1;alert(1)">',
    "<script>window.__xss=2;alert(2)</script>",
    '<svg onload="window.__xss=3;alert(3)"><circle r=5></svg>',
    "[click me](javascript:window.__xss=4)",
    "javascript:window.__xss=5",
]


def test_what_a_visitor_types_is_shown_as_text_and_runs_nothing(page: Page, stack: Any) -> None:
    w = visit(page, stack.web_url + "/")
    w.open()
    for payload in XSS:
        w.say(payload)
    assert w.visitor_texts() == XSS
    log = page.locator(".ccw-log")
    assert log.locator("img, script, svg:not(.ccw-icon), iframe, object").count() == 0
    assert page.locator(".ccw-visitor a").count() == 0
    page.wait_for_timeout(300)
    assert page.evaluate("() => window.__xss") is None
    assert page.watch.dialogs == [] and page.watch.page_errors == []
    # after a reload, the history shows the same text, still inert
    page.reload()
    w = Widget(page)
    w.wait_ready()
    assert w.visitor_texts() == XSS
    assert page.locator(".ccw-log").locator("img, script, svg:not(.ccw-icon), iframe, object").count() == 0
    assert page.evaluate("() => window.__xss") is None and page.watch.dialogs == []


def test_bot_text_with_html_is_shown_as_text_and_only_safe_links_are_links(page: Page, stack: Any) -> None:
    base = stack.web_url
    crafted = (
        'Hello <b>there</b> <img src=x onerror="window.__xss=6"> <script>window.__xss=7</script>\n\n'
        "- first item\n- second **important** item\n\n"
        f"See [our FAQ]({base}/#faq), [a phishing page](https://evil.example/login), "
        "[js](javascript:window.__xss=8), https://evil.example/bare, "
        f"{base}/#who and [call 988](tel:988) or [text 988](sms:988). "
        "[text HOME to 741741](sms:741741?&body=HOME), [bad sms](sms:741741?&body=<b>x</b>), "
        "[bad tel](tel:988?body=HOME)."
    )

    def fake_chat(route: Route) -> None:
        body = {
            "messages": [
                {
                    "text": crafted,
                    "buttons": [{"title": '<img src=x onerror="window.__xss=9">', "payload": "x", "sig": "y"}],
                    "ts": 1_700_000_000.0,
                }
            ]
        }
        route.fulfill(status=200, content_type="application/json", body=json.dumps(body))

    page.route("**/api/chat", fake_chat)
    w = visit(page, base + "/")
    w.open()
    w.say("show me something")
    msg = page.locator(".ccw-bot").last
    text = msg.locator(".ccw-body").inner_text()
    assert "Hello <b>there</b> <img src=x onerror=" in text and "<script>window.__xss=7</script>" in text
    assert "[a phishing page](https://evil.example/login)" in text and "[js](javascript:window.__xss=8)" in text
    assert "https://evil.example/bare" in text
    assert msg.locator("b, img, script, iframe, svg:not(.ccw-icon)").count() == 0
    assert msg.locator("li").all_inner_texts() == ["first item", "second important item"]
    assert msg.locator("strong").all_inner_texts() == ["important"]
    hrefs = msg.locator("a").evaluate_all("as => as.map(a => [a.textContent, a.getAttribute('href')])")
    assert hrefs == [
        ["our FAQ", f"{base}/#faq"],
        [f"{base}/#who", f"{base}/#who"],
        ["call 988", "tel:988"],
        ["text 988", "sms:988"],
        ["text HOME to 741741", "sms:741741?&body=HOME"],
    ]
    assert "[bad tel](tel:988?body=HOME)" in text
    button = msg.locator(".ccw-choice")
    expect(button).to_have_text('<img src=x onerror="window.__xss=9">')
    page.wait_for_timeout(300)
    assert page.evaluate("() => window.__xss") is None and page.watch.page_errors == []


# --- failure and recovery ----------------------------------------------------------------


def test_a_stopped_rasa_shows_the_error_and_retry_sends_the_message_once(page: Page, stack: Any) -> None:
    w = visit(page, stack.web_url + "/")
    w.open()
    w.say("hello")
    stack.stop("rasa")
    try:
        w.input.fill("what is ketamine therapy")
        w.input.press("Enter")
        error = w.errors().last
        expect(error).to_be_visible(timeout=60_000)
        expect(error).to_contain_text("can't be reached")
        expect(error).to_contain_text("988")
        retry = error.get_by_role("button", name="Retry")
        expect(retry).to_be_enabled()
        assert w.visitor_texts() == ["hello", "what is ketamine therapy"]
        # the input is usable again
        expect(w.input).to_be_editable()
        expect(w.form).to_have_attribute("aria-busy", "false")
        page.screenshot(path=str(ARTIFACTS / "widget-error-state.png"))
    finally:
        if "rasa" not in stack.procs:
            stack.start("rasa")
        stack.wait_ready()
    bots_before = w.bots().count()
    retry.click()
    answer = w.wait_reply(bots_before)
    assert faq_answer("what_is_ketamine_therapy")[:80] in answer
    assert w.visitor_texts() == ["hello", "what is ketamine therapy"]
    expect(w.errors()).to_have_count(0)
    ids = [b["id"] for b in page.watch.chat_bodies if b.get("message") == "what is ketamine therapy"]
    assert len(ids) == 2 and ids[0] == ids[1]  # the retry carried the same id
    visitor_lines = [m["text"] for m in history(page, stack.web_url) if m["role"] == "visitor"]
    assert visitor_lines == ["hello", "what is ketamine therapy"]


def test_a_lost_answer_is_fetched_again_by_retry_without_a_second_message(page: Page, stack: Any) -> None:
    """The server answered but the answer never reached the page: Retry (same id)
    gets that answer, and Rasa sees the message once."""
    w = visit(page, stack.web_url + "/")
    w.open()
    w.say("hi")
    lost: List[str] = []

    def lose_answer(route: Route) -> None:
        route.fetch()  # the server processes the message...
        lost.append(route.request.post_data or "")
        route.abort("connectionreset")  # ...and the answer is lost on the way

    page.route("**/api/chat", lose_answer)
    w.input.fill("how much does it cost")
    w.input.press("Enter")
    expect(w.errors().get_by_role("button", name="Retry")).to_be_visible()
    page.unroute("**/api/chat")
    bots_before = w.bots().count()
    w.errors().get_by_role("button", name="Retry").click()
    answer = w.wait_reply(bots_before)
    assert faq_answer("pricing")[:80] in answer
    assert w.visitor_texts() == ["hi", "how much does it cost"]
    assert w.bot_texts().count(answer) == 1
    sent = [b for b in page.watch.chat_bodies if b.get("message") == "how much does it cost"]
    assert len(sent) == 2 and sent[0]["id"] == sent[1]["id"] and len(lost) == 1
    server = history(page, stack.web_url)
    assert [m["text"] for m in server if m["role"] == "visitor"] == ["hi", "how much does it cost"]
    assert sum(1 for m in server if m["role"] == "bot" and m["text"].startswith(faq_answer("pricing")[:40])) == 1


def test_an_answer_slower_than_15_s_gives_the_retry_state(page: Page, stack: Any) -> None:
    page.clock.install()
    w = visit(page, stack.web_url + "/")
    w.open()
    held: List[Route] = []
    page.route("**/api/chat", lambda route: held.append(route))  # never answered
    w.input.fill("is it safe")
    w.input.press("Enter")
    expect(w.typing).to_be_visible()
    expect(w.typing).to_contain_text("typing")
    page.wait_for_timeout(200)
    expect(w.errors()).to_have_count(0)
    page.clock.run_for(16_000)
    error = w.errors().last
    expect(error).to_contain_text("taking too long")
    expect(w.typing).to_be_hidden()
    assert w.visitor_texts() == ["is it safe"]
    page.unroute("**/api/chat")
    for route in held:  # the page gave up on it already
        try:
            route.abort()
        except Exception:
            pass
    bots_before = w.bots().count()
    error.get_by_role("button", name="Retry").click()
    answer = w.wait_reply(bots_before)
    assert faq_answer("safety")[:80] in answer
    assert w.visitor_texts() == ["is it safe"]
    ids = [b["id"] for b in page.watch.chat_bodies]
    assert len(ids) == 2 and ids[0] == ids[1]


def test_start_over_gives_a_new_conversation(page: Page, stack: Any) -> None:
    w = visit(page, stack.web_url + "/")
    w.open()
    w.say("hello")
    w.choose("Am I eligible?")
    first = cookie(page)
    assert first
    w.start_over()
    expect(page.locator(".ccw-visitor")).to_have_count(0)
    expect(page.locator(".ccw-bot")).to_have_count(1)  # the greeting
    assert cookie(page) != first
    assert history(page, stack.web_url) == []
    page.reload()
    w = Widget(page)
    w.wait_ready()
    expect(page.locator(".ccw-msg")).to_have_count(1)
    assert "How old" not in w.say("hello")


# --- embedding on another site ----------------------------------------------------------


def test_the_widget_works_on_another_sites_page(new_context: Any, stack: Any, embed_port: int) -> None:
    with embed_site(embed_port, stack.web_url + "/widget.js") as site:
        page = new_context().new_page()
        page.watch = Watch(page)
        w = visit(page, site + "/")
        expect(page.locator(".ccw-launcher")).to_have_css("background-color", "rgb(106, 61, 154)")
        w.open()
        expect(page.locator(".ccw-bot").first).to_contain_text("Hello from the partner site's chat.")
        expect(page.get_by_role("dialog", name=re.compile("Partner Clinic"))).to_be_visible()
        assert faq_answer("what_is_ketamine_therapy")[:80] in w.say("what is ketamine therapy")
        # another page of that site: the conversation comes back and goes on
        page.goto(site + "/about.html")
        w = Widget(page)
        w.wait_ready()
        expect(w.panel).to_be_visible()
        assert w.visitor_texts() == ["what is ketamine therapy"]
        assert faq_answer("pricing")[:80] in w.say("how much does it cost")
        page.screenshot(path=str(ARTIFACTS / "widget-embedded-other-site.png"))
        origins = {re.match(r"^[a-z]+://[^/]+", u).group(0) for u in page.watch.requests if not u.startswith("data:")}
        assert origins == {site, stack.web_url}
        assert not page.watch.page_errors and not page.watch.console_errors, page.watch.__dict__


# --- open, close, focus, layout ------------------------------------------------------------


def test_focus_moves_in_on_open_and_back_on_close_and_the_state_survives_a_reload(page: Page, stack: Any) -> None:
    w = visit(page, stack.web_url + "/")
    w.launcher.click()
    expect(w.panel).to_be_visible()
    expect(w.launcher).to_have_attribute("aria-expanded", "true")
    assert "ccw-input" in str(w.focused()["cls"])
    page.keyboard.press("Escape")
    expect(w.panel).to_be_hidden()
    expect(w.launcher).to_have_attribute("aria-expanded", "false")
    assert "ccw-launcher" in str(w.focused()["cls"])
    page.reload()
    Widget(page).wait_ready()
    expect(w.panel).to_be_hidden()
    w.launcher.click()
    page.reload()
    Widget(page).wait_ready()
    expect(w.panel).to_be_visible()
    w.close_button.click()
    expect(w.panel).to_be_hidden()
    assert "ccw-launcher" in str(w.focused()["cls"])
    # a call to action on the page opens it too
    page.get_by_role("button", name="Ask our assistant").first.click()
    expect(w.panel).to_be_visible()
    assert "ccw-input" in str(w.focused()["cls"])


def layout_facts(page: Page) -> Dict[str, Any]:
    return page.evaluate(
        """() => {
          const root = document.getElementById('clinic-chat-widget').shadowRoot;
          const box = (sel) => { const all = root.querySelectorAll(sel);
                                 const r = all[all.length - 1].getBoundingClientRect();
                                 return {left: r.left, right: r.right, top: r.top, bottom: r.bottom,
                                         width: r.width, height: r.height}; };
          return {vw: document.documentElement.clientWidth, vh: window.innerHeight,
                  scrollWidth: document.documentElement.scrollWidth,
                  panel: box('.ccw-panel'), input: box('.ccw-input'), send: box('.ccw-send'),
                  log: box('.ccw-log'), lastVisitor: box('.ccw-visitor')};
        }"""
    )


def test_on_a_375_px_phone_the_crisis_reply_s_988_link_is_tapped(new_context: Any, stack: Any) -> None:
    page = new_context(viewport={"width": 375, "height": 667}, device_scale_factor=2, is_mobile=True,
                       has_touch=True).new_page()
    w = visit(page, stack.web_url + "/")
    w.open()
    w.say("i don't want to be alive anymore")
    reply = page.locator(".ccw-bot", has_text="988").first
    hrefs = reply.locator("a").evaluate_all("as => as.map(a => a.getAttribute('href'))")
    assert hrefs[:1] == ["tel:988"] and {"sms:988", "sms:741741?&body=HOME", "tel:911"} <= set(hrefs)
    call = reply.get_by_role("link", name="call 988")
    call.scroll_into_view_if_needed()
    expect(call).to_be_in_viewport()
    box = call.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 375
    # the tap reaches the link (the phone would dial; here the navigation is only recorded)
    page.evaluate("() => document.addEventListener('click', e => { const t = e.composedPath()[0];"
                  " const a = t.closest && t.closest('a');"
                  " if (a) { window.__tapped = a.getAttribute('href'); e.preventDefault(); } }, true)")
    call.tap()
    assert page.evaluate("() => window.__tapped") == "tel:988"


@pytest.mark.parametrize(
    "name, viewport",
    [("desktop-1280x800", DESKTOP), ("mobile-360x740", MOBILE), ("mobile-320x640", SMALLEST)],
)
def test_layout_fits_the_screen(new_context: Any, stack: Any, name: str, viewport: Dict[str, int]) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page = new_context(viewport=viewport, device_scale_factor=1, is_mobile=viewport["width"] < 500,
                       has_touch=viewport["width"] < 500).new_page()
    w = visit(page, stack.web_url + "/")
    page.screenshot(path=str(ARTIFACTS / f"widget-{name}-closed.png"))
    w.open()
    w.say("hi")
    w.choose("What is ketamine therapy?")
    page.screenshot(path=str(ARTIFACTS / f"widget-{name}-open.png"))
    f = layout_facts(page)
    assert f["scrollWidth"] <= f["vw"], f  # no horizontal scroll
    panel = f["panel"]
    assert panel["left"] >= 0 and panel["right"] <= f["vw"] and panel["top"] >= 0 and panel["bottom"] <= f["vh"], f
    for part in ("input", "send"):
        assert f[part]["right"] <= f["vw"] and f[part]["bottom"] <= f["vh"] and f[part]["width"] > 0, (part, f)
    assert f["input"]["width"] >= 150, f
    assert f["log"]["height"] >= 200, f
    if viewport["width"] < 500:
        assert panel["width"] == f["vw"]  # the whole screen on a phone
        expect(w.launcher).to_be_hidden()
    else:
        assert panel["width"] <= 420 and panel["right"] <= f["vw"] - 8
        expect(w.launcher).to_be_visible()
    # the answer is shown from its start: the visitor's last message is still in view above it
    last = f["lastVisitor"]
    assert f["log"]["top"] - 1 <= last["top"] and last["bottom"] <= f["log"]["bottom"] + 1, f
    expect(page.locator(".ccw-bot").last).to_be_in_viewport()


@pytest.mark.parametrize("motion", ["reduce", "no-preference"])
def test_reduced_motion_is_respected(new_context: Any, stack: Any, motion: str) -> None:
    page = new_context(reduced_motion=motion).new_page()
    w = visit(page, stack.web_url + "/")
    w.open()
    animations = page.evaluate(
        """() => {
          const root = document.getElementById('clinic-chat-widget').shadowRoot;
          const name = (sel) => getComputedStyle(root.querySelector(sel)).animationName;
          return {panel: name('.ccw-panel'), dots: name('.ccw-dots span')};
        }"""
    )
    if motion == "reduce":
        assert animations == {"panel": "none", "dots": "none"}
    else:
        assert animations == {"panel": "ccw-in", "dots": "ccw-blink"}


# --- a person takes over the chat (the staff side as the console does it, without its page) ---------


def conversation_of(page: Page, stack: Any) -> str:
    from clinic.settings import load_secret
    from clinic.web import signing

    cid = signing.read_conversation_id(load_secret(stack.var_dir), cookie(page))
    assert cid, "no conversation cookie yet"
    return cid


@pytest.fixture
def staff(stack: Any) -> Iterator[Any]:
    from tests.widget_driver import StaffSide

    side = StaffSide(stack)
    side.cids = []
    yield side
    for cid in side.cids:
        side.end(cid)


def test_a_person_takes_over_the_chat_and_hands_it_back(page: Page, stack: Any, staff: Any) -> None:
    w = visit(page, stack.web_url + "/")
    w.open()
    who = page.locator(".ccw-who")
    expect(who).to_have_text("Now answering: Assistant")
    w.say("hello")
    cid = conversation_of(page, stack)
    staff.cids.append(cid)
    staff.queue(cid)  # as the assistant's action does on "yes" to a person
    assert faq_answer("insurance")[:80] in w.say("is it covered by insurance?")  # the assistant answers meanwhile
    waiting_box = page.locator(".ccw-waiting")
    expect(waiting_box).to_be_visible()
    expect(waiting_box).to_contain_text(re.compile(r"Waiting for a person from the team\. You're number \d+ in line\."))
    expect(waiting_box.get_by_role("button", name="Leave the queue")).to_be_enabled()
    expect(page.locator(".ccw-log .ccw-event").last).to_have_text("Waiting for a person from the team.")

    staff.claim(cid)
    expect(who).to_have_text("Now answering: Dana, clinic team", timeout=5_000)
    expect(waiting_box).to_be_hidden()
    expect(page.locator(".ccw-log .ccw-event").last).to_have_text("Now answering: Dana, clinic team.")
    expect(page.locator(".ccw-staff").first).to_contain_text("Dana from the")  # the joined line, named

    staff.say(cid, "Hi, I'm Dana from the clinic team. How can I help?")
    message = page.locator(".ccw-staff").filter(has_text="How can I help?")
    expect(message).to_be_visible(timeout=2_000)  # within 2 s of being stored
    expect(message.locator(".ccw-agent")).to_have_text("Dana, clinic team")
    assert message.evaluate("m => getComputedStyle(m).backgroundColor") != page.locator(".ccw-bot").first.evaluate(
        "m => getComputedStyle(m).backgroundColor"
    )

    bots_before = w.bots().count()
    w.input.fill("Thanks! Can I take it with my other medication?")
    w.input.press("Enter")
    expect(w.form).to_have_attribute("aria-busy", "false")
    expect(w.typing).to_be_hidden()
    assert w.visitor_texts()[-1] == "Thanks! Can I take it with my other medication?"
    assert w.errors().count() == 0 and w.bots().count() == bots_before  # nobody answers automatically
    page.screenshot(path=str(ARTIFACTS / "widget-live-chat.png"))

    staff.say(cid, "Good question: your clinician will go through your medications with you.")
    expect(page.locator(".ccw-staff").filter(has_text="go through your medications")).to_be_visible(timeout=2_000)

    staff.hand_back(cid)
    expect(who).to_have_text("Now answering: Assistant", timeout=5_000)
    expect(w.bots().last).to_contain_text("Dana has handed the chat back to me")
    expect(page.locator(".ccw-log .ccw-event").last).to_have_text("Now answering: the assistant.")
    assert faq_answer("pricing")[:80] in w.say("how much does it cost")
    # each message once, in the order the visitor saw them, and the same after a reload
    shown = page.locator(".ccw-msg").all_inner_texts()
    assert sum("How can I help?" in t for t in shown) == 1
    page.reload()
    Widget(page).wait_ready()
    expect(who).to_have_text("Now answering: Assistant")
    assert [t for t in page.locator(".ccw-staff .ccw-body").all_inner_texts() if "How can I help?" in t]
    assert not page.watch.page_errors and not page.watch.console_errors, page.watch.__dict__


def test_a_visitor_leaves_the_queue_after_a_reload(new_context: Any, stack: Any, staff: Any) -> None:
    page = new_context(viewport=SMALLEST, is_mobile=True, has_touch=True, reduced_motion="reduce").new_page()
    page.watch = Watch(page)
    w = visit(page, stack.web_url + "/")
    w.open()
    w.say("hello")
    cid = conversation_of(page, stack)
    staff.cids.append(cid)
    row = staff.queue(cid)
    page.reload()
    w = Widget(page)
    w.wait_ready()
    waiting_box = page.locator(".ccw-waiting")
    expect(waiting_box).to_be_visible()  # the wait is restored, and watched again
    expect(page.locator(".ccw-who")).to_have_text("Now answering: Assistant")
    leave = waiting_box.get_by_role("button", name="Leave the queue")
    expect(leave).to_be_in_viewport()  # on the smallest phone too
    page.screenshot(path=str(ARTIFACTS / "widget-waiting-mobile-320x640.png"))
    for _ in range(100):  # the long poll starts from the history answer
        if any("/api/updates?" in u for u in page.watch.requests):
            break
        page.wait_for_timeout(50)
    else:
        raise AssertionError("no long poll after the reload")
    leave.click()
    expect(waiting_box).to_be_hidden()
    expect(w.bots().last).to_have_text(re.compile("You've left the queue"))
    expect(page.locator(".ccw-log .ccw-event").last).to_have_text("Now answering: the assistant.")
    from clinic.rules import handoff

    assert handoff.get(staff.engine, row["id"])["status"] == handoff.CANCELLED
    assert "ccw-input" in str((w.focused() or {}).get("cls"))
    # after a reload the line is in the conversation once
    page.reload()
    Widget(page).wait_ready()
    assert sum("You've left the queue" in t for t in Widget(page).bot_texts()) == 1
    expect(page.locator(".ccw-waiting")).to_be_hidden()


def test_the_widget_reconnects_when_the_web_app_restarts_mid_chat(page: Page, stack: Any, staff: Any) -> None:
    w = visit(page, stack.web_url + "/")
    w.open()
    w.say("hello")
    cid = conversation_of(page, stack)
    staff.cids.append(cid)
    staff.queue(cid)
    w.say("is it safe")
    staff.claim(cid)
    who = page.locator(".ccw-who")
    expect(who).to_have_text("Now answering: Dana, clinic team", timeout=5_000)
    web = stack.procs["web"]
    stack.stop("web")
    assert web.returncode == 0  # stopped by itself: the open long poll did not hold it
    try:
        staff.say(cid, "Sorry for the wait, I'm still here.")
    finally:
        stack.start("web")
        stack.wait_ready()
    expect(page.locator(".ccw-staff").filter(has_text="I'm still here")).to_be_visible(timeout=20_000)
    bots_before = w.bots().count()
    w.input.fill("No problem")
    w.input.press("Enter")
    expect(w.form).to_have_attribute("aria-busy", "false")
    assert w.errors().count() == 0 and w.bots().count() == bots_before
    staff.say(cid, "Glad to hear it.")
    expect(page.locator(".ccw-staff").filter(has_text="Glad to hear it.")).to_be_visible(timeout=2_000)
