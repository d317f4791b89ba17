"""Console: the live chat, staff side (/live), against the real app and a fresh clinic DB.

Rasa is a fake that records the events the console sends and writes them to the
tracker store as Rasa does (``tests.test_console_auth.FakeRasa``). What is checked:
the queue's order and content, taking a chat (the events sent; two people at once;
Rasa down), replies (event, touch, length, who may), hand back, close, return to the
queue, closing a request nobody can take, the page's updates (events.json), roles,
CSRF, the audit log, escaping, what support staff do not see, the callback page.
"""

import datetime as dt
import hashlib
import json
import logging
import re
import time
import uuid
from typing import Any, Dict, List, Optional

import pytest
from sanic import Sanic
from sqlalchemy import select, update

from clinic.rules import handoff
from clinic.console import auth
from clinic.storage.crypto import encrypt_json
from clinic.storage.db import audit_log, handoff_requests, utcnow
from tests.test_console_auth import FakeRasa, make_app, write_tracker_events

PASSWORD = "correct horse battery staple"
XSS = "<script>alert('x')</script> and <img src=x onerror=alert(1)>"
VISITOR_SECRET = "my very private words about my sleep"
REPLY = "Hi, I'm here. What's on your mind? (staff reply 7431)"
CLINIC = "Daytryp RX"


class Live:
    """A console with a fake Rasa and one signed-in account per name."""

    def __init__(self) -> None:
        from clinic.settings import get_settings

        self.settings = get_settings()
        self.rasa = FakeRasa(self.settings.tracker_db_url)
        self.app: Sanic = make_app(self.settings, rasa=self.rasa)
        self.engine = self.app.ctx.engine
        self.users: Dict[str, Dict[str, Any]] = {}

    def add_user(self, username: str, role: str, display_name: Optional[str] = None) -> Dict[str, Any]:
        user_id = auth.create_user(self.engine, username, PASSWORD, role, display_name)
        token = auth.start_session(self.engine, user_id, 1)
        self.users[username] = {
            "id": user_id, "token": token, "role": role,
            "csrf": auth.csrf_token(self.app.ctx.secret, hashlib.sha256(token.encode()).hexdigest()),
        }
        return self.users[username]

    def get(self, path: str, as_: str, **kwargs: Any) -> Any:
        _, response = self.app.test_client.get(
            path, cookies={auth.SESSION_COOKIE: self.users[as_]["token"]}, allow_redirects=False, **kwargs)
        return response

    def post(self, path: str, data: Optional[Dict[str, Any]] = None, as_: str = "dana", csrf: bool = True,
             json_reply: bool = False) -> Any:
        form = dict(data or {})
        if csrf:
            form["csrf"] = self.users[as_]["csrf"]
        headers = {"Accept": "application/json"} if json_reply else {}
        _, response = self.app.test_client.post(
            path, data=form, cookies={auth.SESSION_COOKIE: self.users[as_]["token"]}, headers=headers,
            allow_redirects=False)
        return response

    # --- data ---

    def conversation(self, *texts: str) -> str:
        """A conversation whose visitor said ``texts`` (and the assistant answered each)."""
        cid = uuid.uuid4().hex
        events: List[Dict[str, Any]] = [{"event": "action", "name": "action_listen", "timestamp": time.time()}]
        for text in texts:
            events.append(user_event(text))
            events.append({"event": "bot", "text": "An answer from the assistant.", "timestamp": time.time(),
                           "metadata": {"utter_action": "utter_faq"}})
        write_tracker_events(self.settings.tracker_db_url, cid, events)
        return cid

    def request(self, cid: Optional[str] = None, urgent: bool = False, minutes_ago: float = 0,
                reason: str = "visitor_request") -> int:
        row = handoff.request_live(self.engine, cid or self.conversation("can I talk to a person"), reason, urgent)
        if minutes_ago:
            with self.engine.begin() as conn:
                conn.execute(update(handoff_requests).where(handoff_requests.c.id == row["id"]).values(
                    created_at=utcnow() - dt.timedelta(minutes=minutes_ago)))
        return int(row["id"])

    def row(self, request_id: int) -> Dict[str, Any]:
        found = handoff.get(self.engine, request_id)
        assert found is not None
        return found

    def claimed(self, request_id: int, as_: str = "dana") -> Dict[str, Any]:
        response = self.post(f"/live/{request_id}/claim", as_=as_)
        assert response.status == 303, response.text[:500]
        self.rasa.calls.clear()
        return self.row(request_id)

    def audits(self, action: str) -> List[Dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(
                select(audit_log).where(audit_log.c.action == action).order_by(audit_log.c.id))]


