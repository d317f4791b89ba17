"""Drives the chat widget in a real browser (Playwright, Debian's Chromium).

The widget lives in an open shadow root: Playwright's CSS and role locators
pierce it, and ``focused()`` looks inside it for the element with focus.
"""

import os
import re
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional

from playwright.sync_api import Locator, Page, expect

from tests.prescreen_walk import BY_BUTTONS, INTRO

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
REPLY_TIMEOUT_MS = 60_000

FOCUSED_JS = """() => {
  let el = document.activeElement;
  while (el && el.shadowRoot && el.shadowRoot.activeElement) { el = el.shadowRoot.activeElement; }
  if (!el) { return null; }
  return {tag: el.tagName.toLowerCase(), cls: el.className || "", text: (el.textContent || "").trim(),
          disabled: !!el.disabled, inWidget: el.getRootNode() !== document};
}"""


class Widget:
    """The chat widget on one page."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.launcher = page.locator(".ccw-launcher")
        self.panel = page.get_by_role("dialog")
        self.log = page.locator(".ccw-log")
        self.input = page.locator(".ccw-input")
        self.form = page.locator(".ccw-form")
        self.typing = page.locator(".ccw-typing")
        self.restart = page.locator(".ccw-restart")
        self.confirm_restart = page.locator(".ccw-confirm-yes")
        self.cancel_restart = page.locator(".ccw-confirm-no")
        self.close_button = page.locator(".ccw-close")

    # --- reading ----------------------------------------------------------------
    def bots(self) -> Locator:
        return self.page.locator(".ccw-msg.ccw-bot")

    def visitors(self) -> Locator:
        return self.page.locator(".ccw-msg.ccw-visitor")

    def errors(self) -> Locator:
        return self.page.locator(".ccw-msg.ccw-error")

    def bot_texts(self) -> List[str]:
        return [t.strip() for t in self.page.locator(".ccw-msg.ccw-bot .ccw-body").all_inner_texts()]

    def visitor_texts(self) -> List[str]:
        return [t.strip() for t in self.page.locator(".ccw-msg.ccw-visitor .ccw-body").all_inner_texts()]

    def enabled_choice(self, title: str) -> Locator:
        return self.page.locator(".ccw-choice:enabled").filter(has_text=re.compile(rf"^\s*{re.escape(title)}\s*$"))

    def focused(self) -> Optional[Dict[str, object]]:
        return self.page.evaluate(FOCUSED_JS)

    def wait_ready(self) -> None:
        """The history has been rendered and no request is in flight."""
        expect(self.log).not_to_have_attribute("aria-busy", "true", timeout=REPLY_TIMEOUT_MS)
        expect(self.form).to_have_attribute("aria-busy", "false", timeout=REPLY_TIMEOUT_MS)

    def wait_reply(self, bots_before: int) -> str:
        """Waits for the answer to what was just sent; returns the new bot text."""
        expect(self.form).to_have_attribute("aria-busy", "false", timeout=REPLY_TIMEOUT_MS)
        assert self.errors().count() == 0, self.errors().all_inner_texts()
        texts = self.bot_texts()
        assert len(texts) > bots_before, f"no answer: {texts}"
        return "\n".join(texts[bots_before:])

    # --- acting with the mouse ----------------------------------------------------
    def open(self) -> None:
        self.wait_ready()
        if not self.panel.is_visible():
            self.launcher.click()
        expect(self.panel).to_be_visible()

    def say(self, text: str) -> str:
        before = self.bots().count()
        self.input.fill(text)
        self.input.press("Enter")
        return self.wait_reply(before)

    def choose(self, title: str) -> str:
        before = self.bots().count()
        self.enabled_choice(title).click()
        return self.wait_reply(before)

    def start_over(self) -> None:
        """ "Start over", then "Yes, start over" when it asks to confirm."""
        self.restart.click()
        self.confirm_restart.click()
        self.wait_ready()


class KeyboardWidget(Widget):
    """The same widget, used with Tab, Shift+Tab, Enter and Space only."""

    press_with = "Enter"

    def tab_until(self, matches: Callable[[Dict[str, object]], bool], backwards: bool = False, limit: int = 80) -> None:
        key = "Shift+Tab" if backwards else "Tab"
        for _ in range(limit):
            f = self.focused()
            if f and matches(f):
                return
            self.page.keyboard.press(key)
        raise AssertionError(f"{key} x{limit} never reached the element; focus is on {self.focused()}")

    def open(self) -> None:
        self.wait_ready()
        self.tab_until(lambda f: "ccw-launcher" in str(f["cls"]))
        self.page.keyboard.press("Enter")
        expect(self.panel).to_be_visible()
        f = self.focused()
        assert f and "ccw-input" in str(f["cls"]), f"focus did not move into the panel: {f}"

    def say(self, text: str) -> str:
        before = self.bots().count()
        f = self.focused()
        if not (f and "ccw-input" in str(f["cls"])):
            self.tab_until(lambda f: "ccw-input" in str(f["cls"]))
        self.page.keyboard.type(text)
        self.page.keyboard.press("Enter")
        return self.wait_reply(before)

    def choose(self, title: str) -> str:
        before = self.bots().count()
        expect(self.enabled_choice(title)).to_have_count(1)

        def is_it(f: Dict[str, object]) -> bool:
            return "ccw-choice" in str(f["cls"]) and f["text"] == title and not f["disabled"]

        f = self.focused() or {}
        # focus is on the first new choice (after a button) or in the input (after typing):
        # the choices are after the first and before the input
        self.tab_until(is_it, backwards="ccw-choice" not in str(f.get("cls", "")), limit=15)
        self.page.keyboard.press(self.press_with)
        # alternate Enter and Space: both must work on a real <button>
        self.press_with = "Space" if self.press_with == "Enter" else "Enter"
        return self.wait_reply(before)


def run_prescreen(w: Widget) -> str:
    """An eligible visitor's pre-screen: buttons wherever the bot offers them;
    typed: a greeting, age, state, name, email and phone (tests/prescreen_walk.py's BY_BUTTONS).
    Returns the last answer."""
    greeting = w.say("hello")
    assert "Am I eligible?" in w.page.locator(".ccw-choice:enabled").all_inner_texts(), greeting
    r = w.choose("Am I eligible?")
    assert INTRO in r
    for kind, value, expected in BY_BUTTONS:
        r = w.say(value) if kind == "say" else w.choose(value)
        assert expected in r, (value, expected, r)
    return w.choose("Yes, contact me")


# --- a second site that embeds the widget -------------------------------------------

EMBED_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title><link rel="icon" href="data:,"></head>
<body><h1>{title}</h1><p>A partner's plain page. <a href="/">Home</a> · <a href="/about.html">About</a></p>
<script src="{widget}" data-clinic-name="Partner Clinic" data-color="#6a3d9a"
        data-greeting="Hello from the partner site's chat." data-open="false" defer></script>
</body></html>
"""


@contextmanager
def embed_site(port: int, widget_url: str) -> Iterator[str]:
    """Serves two plain HTML pages with the widget's script tag on 127.0.0.1:port."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            title = {"/": "Partner home", "/about.html": "About the partner"}.get(self.path.split("?")[0])
            if title is None:
                self.send_error(404)
                return
            body = EMBED_PAGE.format(title=title, widget=widget_url).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()


# --- the staff side of a live chat, as the console does it (tests that need no console page) ---


class StaffSide:
    """A staff member taking a visitor's chat on the test stack: the state change in the
    clinic DB, then the tracker events through Rasa's HTTP API, then ``touch`` for a message."""

    def __init__(self, stack: "object", staff_id: int = 41, name: str = "Dana") -> None:
        from clinic.storage import db
        from clinic.settings import ROOT, load_clinic_info

        self.engine = stack.clinic_engine()
        self.rasa_url = stack.rasa_url
        self.rasa_token = stack.rasa_token
        self.staff_id = staff_id
        self.name = name
        self.clinic_name = load_clinic_info(ROOT / "settings").name

    def _rasa(self, method: str, *args: object) -> object:
        """One RasaClient call, on its own loop in a thread (Playwright's sync API owns this one)."""
        import asyncio
        from concurrent.futures import ThreadPoolExecutor

        from clinic.rasa_runtime.rasa_client import RasaClient

        async def call() -> object:
            client = RasaClient(self.rasa_url, token=self.rasa_token)
            try:
                return await getattr(client, method)(*args)
            finally:
                await client.close()

        with ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(asyncio.run, call()).result()

    def queue(self, cid: str) -> Dict[str, object]:
        """What the assistant's action does when the visitor says yes to a person."""
        from clinic.rules import handoff

        return handoff.request_live(self.engine, cid, "visitor_request", urgent=False)

    def active(self, cid: str) -> Optional[Dict[str, object]]:
        from clinic.rules import handoff

        return handoff.active(self.engine, cid)

    def claim(self, cid: str) -> None:
        from clinic.rules import handoff

        row = handoff.active(self.engine, cid)
        assert row is not None and row["status"] == handoff.WAITING, row
        handoff.change(self.engine, row["id"], "claim", handoff.WAITING, staff_id=self.staff_id, staff_name=self.name)
        self._rasa("append_events", cid, handoff.joined_events(self.staff_id, self.name, self.clinic_name))

    def say(self, cid: str, text: str) -> None:
        from clinic.rules import handoff

        row = handoff.active(self.engine, cid)
        assert row is not None and row["status"] == handoff.LIVE, row
        self._rasa("append_events", cid, [handoff.staff_message_event(self.staff_id, self.name, text)])
        handoff.touch(self.engine, row["id"])

    def hand_back(self, cid: str, closed: bool = False) -> None:
        from clinic.rules import handoff

        row = handoff.active(self.engine, cid)
        assert row is not None and row["status"] == handoff.LIVE, row
        handoff.change(self.engine, row["id"], "close" if closed else "hand_back", handoff.LIVE)
        self._rasa("append_events", cid, handoff.resumed_events(self.name, closed=closed))

    def end(self, cid: str) -> None:
        """Leaves nothing waiting or live behind for the next test (close, whatever the state)."""
        from clinic.rules import handoff

        row = handoff.active(self.engine, cid)
        if row is None:
            return
        if row["status"] == handoff.LIVE:
            self.hand_back(cid, closed=True)
        else:
            handoff.change(self.engine, row["id"], "close", handoff.WAITING)