def user_event(text: str, intent: str = "faq") -> Dict[str, Any]:
    return {"event": "user", "text": text, "timestamp": time.time(), "input_channel": "rest",
            "parse_data": {"intent": {"name": intent, "confidence": 0.9}, "entities": [], "text": text}}


@pytest.fixture
def live(clinic_env: Any) -> Live:
    console = Live()
    console.add_user("dana", "support", display_name="Dana")
    console.add_user("sue", "support")  # no display name: visitors see "sue"
    console.add_user("cleo", "clinician")
    console.add_user("ada", "admin", display_name="Ada")
    return console


def row_ids(html: str, table: str) -> List[int]:
    body = html.split(f'id="{table}"', 1)[1].split("</table>", 1)[0]
    return [int(i) for i in re.findall(r'<tr class="[^"]*" data-request="(\d+)"', body)]


def events_json(live: Live, request_id: int, as_: str = "dana", after: int = 0, v: str = "") -> Dict[str, Any]:
    response = live.get(f"/live/{request_id}/events.json", as_, params={"after": after, "v": v})
    assert response.status == 200, response.text[:300]
    return response.json


# --- the queue --------------------------------------------------------------------------


def test_the_queue_is_urgent_first_then_the_longest_waiting(live: Live) -> None:
    recent = live.request(minutes_ago=1)
    old = live.request(minutes_ago=30, reason="fallback")
    urgent = live.request(urgent=True, reason="crisis")
    held = live.claimed(live.request(minutes_ago=50), as_="ada")["id"]
    handoff.request_callback(live.engine, "callback-1", "visitor_request", False, encrypt_json(live.settings.encryption_key, {}))
    html = live.get("/live", "dana").text
    assert row_ids(html, "waiting") == [urgent, old, recent]
    assert row_ids(html, "held") == [held]
    waiting = html.split('id="waiting"', 1)[1].split("</table>", 1)[0]
    assert re.findall(r'data-position="(\d)"', waiting) == ["1", "2", "3"]
    assert "Crisis" in waiting and "The assistant did not understand" in waiting and "Visitor asked" in waiting
    assert waiting.count('class="urgent badge"') == 1
    assert "30 min" in waiting and re.search(r"\b\d+ s\b", waiting)
    assert f'href="/live/{urgent}"' in waiting  # the transcript so far
    assert waiting.count('data-action="claim"') == 3 and f'action="/live/{old}/claim"' in waiting
    assert 'class="crisis-banner"' in html and "988" in html and "911" in html
    assert ">Ada<" in html.split('id="held"', 1)[1] or "Ada <span" in html.split('id="held"', 1)[1]
    # the same, for the page's script
    data = live.get("/live/queue.json", "dana").json
    assert data["count"] == 3 and [w["id"] for w in data["waiting"]] == [urgent, old, recent]
    assert [w["position"] for w in data["waiting"]] == [1, 2, 3] and data["waiting"][0]["urgent"] is True
    assert data["held"] == [{"id": held, "staff_name": "Ada"}]
    assert row_ids(data["html"], "waiting") == [urgent, old, recent]
    # the count in the menu, on every page
    for path in ("/live", "/conversations", "/handoffs", "/dashboard"):
        page = live.get(path, "dana").text
        assert re.search(r'id="live-count" class="count waiting" data-count="3">3<', page), path


def test_the_queue_page_works_without_script_and_loads_it(live: Live) -> None:
    html = live.get("/live", "dana").text
    assert '<script src="/static/live.js" defer></script>' in html
    assert 'data-poll-url="/live/queue.json"' in html and "Nobody is waiting." in html
    assert 'data-count="0">0<' in html
    script = live.app.test_client.get("/static/live.js")[1]
    assert script.status == 200 and "data-poll-url" in script.text  # the URLs come from the page
    assert "innerHTML = html" in script.text and "textContent" in script.text


# --- taking a chat ----------------------------------------------------------------------------


def test_taking_a_chat_pauses_the_assistant_and_says_who_joined(live: Live) -> None:
    cid = live.conversation("hello", "can I talk to a person")
    request_id = live.request(cid)
    response = live.post(f"/live/{request_id}/claim")
    assert response.status == 303 and response.headers["location"] == f"/live/{request_id}"
    row = live.row(request_id)
    assert (row["status"], row["staff_id"], row["staff_name"]) == ("live", live.users["dana"]["id"], "Dana")
    assert row["claimed_at"] is not None
    [(sent_to, events)] = live.rasa.calls
    assert sent_to == cid
    assert [e["event"] for e in events] == ["pause", "bot"]
    assert events[1]["text"] == f"Dana from the {CLINIC} team has joined the chat."
    assert events[1]["metadata"] == {"staff": {"id": live.users["dana"]["id"], "name": "Dana"}, "handoff": "joined"}
    [entry] = live.audits("live_claim")
    assert (entry["username"], entry["target_type"], entry["target_id"]) == ("dana", "handoff_request", str(request_id))
    # the chat page: the transcript so far, the joined notice, the reply form and the controls
    page = live.get(f"/live/{request_id}", "dana").text
    assert 'id="state" data-state="live" data-holder="Dana"' in page and "(you) is answering" in page
    assert '<form id="reply" method="post" action="/live/%d/messages" class="stack wide">' % request_id in page
    assert 'textarea id="reply-text" name="text"' in page
    for action in ("hand_back", "close", "release"):
        assert f'data-action="{action}"' in page
    assert page.count('class="msg msg-visitor visitor"') == 2
    assert 'class="msg msg-notice notice" data-event-id=' in page and 'data-handoff="joined"' in page
    assert "Dana from the" in page
    # a second click on one's own claim just opens the chat
    assert live.post(f"/live/{request_id}/claim").headers["location"] == f"/live/{request_id}"


def test_without_a_display_name_visitors_see_the_username(live: Live) -> None:
    request_id = live.request()
    assert live.post(f"/live/{request_id}/claim", as_="sue").status == 303
    assert live.row(request_id)["staff_name"] == "sue"
    assert live.rasa.events()[1]["text"].startswith("sue from the")


def test_two_people_take_one_chat_one_wins_the_other_is_told(live: Live) -> None:
    request_id = live.request()
    assert live.post(f"/live/{request_id}/claim", as_="dana").status == 303
    late = live.post(f"/live/{request_id}/claim", as_="sue")
    assert late.status == 409
    assert "someone else took this chat just before you" in late.text and "Dana is answering" in late.text
    row = live.row(request_id)
    assert (row["status"], row["staff_name"]) == ("live", "Dana")
    assert len(live.rasa.calls) == 1  # only the winner's joined message
    assert [a["username"] for a in live.audits("live_claim_refused")] == ["sue"]
    # an ended request cannot be taken at all
    handoff.change(live.engine, request_id, "close", "live")
    ended = live.post(f"/live/{request_id}/claim", as_="sue")
    assert ended.status == 409 and "nobody can take it" in ended.text


def test_when_rasa_is_down_a_claim_goes_back_to_the_queue(live: Live, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    request_id = live.request(live.conversation(VISITOR_SECRET))
    live.rasa.down = True
    response = live.post(f"/live/{request_id}/claim")
    assert response.status == 503
    assert "could not be reached" in response.text and "back in the queue" in response.text
    row = live.row(request_id)
    assert (row["status"], row["staff_id"], row["staff_name"], row["claimed_at"]) == ("waiting", None, None, None)
    assert live.audits("live_claim_failed") and not live.audits("live_claim")
    assert VISITOR_SECRET not in caplog.text
    live.rasa.down = False
    assert live.post(f"/live/{request_id}/claim").status == 303
    assert live.row(request_id)["status"] == "live"


def test_a_missing_or_callback_request_is_not_a_live_chat(live: Live) -> None:
    callback = handoff.request_callback(live.engine, "cb", "visitor_request", False, encrypt_json(live.settings.encryption_key, {}))
    for path in (f"/live/{callback}", "/live/99999", f"/live/{callback}/events.json"):
        assert live.get(path, "dana").status == 404, path
    for action in ("claim", "messages", "hand_back", "close", "release"):
        assert live.post(f"/live/{callback}/{action}", {"text": "x"}).status == 404, action


# --- replies ----------------------------------------------------------------------------------


def test_a_reply_goes_to_the_visitor_and_wakes_the_widget(live: Live, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    cid = live.conversation("hello")
    request_id = live.request(cid)
    version = live.claimed(request_id)["version"]
    response = live.post(f"/live/{request_id}/messages", {"text": f"  {REPLY}\n"})
    assert response.status == 303 and response.headers["location"].startswith(f"/live/{request_id}")
    [(sent_to, [event])] = live.rasa.calls
    assert sent_to == cid and event["event"] == "bot" and event["text"] == REPLY
    assert event["metadata"] == {"staff": {"id": live.users["dana"]["id"], "name": "Dana"}}
    assert live.row(request_id)["version"] == version + 1  # touch
    [entry] = live.audits("live_message")
    assert REPLY not in json.dumps(entry, default=str) and "7431" not in (entry["detail"] or "")
    assert REPLY not in caplog.text
    # it shows as a staff message, with the name
    page = live.get(f"/live/{request_id}", "dana").text
    [staff] = re.findall(r'<li class="msg msg-staff staff".*?</li>', page, re.S)
    assert "Dana (staff)" in staff and "What&#39;s on your mind?" in staff
    # and with script: JSON in, JSON out
    sent = live.post(f"/live/{request_id}/messages", {"text": "second"}, json_reply=True)
    assert sent.status == 200 and sent.json == {"ok": True}
    assert live.row(request_id)["version"] == version + 2


@pytest.mark.parametrize("text,ok", [("", False), ("   \n ", False), ("x", True), ("y" * 2000, True), ("z" * 2001, False)])
def test_a_reply_is_1_to_2000_characters(live: Live, text: str, ok: bool) -> None:
    request_id = live.request()
    version = live.claimed(request_id)["version"]
    response = live.post(f"/live/{request_id}/messages", {"text": text})
    assert response.status == (303 if ok else 400)
    assert len(live.rasa.calls) == (1 if ok else 0)
    assert live.row(request_id)["version"] == version + (1 if ok else 0)
    if not ok:
        assert "a reply is 1 to 2000 characters" in response.text
        as_json = live.post(f"/live/{request_id}/messages", {"text": text}, json_reply=True)
        assert as_json.status == 400 and as_json.json["ok"] is False and "2000" in as_json.json["error"]


def test_only_the_holder_or_an_admin_replies(live: Live) -> None:
    request_id = live.request()
    live.claimed(request_id)
    for other in ("sue", "cleo"):
        refused = live.post(f"/live/{request_id}/messages", {"text": "hello"}, as_=other)
        assert refused.status == 403 and "Dana holds this chat" in refused.text
        as_json = live.post(f"/live/{request_id}/messages", {"text": "hello"}, as_=other, json_reply=True)
        assert as_json.status == 403 and as_json.json["ok"] is False
        # their page shows the chat but no reply form and no controls
        page = live.get(f"/live/{request_id}", other).text
        assert '<form id="reply"' in page and re.search(r'<form id="reply"[^>]* hidden>', page)
        assert 'data-action="hand_back"' not in page and "Only they or an admin can reply" in page
    assert live.rasa.calls == []
    assert live.post(f"/live/{request_id}/messages", {"text": "admin here"}, as_="ada").status == 303
    [(_, [event])] = live.rasa.calls
    assert event["metadata"]["staff"] == {"id": live.users["ada"]["id"], "name": "Ada"}
    assert not re.search(r'<form id="reply"[^>]* hidden>', live.get(f"/live/{request_id}", "ada").text)
    # nobody replies to a chat nobody holds
    waiting = live.request()
    refused = live.post(f"/live/{waiting}/messages", {"text": "hello"}, as_="ada")
    assert refused.status == 409 and "waiting now" in refused.text


def test_a_reply_when_rasa_is_down_is_not_lost_silently(live: Live) -> None:
    request_id = live.request()
    version = live.claimed(request_id)["version"]
    live.rasa.down = True
    response = live.post(f"/live/{request_id}/messages", {"text": REPLY})
    assert response.status == 503 and "Not sent" in response.text
    assert "What&#39;s on your mind? (staff reply 7431)</textarea>" in response.text  # kept in the form
    assert live.post(f"/live/{request_id}/messages", {"text": REPLY}, json_reply=True).status == 503
    assert live.row(request_id)["version"] == version and not live.audits("live_message")


def test_the_live_chat_stays_in_the_transcript_and_the_export(live: Live) -> None:
    cid = live.conversation("hello")
    request_id = live.request(cid)
    live.post(f"/live/{request_id}/claim")
    live.post(f"/live/{request_id}/messages", {"text": REPLY})
    live.post(f"/live/{request_id}/hand_back")
    page = live.get(f"/conversations/{cid}", "cleo").text
    [staff] = re.findall(r'<li class="msg msg-staff staff".*?</li>', page, re.S)
    assert "Dana (staff)" in staff and "staff reply 7431" in staff
    assert page.count('class="msg msg-notice notice"') == 2  # joined, handed back
    export = live.get(f"/conversations/{cid}/export.json", "cleo").json["conversations"][0]["messages"]
    assert [(m["speaker"], m["staff_name"]) for m in export] == [
        ("visitor", None), ("bot", None), ("notice", "Dana"), ("staff", "Dana"), ("notice", None)]
    csv = live.get(f"/conversations/{cid}/export.csv", "cleo").text.splitlines()
    assert csv[0].endswith(",staff_name") and [line for line in csv if ",staff," in line][0].endswith(",Dana")


# --- letting go -------------------------------------------------------------------------------


def test_hand_back_resumes_the_assistant(live: Live) -> None:
    cid = live.conversation("hello")
    request_id = live.request(cid)
    live.claimed(request_id)
    response = live.post(f"/live/{request_id}/hand_back")
    assert response.status == 303 and response.headers["location"] == "/live?done=handed_back"
    [(sent_to, events)] = live.rasa.calls
    assert sent_to == cid and [e["event"] for e in events] == ["resume", "bot", "action"]
    assert events[1]["text"].startswith("Dana has handed the chat back to me")
    assert events[1]["metadata"] == {"handoff": "handed_back"} and events[2]["name"] == "action_listen"
    row = live.row(request_id)
    assert row["status"] == "handed_back" and row["ended_at"] is not None
    assert [a["username"] for a in live.audits("live_hand_back")] == ["dana"]
    assert "You handed the chat back" in live.get("/live?done=handed_back", "dana").text
    # twice: refused, nothing sent
    again = live.post(f"/live/{request_id}/hand_back")
    assert again.status == 409 and "handed back now" in again.text and len(live.rasa.calls) == 1
    page = live.get(f"/live/{request_id}", "dana").text
    assert 'data-state="handed_back"' in page and "This chat has ended" in page
    assert re.search(r'<form id="reply"[^>]* hidden>', page)


def test_close_ends_the_chat_and_the_assistant_says_so(live: Live) -> None:
    request_id = live.request()
    live.claimed(request_id)
    assert live.post(f"/live/{request_id}/close", as_="sue").status == 403  # not theirs
    response = live.post(f"/live/{request_id}/close")
    assert response.status == 303 and response.headers["location"] == "/live?done=closed"
    [(_, events)] = live.rasa.calls
    assert [e["event"] for e in events] == ["resume", "bot", "action"]
    assert events[1]["text"].startswith("Dana has closed this chat.") and events[1]["metadata"] == {"handoff": "closed"}
    assert live.row(request_id)["status"] == "closed"
    assert [a["username"] for a in live.audits("live_close")] == ["dana"]


def test_an_admin_can_end_someone_elses_chat(live: Live) -> None:
    request_id = live.request()
    live.claimed(request_id)
    assert live.post(f"/live/{request_id}/hand_back", as_="ada").status == 303
    assert live.rasa.events()[1]["text"].startswith("Ada has handed the chat back")


def test_return_to_the_queue(live: Live) -> None:
    request_id = live.request()
    live.claimed(request_id)
    assert live.post(f"/live/{request_id}/release", as_="cleo").status == 403
    response = live.post(f"/live/{request_id}/release")
    assert response.status == 303 and response.headers["location"] == "/live?done=released"
    events = live.rasa.events()
    assert [e["event"] for e in events] == ["resume", "bot", "action"]
    assert events[1]["text"].startswith("Dana had to step away, so you're back in the queue")
    assert events[1]["metadata"] == {"handoff": "released"}
    row = live.row(request_id)
    assert (row["status"], row["staff_id"], row["staff_name"]) == ("waiting", None, None)
    assert row_ids(live.get("/live", "sue").text, "waiting") == [request_id]
    assert [a["username"] for a in live.audits("live_release")] == ["dana"]
    assert live.post(f"/live/{request_id}/claim", as_="sue").status == 303  # someone else takes it


def test_when_rasa_is_down_the_chat_stays_live_and_yours(live: Live) -> None:
    request_id = live.request()
    live.claimed(request_id)
    live.rasa.down = True
    for action in ("hand_back", "close", "release"):
        response = live.post(f"/live/{request_id}/{action}")
        assert response.status == 503 and "still live and still yours" in response.text, action
        assert live.row(request_id)["status"] == "live"
    assert not (live.audits("live_hand_back") or live.audits("live_close") or live.audits("live_release"))


def test_closing_a_request_nobody_can_take(live: Live) -> None:
    cid = live.conversation("hello")
    request_id = live.request(cid)
    page = live.get(f"/live/{request_id}", "sue").text
    assert 'data-state="waiting"' in page and "number 1 in line" in page and 'data-action="close"' in page
    response = live.post(f"/live/{request_id}/close", as_="sue")  # any staff member may
    assert response.status == 303 and response.headers["location"] == "/live?done=closed_waiting"
    [(sent_to, [event])] = live.rasa.calls
    clinic = live.settings.clinic
    assert sent_to == cid and event["event"] == "bot" and event["metadata"] == {"handoff": "closed"}
    assert clinic.phone in event["text"] and clinic.email in event["text"] and "988" in event["text"]
    assert live.row(request_id)["status"] == "closed"
    assert [a["username"] for a in live.audits("live_close")] == ["sue"]
    # Rasa down: closed all the same, and the page says the visitor was not told
    other = live.request()
    live.rasa.down = True
    response = live.post(f"/live/{other}/close", as_="sue")
    assert response.headers["location"] == "/live?done=closed_unsent" and live.row(other)["status"] == "closed"
    assert "was not told" in live.get("/live?done=closed_unsent", "sue").text
    # a cancelled request cannot be closed
    third = live.request()
    handoff.change(live.engine, third, "cancel", "waiting")
    refused = live.post(f"/live/{third}/close", as_="sue")
    assert refused.status == 409 and "cancelled by the visitor" in refused.text


# --- the chat page's updates -----------------------------------------------------------------------


def test_events_json_gives_new_messages_and_the_state(live: Live) -> None:
    cid = live.conversation("hello")
    request_id = live.request(cid)
    first = events_json(live, request_id)
    assert first["state"] == "waiting" and first["can_reply"] is False and first["count"] == 1
    assert [m["speaker"] for m in first["messages"]] == ["visitor", "bot"]
    assert first["panel_html"] and 'data-state="waiting"' in first["panel_html"]
    after, version = first["after"], first["version"]
    # nothing new: no messages, no panel
    quiet = events_json(live, request_id, after=after, v=str(version))
    assert quiet["messages"] == [] and quiet["messages_html"] == "" and quiet["panel_html"] is None
    assert quiet["after"] == after
    # taken: the joined notice and the new state
    live.post(f"/live/{request_id}/claim")
    taken = events_json(live, request_id, after=after, v=str(version))
    assert [m["speaker"] for m in taken["messages"]] == ["notice"]
    assert taken["state"] == "live" and taken["holder"] == "Dana" and taken["can_reply"] is True
    assert 'data-action="hand_back"' in taken["panel_html"] and taken["count"] == 0
    # the visitor writes (the web app sends it to Rasa, which stores it; then it touches the request)
    write_tracker_events(live.settings.tracker_db_url, cid, [user_event(XSS)])
    handoff.touch(live.engine, request_id)
    said = events_json(live, request_id, after=taken["after"], v=str(taken["version"]))
    assert [m["speaker"] for m in said["messages"]] == ["visitor"]
    assert said["messages"][0]["id"] == said["after"]
    assert "<script>" not in said["messages_html"] and "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in said["messages_html"]
    assert 'class="msg msg-visitor visitor"' in said["messages_html"]
    # someone else's view of it: no reply
    assert events_json(live, request_id, as_="sue")["can_reply"] is False
    # a bad cursor is the start
    assert len(events_json(live, request_id, after="nonsense")["messages"]) == 4  # type: ignore[arg-type]


def test_the_chat_page_reads_and_writes_through_the_script(live: Live) -> None:
    request_id = live.request()
    live.claimed(request_id)
    page = live.get(f"/live/{request_id}", "dana").text
    assert '<script src="/static/live.js" defer></script>' in page
    assert f'data-poll-url="/live/{request_id}/events.json"' in page and 'data-poll-ms="1000"' in page
    after = int(re.search(r'data-after="(\d+)"', page).group(1))
    assert after == events_json(live, request_id)["after"]
    assert f'name="csrf" value="{live.users["dana"]["csrf"]}"' in page
    assert 'maxlength="2000"' in page


# --- escaping, privacy ---------------------------------------------------------------------------


def test_visitor_text_and_names_are_escaped_everywhere(live: Live) -> None:
    live.add_user("mallory", "support", display_name="<b>Mal</b>")
    cid = live.conversation(XSS)
    request_id = live.request(cid)
    assert live.post(f"/live/{request_id}/claim", as_="mallory").status == 303
    for who in ("mallory", "dana"):
        page = live.get(f"/live/{request_id}", who).text
        assert "<script>alert" not in page and "<img src=x" not in page and "<b>Mal</b>" not in page
        assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page and "&lt;b&gt;Mal&lt;/b&gt;" in page
    for path in ("/live", "/live/queue.json"):
        text = live.get(path, "dana").text
        assert "<b>Mal</b>" not in text and "<script>alert" not in text
    assert live.post(f"/live/{request_id}/messages", {"text": XSS}, as_="mallory").status == 303
    page = live.get(f"/live/{request_id}", "mallory").text
    assert "<script>alert" not in page and page.count("&lt;script&gt;alert(&#39;x&#39;)") == 2


def test_support_staff_do_not_see_pre_screen_answers(live: Live) -> None:
    cid = live.conversation("hello")
    write_tracker_events(live.settings.tracker_db_url, cid, [
        {"event": "active_loop", "name": "prescreen_form", "timestamp": time.time()},
        {"event": "bot", "text": "How old are you?", "timestamp": time.time(), "metadata": {"utter_action": "utter_ask_age"}},
        user_event("I am 43 years old", intent="inform"),
        {"event": "active_loop", "name": None, "timestamp": time.time()},
    ])
    request_id = live.request(cid)
    support = live.get(f"/live/{request_id}", "dana").text
    assert "I am 43 years old" not in support and "shown to clinicians" in support
    assert "I am 43 years old" not in json.dumps(events_json(live, request_id, as_="dana"))
    assert "I am 43 years old" in live.get(f"/live/{request_id}", "cleo").text


def test_opening_a_chat_is_audited_and_polls_are_not(live: Live) -> None:
    cid = live.conversation("hello")
    request_id = live.request(cid)
    live.get(f"/live/{request_id}", "sue")
    events_json(live, request_id, as_="sue")
    events_json(live, request_id, as_="sue")
    [entry] = live.audits("view_transcript")
    assert (entry["username"], entry["target_type"], entry["target_id"], entry["detail"]) == (
        "sue", "conversation", cid, f"live chat {request_id}")


def test_a_crisis_shows_what_to_do_on_both_pages(live: Live) -> None:
    request_id = live.request(urgent=True, reason="crisis")
    for path in ("/live", f"/live/{request_id}"):
        page = live.get(path, "dana").text
        banner = re.search(r'<div class="crisis-banner" role="alert".*?</div>', page, re.S).group(0)
        assert "988" in banner and "911" in banner and "741741" in banner, path
    calm = live.request()
    assert 'class="crisis-banner"' not in live.get(f"/live/{calm}", "dana").text


# --- CSRF and roles (every route as every role: tests/test_console_roles.py) ---------------------------


@pytest.mark.parametrize("action", ["claim", "messages", "hand_back", "close", "release"])
def test_posts_without_the_csrf_token_change_nothing(live: Live, action: str) -> None:
    request_id = live.request()
    if action != "claim":
        live.claimed(request_id)
    before = live.row(request_id)
    for form in ({"text": "hi"}, {"text": "hi", "csrf": "0" * 64}, {"text": "hi", "csrf": live.users["sue"]["csrf"]}):
        response = live.post(f"/live/{request_id}/{action}", form, csrf=False)
        assert response.status == 403
    assert live.row(request_id) == before and live.rasa.calls == []


def test_signed_out_people_are_sent_to_sign_in(live: Live) -> None:
    request_id = live.request()
    for path in ("/live", "/live/queue.json", f"/live/{request_id}", f"/live/{request_id}/events.json"):
        _, response = live.app.test_client.get(path, allow_redirects=False)
        assert response.status == 302 and response.headers["location"].startswith("/login?next="), path


# --- callback requests (/handoffs) ------------------------------------------------------------------


def test_the_callback_page_shows_contacts_to_support_and_audits_it(live: Live) -> None:
    key = live.settings.encryption_key
    # as actions/callback.py stores it
    contact = {"name": "Rosalind <Quimby>", "email": None, "phone": "+1 512 555 0187", "preferred_time": "weekday mornings"}
    callback = handoff.request_callback(live.engine, "cb-1", "visitor_request", False, encrypt_json(key, contact))
    from clinic.storage import db

    old_style = db.record_handoff_request(live.engine, "old-1", "visitor_request", False)
    waiting = live.request()
    html = live.get("/handoffs", "dana").text
    ids = [int(i) for i in re.findall(r"<tr>\s*<td>(\d+)</td>", html)]
    assert ids == [callback, old_style]  # live requests are on /live, not here
    assert "Rosalind &lt;Quimby&gt;" in html and "+1 512 555 0187" in html and "weekday mornings" in html
    assert "Best time to call" in html and "Callback requests" in html and "audit log" in html
    assert "<dt>Email</dt>" not in html  # none given
    [entry] = live.audits("view_contact")
    assert (entry["username"], entry["target_type"], entry["detail"]) == ("dana", "handoff_request", "1 callback")
    # a live request cannot be moved through the callback workflow
    assert live.post(f"/handoffs/{waiting}/status", {"status": "in_progress", "from": "waiting"}).status == 404
    assert live.post(f"/handoffs/{callback}/status", {"status": "in_progress", "from": "new"}).status == 303
    # a page without contact details is not a view of contact details
    live.get("/handoffs?status=closed", "dana")
    assert len(live.audits("view_contact")) == 1


def test_a_callback_that_cannot_be_decrypted_says_so(live: Live) -> None:
    from cryptography.fernet import Fernet

    handoff.request_callback(live.engine, "cb-2", "visitor_request", False, encrypt_json(Fernet.generate_key(), {"name": "X"}))
    html = live.get("/handoffs", "dana").text
    assert "could not be decrypted" in html
    assert live.audits("view_contact")[0]["detail"] == "0 callbacks, 1 could not be decrypted"


# --- display names ------------------------------------------------------------------------------------


def test_display_names_from_the_command_line_and_the_users_page(
    live: Live, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    import io
    import sys

    from clinic.console import users

    monkeypatch.setattr(sys, "stdin", io.StringIO(PASSWORD + "\n"))
    assert users.main(["create", "Bea", "--role", "support", "--display-name", "  Bea  Lopez "]) == 0
    assert users.main(["set-display-name", "dana", "Dana R."]) == 0
    assert "display name of dana: Dana R." in capsys.readouterr().out
    assert users.main(["set-display-name", "nobody", "X"]) == 2
    assert users.main(["set-display-name", "sue", "bell\x07"]) == 2
    assert users.main(["set-display-name", "sue", "x" * 65]) == 2
    page = live.get("/users", "ada").text
    assert "Bea Lopez" in page and "Dana R." in page and "visitors see sue" in page
    # the name visitors see follows at once
    request_id = live.request()
    live.post(f"/live/{request_id}/claim")
    assert live.row(request_id)["staff_name"] == "Dana R."
    # an admin sets it on /users, audited
    sue = live.users["sue"]["id"]
    assert live.post(f"/users/{sue}/display_name", {"display_name": "Susan"}, as_="ada").status == 302
    assert "Susan" in live.get("/users", "ada").text
    assert live.audits("user_display_name")[-1]["detail"] == "sue display_name=Susan"
    assert live.post(f"/users/{sue}/display_name", {"display_name": "x" * 65}, as_="ada").status == 400
    assert live.post(f"/users/{sue}/display_name", {"display_name": ""}, as_="ada").status == 302
    assert "visitors see sue" in live.get("/users", "ada").text
    assert live.post(f"/users/{sue}/display_name", {"display_name": "Sneaky"}, as_="dana").status == 403
